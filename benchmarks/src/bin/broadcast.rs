//! The baseline of `benches/local_load.rs`: a minimal chat broadcast server
//! on tokio-tungstenite, what one would write by hand without lawcket.
//!
//! It speaks the chat example's wire protocol, as far as the bench uses it:
//! the channel comes from `?channel=` on connect (`#general` without one);
//! `{"action":"send","channel":C,"text":T}` sends
//! `{"type":"message","channel":C,"from":ID,"text":T}` to every connection in
//! channel C (the sender too, if it is in it); `{"action":"join","channel":C}`
//! moves the sender to C and answers `{"type":"joined","channel":C}`.
//!
//! Each message is serialized once and handed to every member's writer task
//! through an unbounded queue (a shared, reference-counted buffer, no copy per
//! member); each writer sends its frames one by one. No limits, no timeouts,
//! no registry beyond a map: the floor a gateway is measured against.
//!
//! Listens on `LAWCKET_LOCAL_ADDR` (the chat example's variable, so the bench
//! starts both alike), `127.0.0.1:3002` by default.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Outbox = mpsc::UnboundedSender<Message>;

/// Channel name → its members (connection id → writer queue).
#[derive(Default)]
struct Channels {
    members: Mutex<HashMap<String, HashMap<u64, Outbox>>>,
}

impl Channels {
    fn join(&self, channel: &str, id: u64, outbox: Outbox) {
        let mut members = self.members.lock().unwrap();
        members
            .entry(channel.to_owned())
            .or_default()
            .insert(id, outbox);
    }

    fn leave(&self, channel: &str, id: u64) {
        let mut members = self.members.lock().unwrap();
        if let Some(channel_members) = members.get_mut(channel) {
            channel_members.remove(&id);
            if channel_members.is_empty() {
                members.remove(channel);
            }
        }
    }

    fn send(&self, channel: &str, frame: Utf8Bytes) {
        let members = self.members.lock().unwrap();
        for outbox in members.get(channel).into_iter().flat_map(|m| m.values()) {
            // A member whose writer has ended is leaving: nothing to do.
            let _ = outbox.send(Message::Text(frame.clone()));
        }
    }
}

#[tokio::main]
async fn main() {
    let addr = std::env::var("LAWCKET_LOCAL_ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let listener = TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    eprintln!("broadcast baseline on ws://{addr}");
    let channels = Arc::new(Channels::default());
    let ids = AtomicU64::new(1);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, typically: say so and go on.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, id, Arc::clone(&channels)));
    }
}

// The handshake callback's error type is tungstenite's (an HTTP response).
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, id: u64, channels: Arc<Channels>) {
    let _ = stream.set_nodelay(true);
    let mut channel = "#general".to_owned();
    let handshake = tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response| {
        if let Some(value) = request
            .uri()
            .query()
            .and_then(|q| query_value(q, "channel"))
        {
            channel = value;
        }
        Ok::<Response, _>(response)
    });
    let Ok(ws) = handshake.await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (outbox, mut queue) = mpsc::unbounded_channel::<Message>();
    channels.join(&channel, id, outbox.clone());
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let from = format!("{id:016x}");
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else {
            if message.is_close() {
                break;
            }
            continue;
        };
        let Ok(request) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let Some(to) = request["channel"].as_str() else {
            continue;
        };
        match request["action"].as_str() {
            Some("send") => {
                let out = json!({
                    "type": "message",
                    "channel": to,
                    "from": from,
                    "text": request["text"],
                });
                channels.send(to, Utf8Bytes::from(out.to_string()));
            }
            Some("join") => {
                channels.leave(&channel, id);
                channel = to.to_owned();
                channels.join(&channel, id, outbox.clone());
                let answer = json!({ "type": "joined", "channel": channel }).to_string();
                let _ = outbox.send(Message::text(answer));
            }
            _ => {}
        }
    }
    channels.leave(&channel, id);
    drop(outbox);
    let _ = writer.await;
}

/// The percent-decoded value of `name` in a query string.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
