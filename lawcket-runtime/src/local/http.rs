//! The HTTP side of the local gateway: the WebSocket handshake (`$connect`),
//! the `@connections` management API, and the page at `/`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

use super::events::{self, Peer};
use super::formats::{iso8601, random_id};
use super::settings::Settings;
use super::socket;
use super::state::{Gateway, Live, Outgoing};
use crate::clock::now_ms;
use crate::connection::is_domain_name;
use crate::error::chain;

pub(crate) fn router(gateway: Arc<Gateway>) -> Router {
    let manage = get(info).post(post).delete(delete);
    Router::new()
        .route("/", get(root))
        .route("/@connections/{id}", manage.clone())
        .route("/{stage}/@connections/{id}", manage)
        .with_state(gateway)
}

/// A WebSocket handshake runs `$connect`; a plain GET gets the page.
async fn root(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return page(&gateway.settings);
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let peer = Peer {
        connection_id: random_id(),
        connected_at: now_ms(),
        source_ip: remote.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        // The host without its port. What API Gateway could not send as a
        // domainName (an IPv6 literal, `ws_app`, `localhost.`) stands as
        // `localhost`, so the event stays one lawcket accepts.
        domain_name: match host.split(':').next() {
            Some(name) if is_domain_name(name) => name.to_owned(),
            _ => "localhost".to_owned(),
        },
        stage: gateway.settings.stage.clone(),
    };
    let request = events::connect(&peer, &headers, uri.query());
    // $connect runs in its own task: if the client leaves mid-handshake this
    // handler is dropped, and the task undoes a connect that was stored.
    let (answer, answered) = tokio::sync::oneshot::channel();
    {
        let gateway = Arc::clone(&gateway);
        let peer = peer.clone();
        tokio::spawn(async move {
            let result = gateway.pipeline.run(request).await;
            let accepted = matches!(&result, Ok(r) if (200..300).contains(&r.status_code));
            if answer.send(result).is_err() && accepted {
                socket::disconnected(&gateway, &peer, 1006, "Client left during $connect").await;
            }
        });
    }
    let response = match answered.await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            // As API Gateway does: the status only; the reason is in the log.
            tracing::error!(error = %chain(&error), "$connect failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if !(200..300).contains(&response.status_code) {
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => text,
            _ => String::new(),
        };
        return (status, body).into_response();
    }

    let (tx, rx) = mpsc::unbounded_channel();
    gateway.live().insert(
        peer.connection_id.clone(),
        Live {
            tx: tx.clone(),
            peer: peer.clone(),
            last_active: peer.connected_at,
        },
    );
    tracing::info!(connection_id = %peer.connection_id, "connected");
    let failed = (Arc::clone(&gateway), peer.clone());
    upgrade
        .max_frame_size(gateway.settings.max_frame_bytes)
        .max_message_size(gateway.settings.max_message_bytes)
        .on_failed_upgrade(move |error| {
            let (gateway, peer) = failed;
            tracing::warn!(%error, "WebSocket upgrade failed after $connect");
            tokio::spawn(async move {
                socket::disconnected(&gateway, &peer, 1006, "Upgrade failed").await
            });
        })
        .on_upgrade(move |ws| socket::run(gateway, peer, ws, tx, rx))
}

fn page(settings: &Settings) -> Response {
    Html(settings.page.unwrap_or(DEFAULT_PAGE)).into_response()
}

const DEFAULT_PAGE: &str = include_str!("console.html");

fn id(params: &HashMap<String, String>) -> &str {
    params.get("id").map(String::as_str).unwrap_or("")
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [
            ("x-amzn-ErrorType", "GoneException"),
            ("content-type", "application/json"),
        ],
        r#"{"message":null}"#,
    )
        .into_response()
}

/// `POST @connections/{id}`: send data to the client.
async fn post(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if body.len() > gateway.settings.max_message_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-ErrorType", "PayloadTooLargeException")],
            format!(
                r#"{{"message":"Message of {} bytes is over the {} byte limit"}}"#,
                body.len(),
                gateway.settings.max_message_bytes
            ),
        )
            .into_response();
    }
    let live = gateway.live();
    match live.get(id(&params)) {
        Some(conn) if conn.tx.send(Outgoing::Data(body.to_vec())).is_ok() => {
            StatusCode::OK.into_response()
        }
        _ => gone(),
    }
}

/// `GET @connections/{id}`: what API Gateway knows of the connection.
async fn info(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let live = gateway.live();
    let Some(conn) = live.get(id(&params)) else {
        return gone();
    };
    let body = serde_json::json!({
        "ConnectedAt": iso8601(conn.peer.connected_at),
        "Identity": { "SourceIp": conn.peer.source_ip, "UserAgent": conn.peer.user_agent },
        "LastActiveAt": iso8601(conn.last_active),
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// `DELETE @connections/{id}`: close the connection (its `$disconnect` follows).
async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let live = gateway.live();
    match live.get(id(&params)) {
        Some(conn) if conn.tx.send(Outgoing::Close).is_ok() => {
            StatusCode::NO_CONTENT.into_response()
        }
        _ => gone(),
    }
}
