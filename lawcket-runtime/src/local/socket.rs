//! One open WebSocket: client messages become MESSAGE events, management API
//! posts become frames, and the end (close, drop, timeout) becomes `$disconnect`.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::events::{self, internal_error, Data, Peer};
use super::state::{Gateway, Outgoing};
use crate::clock::now_ms;
use crate::error::chain;

const GOING_AWAY: u16 = 1001;
const TOO_BIG: u16 = 1009;
const ABNORMAL: u16 = 1006;

pub(crate) async fn run(
    gateway: Arc<Gateway>,
    peer: Peer,
    ws: WebSocket,
    tx: mpsc::UnboundedSender<Outgoing>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (mut sink, mut stream) = ws.split();
    let settings = &gateway.settings;
    let hard_deadline = Instant::now() + settings.max_duration;
    let mut idle_deadline = Instant::now() + settings.idle_timeout;

    let (code, reason): (u16, String) = loop {
        tokio::select! {
            incoming = stream.next() => {
                let data = match incoming {
                    Some(Ok(Message::Text(text))) => Data::Text(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(bytes))) => Data::Binary(bytes.to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or((1005, String::new()), |f| (f.code, f.reason.as_str().to_owned()))
                    }
                    Some(Err(error)) => {
                        if too_big(error) {
                            let _ = sink.send(close(TOO_BIG, "Message too big")).await;
                            break (TOO_BIG, "Message too big".into());
                        }
                        break (ABNORMAL, "Connection closed abnormally".into());
                    }
                    None => break (ABNORMAL, "Connection closed abnormally".into()),
                };
                idle_deadline = Instant::now() + settings.idle_timeout;
                touch(&gateway, &peer);
                dispatch(&gateway, &peer, &tx, data);
            }
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Data(bytes)) => {
                    // API Gateway sends UTF-8 payloads as text frames.
                    let message = match String::from_utf8(bytes) {
                        Ok(text) => Message::Text(text.into()),
                        Err(bytes) => Message::Binary(bytes.into_bytes().into()),
                    };
                    if sink.send(message).await.is_err() {
                        break (ABNORMAL, "Connection closed abnormally".into());
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.send(close(1000, "Closed by the management API")).await;
                    break (1000, "Closed by the management API".into());
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

/// Forgets the connection (posts now answer 410) and runs `$disconnect`.
pub(crate) async fn disconnected(gateway: &Gateway, peer: &Peer, code: u16, reason: &str) {
    gateway.live().remove(&peer.connection_id);
    tracing::info!(connection_id = %peer.connection_id, code, reason, "disconnected");
    let request = events::disconnect(peer, code, reason);
    if let Err(error) = gateway.pipeline.run(request).await {
        tracing::error!(error = %chain(&error), "$disconnect failed");
    }
}

/// Each message is its own invocation, concurrent with others, as on Lambda.
fn dispatch(gateway: &Arc<Gateway>, peer: &Peer, tx: &mpsc::UnboundedSender<Outgoing>, data: Data) {
    let settings = &gateway.settings;
    let route = events::route_key(&data, &settings.route_selection, settings.routes.as_deref());
    let request = events::message(peer, &route, data);
    let gateway = Arc::clone(gateway);
    let tx = tx.clone();
    let id = peer.connection_id.clone();
    tokio::spawn(async move {
        if let Err(error) = gateway.pipeline.run(request).await {
            tracing::error!(error = %chain(&error), connection_id = %id, "message failed");
            let _ = tx.send(Outgoing::Data(internal_error(&id)));
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

/// A frame or message over the limits (tungstenite's capacity error).
fn too_big(error: axum::Error) -> bool {
    error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}
