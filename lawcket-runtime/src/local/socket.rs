//! One open WebSocket: client messages become MESSAGE events, management API
//! posts become frames, and the end (close, drop, timeout) becomes `$disconnect`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use futures_util::future::OptionFuture;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Duration, Instant};

use super::events::{self, gateway_error, Data, Peer};
use super::invoke::{disconnected, invoke, Answer};
use super::slots::{Lane, Slot};
use super::state::{Gateway, Outbox, Outgoing};
use crate::clock::now_ms;
use crate::error::chain;

const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const ABNORMAL: u16 = 1006;
const INVALID_DATA: u16 = 1007;
const TOO_BIG: u16 = 1009;

/// A message's wait for a slot.
type Waiting = Pin<Box<dyn Future<Output = Slot> + Send>>;

/// The close frame (code, reason) the gateway sends, if it is the one closing.
type CloseWith = Option<(u16, &'static str)>;

/// How a connection ended: its code and reason for `$disconnect`, and the
/// close frame the gateway sends, if it is the one closing.
struct End {
    code: u16,
    reason: String,
    send: CloseWith,
}

impl End {
    /// The gateway closes with `code`; `$disconnect` gets `reason`.
    fn closing(code: u16, frame_reason: &'static str, reason: &str) -> End {
        End {
            code,
            reason: reason.to_owned(),
            send: Some((code, frame_reason)),
        }
    }

    /// The client closed or went away: nothing to send.
    fn closed(code: u16, reason: String) -> End {
        End {
            code,
            reason,
            send: None,
        }
    }
}

pub(crate) async fn run(
    gateway: Arc<Gateway>,
    peer: Peer,
    ws: WebSocket,
    outbox: Outbox,
    rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (sink, mut stream) = ws.split();
    let settings = &gateway.settings;
    let hard_deadline = Instant::now() + settings.max_duration;
    let mut idle_deadline = Instant::now() + settings.idle_timeout;
    // Writing has a task of its own, so a client that stops reading blocks
    // neither its reads, its timers, nor a DELETE; the writer says when data
    // went out (it resets the idle timer) and when it had to stop.
    let (written_tx, mut written) = watch::channel(());
    let (stopped_tx, mut stopped) = oneshot::channel();
    let (close_tx, close_rx) = oneshot::channel();
    tokio::spawn(write(
        sink,
        rx,
        outbox.clone(),
        settings.write_timeout,
        Writer {
            written: written_tx,
            stopped: stopped_tx,
            close: close_rx,
        },
    ));
    // A message waits for a slot to run in, and the next one is not read
    // meanwhile: while every slot is busy, a client's frames wait in its
    // socket (TCP's own back-pressure), not in the gateway's memory.
    let mut pending: Option<(Data, Waiting)> = None;

    // AWS documents the idle timeout ("Idle Connection Timeout: 10 minutes",
    // WebSocket API quotas) but not which traffic resets it. lawcket counts
    // data in either direction (client messages and posts), not pings.
    let end = loop {
        tokio::select! {
            Some(slot) = OptionFuture::from(pending.as_mut().map(|(_, wait)| wait)) => {
                if let Some((data, _)) = pending.take() {
                    dispatch(&gateway, slot, &peer, &outbox, data);
                }
            }
            incoming = stream.next(), if pending.is_none() => {
                let data = match incoming {
                    Some(Ok(Message::Text(text))) => Data::Text(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(bytes))) if settings.accept_binary => {
                        Data::Binary(bytes.to_vec())
                    }
                    Some(Ok(Message::Binary(_))) => {
                        // "If a client app sends a binary frame, API Gateway
                        // rejects it and disconnects the client with code
                        // 1003" (Binary media types for WebSocket APIs).
                        let reason = "Binary frames are not supported";
                        break End::closing(UNSUPPORTED_DATA, reason, reason);
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => End::closed(f.code, f.reason.as_str().to_owned()),
                            None => End::closed(1005, String::new()),
                        }
                    }
                    Some(Err(error)) => match failure(error) {
                        (ABNORMAL, reason) => break End::closed(ABNORMAL, reason.into()),
                        (code, reason) => break End::closing(code, reason, reason),
                    },
                    None => break End::closed(ABNORMAL, "Connection closed abnormally".into()),
                };
                idle_deadline = Instant::now() + settings.idle_timeout;
                touch(&gateway, &peer);
                let slot = Arc::clone(&gateway.slots).acquire(Lane::Message);
                pending = Some((data, Box::pin(slot)));
            }
            Ok(()) = written.changed() => {
                idle_deadline = Instant::now() + settings.idle_timeout;
                touch(&gateway, &peer);
            }
            why = &mut stopped => {
                // The writer stopped (DELETE, a stalled client): its account
                // is what the client got.
                break why.unwrap_or_else(|_| End::closed(ABNORMAL, "Connection closed abnormally".into()));
            }
            _ = sleep_until(idle_deadline) => {
                break End::closing(GOING_AWAY, "Idle timeout", "Going away");
            }
            _ = sleep_until(hard_deadline) => {
                break End::closing(GOING_AWAY, "Maximum connection duration reached", "Going away");
            }
        }
    };
    // A message read but still waiting for a slot is not run (its client is
    // gone); it gives up its place, and any slot already handed to it,
    // before $disconnect waits for one.
    drop(pending);
    // The writer closes the socket, whatever $disconnect takes; if it has
    // already stopped (a stalled client), the socket is dropped here.
    let _ = close_tx.send((end.send, stream));
    disconnected(&gateway, &peer, end.code, &end.reason).await;
}

/// What the writer shares with the socket's reading side.
struct Writer {
    written: watch::Sender<()>,
    stopped: oneshot::Sender<End>,
    /// The reading side has ended: the close frame to send, if any, and the
    /// socket's reading half.
    close: oneshot::Receiver<(CloseWith, SplitStream<WebSocket>)>,
}

/// Sends posts to the client until the reading side ends the connection (a
/// DELETE asks it to), then closes the socket. A write that fails or stalls
/// for `limit` (a client that stopped reading, or vanished) stops it at once:
/// the client is dropped as gone, with 1006.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    outbox: Outbox,
    limit: Duration,
    mut writer: Writer,
) {
    let closing = loop {
        tokio::select! {
            biased;
            closing = &mut writer.close => break closing,
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Data(bytes)) => {
                    let len = bytes.len();
                    // API Gateway sends UTF-8 payloads as text frames.
                    let message = match String::from_utf8(bytes) {
                        Ok(text) => Message::Text(text.into()),
                        Err(bytes) => Message::Binary(bytes.into_bytes().into()),
                    };
                    let sent = timeout(limit, sink.send(message)).await;
                    outbox.written(len);
                    if !matches!(sent, Ok(Ok(()))) {
                        let gone = End::closed(ABNORMAL, "Connection closed abnormally".into());
                        let _ = writer.stopped.send(gone);
                        return; // posts now answer 410; the socket goes with the reader's half
                    }
                    let _ = writer.written.send(());
                }
                // DELETE (the outbox is also ours, so `None` cannot come).
                Some(Outgoing::Close) | None => {
                    let reason = "Closed by the management API";
                    let _ = writer.stopped.send(End::closing(NORMAL, reason, reason));
                    break (&mut writer.close).await;
                }
            },
        }
    };
    rx.close(); // posts from now on answer 410
    let Ok((frame, mut stream)) = closing else {
        return;
    };
    // The close handshake, bounded: the gateway's close frame, then reading
    // to the end so the client's reply (or unread data) does not turn the
    // close into a reset that loses the frame; or, when the client closed
    // first, the reply tungstenite has queued.
    let _ = timeout(limit, async {
        if let Some((code, reason)) = frame {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            sink.send(Message::Close(Some(frame))).await?;
            while let Some(Ok(_)) = stream.next().await {}
        }
        sink.close().await
    })
    .await;
}

/// Each message is its own invocation, concurrent with others, as on Lambda;
/// a failure or a timeout reaches the client as API Gateway's answer.
fn dispatch(gateway: &Arc<Gateway>, slot: Slot, peer: &Peer, outbox: &Outbox, data: Data) {
    let settings = &gateway.settings;
    let route = events::route_key(&data, &settings.route_selection, settings.routes.as_deref());
    let reply = settings.route_response(&route);
    let request = events::message(peer, &route, data);
    let gateway = Arc::clone(gateway);
    let outbox = outbox.clone();
    let id = peer.connection_id.clone();
    tokio::spawn(async move {
        match invoke(&gateway, slot, request, None).await {
            // A route response sends the integration's body back; AWS does
            // not say what an empty one sends: nothing, here.
            Answer::Response(response) if reply => {
                if let Some(body) = reply_body(&response) {
                    outbox.notice(body);
                }
            }
            Answer::Response(_) => {}
            Answer::Failed(error) => {
                tracing::error!(error = %chain(&error), connection_id = %id, "message failed");
                outbox.notice(gateway_error("Internal server error", &id));
            }
            Answer::TimedOut => {
                tracing::error!(connection_id = %id, "message not answered within the integration timeout");
                outbox.notice(gateway_error("Endpoint request timed out", &id));
            }
        }
    });
}

/// The bytes of a Lambda proxy response's body (base64 decoded when
/// `isBase64Encoded`); `None` when there is none.
fn reply_body(response: &ApiGatewayProxyResponse) -> Option<Vec<u8>> {
    use aws_lambda_events::encodings::Body;
    let bytes = match response.body.as_ref()? {
        Body::Text(text) if response.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        Body::Text(text) => text.clone().into_bytes(),
        Body::Binary(bytes) => bytes.clone(),
        Body::Empty => return None,
        _ => return None,
    };
    (!bytes.is_empty()).then_some(bytes)
}

fn touch(gateway: &Gateway, peer: &Peer) {
    if let Some(live) = gateway.live().get_mut(&peer.connection_id) {
        live.last_active = now_ms();
    }
}

/// The close code for a read error: a frame or message over the limits
/// (1009), text that is not UTF-8 (1007), a broken frame such as an unmasked
/// one (1002); anything else is the connection dropping (1006).
fn failure(error: axum::Error) -> (u16, &'static str) {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error;
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(_)) => (TOO_BIG, "Message too big"),
        Some(Error::Utf8(_)) => (INVALID_DATA, "Invalid UTF-8 in a text message"),
        // The TCP connection ended without a close frame: a drop, not a
        // broken frame.
        Some(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
            (ABNORMAL, "Connection closed abnormally")
        }
        Some(Error::Protocol(_)) => (PROTOCOL_ERROR, "Protocol error"),
        _ => (ABNORMAL, "Connection closed abnormally"),
    }
}
