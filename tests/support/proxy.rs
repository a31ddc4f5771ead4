//! A TCP proxy in front of a real server (moto) that can stall: while paused
//! it keeps what clients send and forwards nothing, as a DynamoDB that hangs
//! does; on resume it delivers what it held, in the order it arrived, one
//! request at a time, even for clients that gave up meanwhile (a request that
//! timed out on the client can still land on the server). It can also cut
//! connections, as a network fault does, and count the requests that carry a
//! given header.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

pub struct Proxy {
    pub url: String,
    state: Arc<State>,
}

struct State {
    target: SocketAddr,
    paused: watch::Sender<bool>,
    /// Connections holding data while paused, in the order their data came.
    held: Mutex<VecDeque<oneshot::Sender<oneshot::Sender<()>>>>,
    /// Cut every connection that sends data, while set.
    cutting: AtomicBool,
    pub cuts: AtomicU64,
    /// A header line, lower case, whose requests are counted (see `count`).
    marker: std::sync::OnceLock<Vec<u8>>,
    marked: AtomicU64,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            target,
            paused: watch::channel(false).0,
            held: Mutex::default(),
            cutting: AtomicBool::new(false),
            cuts: AtomicU64::new(0),
            marker: std::sync::OnceLock::new(),
            marked: AtomicU64::new(0),
        });
        let accept = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(Arc::clone(&accept), client));
            }
        });
        Proxy { url, state }
    }

    /// Holds everything clients send from now on.
    pub fn pause(&self) {
        self.state.paused.send_replace(true);
    }

    /// Delivers what was held, in order, one request at a time, then relays
    /// as usual. Answers how many held requests were delivered.
    pub async fn resume(&self) -> usize {
        self.deliver(false).await
    }

    /// Like [`Proxy::resume`], the newest request first: a request that
    /// stalled longest lands last.
    pub async fn resume_newest_first(&self) -> usize {
        self.deliver(true).await
    }

    async fn deliver(&self, newest_first: bool) -> usize {
        let mut delivered = 0;
        loop {
            let next = {
                let mut held = self.state.held.lock().unwrap();
                if newest_first {
                    held.pop_back()
                } else {
                    held.pop_front()
                }
            };
            let Some(ticket) = next else { break };
            let (done, answered) = oneshot::channel();
            if ticket.send(done).is_ok() {
                delivered += 1;
                // Until the server answered (or closed), at most 2 s.
                let _ = tokio::time::timeout(Duration::from_secs(2), answered).await;
            }
        }
        self.state.paused.send_replace(false);
        delivered
    }

    /// Cuts (or stops cutting) every connection that sends data.
    pub fn cut(&self, on: bool) {
        self.state.cutting.store(on, Ordering::SeqCst);
    }

    /// Counts from now on the requests carrying `header` (`name: value`,
    /// matched in any case), e.g. DynamoDB's `X-Amz-Target` of one operation.
    pub fn count(&self, header: &str) {
        let _ = self
            .state
            .marker
            .set(header.to_ascii_lowercase().into_bytes());
    }

    /// How many requests carried the header given to [`Proxy::count`].
    pub fn counted(&self) -> u64 {
        self.state.marked.load(Ordering::SeqCst)
    }

    /// Zeroes [`Proxy::counted`].
    pub fn reset_count(&self) {
        self.state.marked.store(0, Ordering::SeqCst);
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }
}

async fn relay(state: Arc<State>, mut client: TcpStream) {
    let Ok(mut server) = TcpStream::connect(state.target).await else {
        return;
    };
    let mut paused = state.paused.subscribe();
    let mut pending: Vec<u8> = Vec::new();
    let mut released: Option<oneshot::Sender<()>> = None;
    let mut waiting: Option<oneshot::Receiver<oneshot::Sender<()>>> = None;
    let mut client_open = true;
    // The marker may span two reads: the tail of the last one is kept.
    let mut window: Vec<u8> = Vec::new();
    let (mut from_client, mut from_server) = ([0u8; 16384], [0u8; 16384]);
    loop {
        tokio::select! {
            read = client.read(&mut from_client), if client_open => match read {
                Ok(0) | Err(_) => client_open = false,
                Ok(n) => {
                    if state.cutting.load(Ordering::SeqCst) {
                        state.cuts.fetch_add(1, Ordering::SeqCst);
                        return; // dropping both ends: the client sees a reset
                    }
                    pending.extend_from_slice(&from_client[..n]);
                    if let Some(marker) = state.marker.get() {
                        window.extend(from_client[..n].iter().map(u8::to_ascii_lowercase));
                        let found = window.windows(marker.len()).filter(|w| w == marker).count();
                        state.marked.fetch_add(found as u64, Ordering::SeqCst);
                        window.drain(..window.len().saturating_sub(marker.len() - 1));
                    }
                }
            },
            read = server.read(&mut from_server) => match read {
                Ok(0) | Err(_) => {
                    if let Some(done) = released.take() { let _ = done.send(()); }
                    return;
                }
                Ok(n) => {
                    if let Some(done) = released.take() { let _ = done.send(()); }
                    // The client may have left; the server's answer is then dropped.
                    let _ = client.write_all(&from_server[..n]).await;
                }
            },
            _ = paused.changed() => {}
            ticket = async { waiting.as_mut().unwrap().await }, if waiting.is_some() => {
                waiting = None;
                if let Ok(done) = ticket {
                    released = Some(done);
                    if server.write_all(&pending).await.is_err() { return; }
                    pending.clear();
                }
            }
        }
        if pending.is_empty() || waiting.is_some() || released.is_some() {
            if !client_open && pending.is_empty() && released.is_none() && waiting.is_none() {
                // Give the server a moment to answer what was forwarded last.
                let _ = tokio::time::timeout(Duration::from_secs(2), server.read(&mut from_server))
                    .await;
                return;
            }
            continue;
        }
        if *paused.borrow() {
            // Queue for an ordered release on resume.
            let (ticket, wait) = oneshot::channel();
            state.held.lock().unwrap().push_back(ticket);
            waiting = Some(wait);
        } else if server.write_all(&pending).await.is_err() {
            return;
        } else {
            pending.clear();
        }
    }
}
