//! One open WebSocket: client messages become MESSAGE events, management API
//! posts become frames, and the end (close, drop, timeout) becomes `$disconnect`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::future::OptionFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

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

pub(crate) async fn run(
    gateway: Arc<Gateway>,
    peer: Peer,
    ws: WebSocket,
    outbox: Outbox,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (mut sink, mut stream) = ws.split();
    let settings = &gateway.settings;
    let hard_deadline = Instant::now() + settings.max_duration;
    let mut idle_deadline = Instant::now() + settings.idle_timeout;
    // A message waits for a slot to run in, and the next one is not read
    // meanwhile: while every slot is busy, a client's frames wait in its
    // socket (TCP's own back-pressure), not in the gateway's memory.
    let mut pending: Option<(Data, Waiting)> = None;

    // AWS documents the idle timeout ("Idle Connection Timeout: 10 minutes",
    // WebSocket API quotas) but not which traffic resets it. lawcket counts
    // data in either direction (client messages and posts), not pings.
    let (code, reason): (u16, String) = loop {
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
                        let _ = sink.send(close(UNSUPPORTED_DATA, reason)).await;
                        break (UNSUPPORTED_DATA, reason.into());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or((1005, String::new()), |f| (f.code, f.reason.as_str().to_owned()))
                    }
                    Some(Err(error)) => {
                        let (code, reason) = failure(error);
                        if code != ABNORMAL {
                            let _ = sink.send(close(code, reason)).await;
                        }
                        break (code, reason.into());
                    }
                    None => break (ABNORMAL, "Connection closed abnormally".into()),
                };
                idle_deadline = Instant::now() + settings.idle_timeout;
                touch(&gateway, &peer);
                let slot = Arc::clone(&gateway.slots).acquire(Lane::Message);
                pending = Some((data, Box::pin(slot)));
            }
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Data(bytes)) => {
                    let len = bytes.len();
                    // API Gateway sends UTF-8 payloads as text frames.
                    let message = match String::from_utf8(bytes) {
                        Ok(text) => Message::Text(text.into()),
                        Err(bytes) => Message::Binary(bytes.into_bytes().into()),
                    };
                    let sent = sink.send(message).await;
                    outbox.written(len);
                    if sent.is_err() {
                        break (ABNORMAL, "Connection closed abnormally".into());
                    }
                    idle_deadline = Instant::now() + settings.idle_timeout;
                    touch(&gateway, &peer);
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.send(close(NORMAL, "Closed by the management API")).await;
                    break (NORMAL, "Closed by the management API".into());
                }
            },
            _ = sleep_until(idle_deadline) => {
                let _ = sink.send(close(GOING_AWAY, "Idle timeout")).await;
                break (GOING_AWAY, "Going away".into());
            }
            _ = sleep_until(hard_deadline) => {
                let _ = sink.send(close(GOING_AWAY, "Maximum connection duration reached")).await;
                break (GOING_AWAY, "Going away".into());
            }
        }
    };
    let _ = sink.close().await;
    disconnected(&gateway, &peer, code, &reason).await;
}

/// Each message is its own invocation, concurrent with others, as on Lambda;
/// a failure or a timeout reaches the client as API Gateway's answer.
fn dispatch(gateway: &Arc<Gateway>, slot: Slot, peer: &Peer, outbox: &Outbox, data: Data) {
    let settings = &gateway.settings;
    let route = events::route_key(&data, &settings.route_selection, settings.routes.as_deref());
    let request = events::message(peer, &route, data);
    let gateway = Arc::clone(gateway);
    let outbox = outbox.clone();
    let id = peer.connection_id.clone();
    tokio::spawn(async move {
        match invoke(&gateway, slot, request, None).await {
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

fn touch(gateway: &Gateway, peer: &Peer) {
    if let Some(live) = gateway.live().get_mut(&peer.connection_id) {
        live.last_active = now_ms();
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
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
