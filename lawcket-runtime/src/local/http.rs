//! The HTTP side of the local gateway: the WebSocket handshake (`$connect`) on
//! `/` and `/{stage}`, the `@connections` management API, and the page.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::events::{self, Peer};
use super::formats::{iso8601, random_id};
use super::guard::{host_allowed, host_name, management_allowed, origin_allowed, Unauthorized};
use super::invoke::{accepted, authorize, disconnected, invoke, Answer};
use super::settings::identity_source;
use super::slots::Lane;
use super::socket;
use super::state::{Gateway, Live, Outbox, Refused};
use crate::authorizer::Verdict;
use crate::clock::now_ms;
use crate::connection::is_domain_name;
use crate::error::chain;

pub(crate) fn router(gateway: Arc<Gateway>) -> Router {
    let manage = get(info).post(post).delete(delete);
    Router::new()
        .route("/", get(root))
        .route("/{stage}", get(staged))
        .route("/@connections/{id}", manage.clone())
        .route("/{stage}/@connections/{id}", manage)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            host_guard,
        ))
        .with_state(gateway)
}

/// Every request names this gateway in `Host` (see `guard::host_allowed`).
async fn host_guard(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host_allowed(host, gateway.settings.addr) {
        return next.run(request).await;
    }
    tracing::warn!(
        host = host.unwrap_or("(none)"),
        "refused a request for another host name (DNS rebinding?); open the gateway as localhost or 127.0.0.1"
    );
    (
        StatusCode::FORBIDDEN,
        "This host name is not served here.\n",
    )
        .into_response()
}

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// Clients connect at `wss://{domain}/{stage}`; `/` is served too.
async fn staged(
    State(gateway): State<Arc<Gateway>>,
    Path(stage): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    upgrade: Upgrade,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if stage != gateway.settings.stage {
        return forbidden();
    }
    root(State(gateway), ConnectInfo(remote), upgrade, headers, uri).await
}

/// A WebSocket handshake runs `$connect`; a plain GET gets the page.
async fn root(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    upgrade: Upgrade,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        // A handshake the WebSocket rules refuse (a bad version, say).
        Err(rejection) if is_websocket(&headers) => return rejection.into_response(),
        Err(_) => return Html(gateway.settings.page.unwrap_or(DEFAULT_PAGE)).into_response(),
    };
    if let Err(origin) = origin_allowed(&headers, &gateway.settings.origins) {
        tracing::warn!(
            origin,
            "refused a WebSocket from a page of another origin; add it to LAWCKET_LOCAL_ORIGINS to allow it"
        );
        return (StatusCode::FORBIDDEN, "This origin may not connect.\n").into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut peer = Peer {
        connection_id: random_id(),
        connected_at: now_ms(),
        source_ip: remote.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        // The host without its port. What API Gateway could not send as a
        // domainName (an IPv6 literal, `app.localhost.`) stands as
        // `localhost`, so the event stays one lawcket accepts.
        domain_name: match host_name(host) {
            Some(name) if is_domain_name(name) => name.to_owned(),
            _ => "localhost".to_owned(),
        },
        stage: gateway.settings.stage.clone(),
        authorizer: None,
    };
    if gateway.pipeline.has_authorizer() {
        match authorized(&gateway, &peer, &headers, uri.query()).await {
            Ok(fields) => peer.authorizer = Some(Arc::new(fields)),
            Err(status) => return status.into_response(),
        }
    }
    let request = events::connect(&peer, &headers, uri.query());
    // If the client leaves mid-handshake this future is dropped; the
    // invocation's own task then undoes a connect that was accepted.
    let slot = Arc::clone(&gateway.slots).acquire(Lane::Lifecycle).await;
    let response = match invoke(&gateway, slot, request, Some(peer.clone())).await {
        Answer::Response(response) => response,
        Answer::Failed(error) => {
            // As API Gateway does: the status only; the reason is in the log.
            tracing::error!(error = %chain(&error), "$connect failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Answer::TimedOut => {
            // AWS documents no status for this; 504 is what API Gateway
            // answers an HTTP request whose integration timed out.
            tracing::error!(
                timeout = ?gateway.settings.integration_timeout,
                "$connect did not answer within the integration timeout"
            );
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
    };
    if !accepted(&response) {
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // API Gateway gives the client the status only; the body (the
        // handler's reason) is for the developer.
        tracing::info!(
            status = status.as_u16(),
            body = ?response.body,
            "$connect refused the connection"
        );
        return status.into_response();
    }

    let (outbox, rx) = Outbox::new(gateway.settings.send_buffer);
    gateway.live().insert(
        peer.connection_id.clone(),
        Live {
            outbox: outbox.clone(),
            peer: peer.clone(),
            last_active: peer.connected_at,
        },
    );
    tracing::info!(connection_id = %peer.connection_id, "connected");
    let failed = (Arc::clone(&gateway), peer.clone());
    let headers = response.headers;
    let mut answer = upgrade
        // tungstenite's default buffers are 128 KiB each way per connection
        // (about 130 MB for 500 clients); frames here are at most 32 KiB.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_frame_size(gateway.settings.max_frame_bytes)
        .max_message_size(gateway.settings.max_message_bytes)
        .on_failed_upgrade(move |error| {
            let (gateway, peer) = failed;
            tracing::warn!(%error, "WebSocket upgrade failed after $connect");
            tokio::spawn(
                async move { disconnected(&gateway, &peer, 1006, "Upgrade failed").await },
            );
        })
        .on_upgrade(move |ws| socket::run(gateway, peer, ws, outbox, rx));
    // The integration's headers, as API Gateway returns them: above all
    // `Sec-WebSocket-Protocol`, whether or not the client offered it (a
    // browser then fails the connection), and none when the integration set
    // none. The handshake's own headers stay the handshake's.
    for (name, value) in &headers {
        if !HANDSHAKE_HEADERS.contains(name) {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

/// Headers of the 101 response that belong to the WebSocket handshake itself.
const HANDSHAKE_HEADERS: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
];

/// Runs the REQUEST authorizer before `$connect`, as API Gateway does: the
/// identity sources must all be present and non-empty (401 without running
/// it otherwise); then a Deny is 403, `Unauthorized` 401, and a failure or
/// no answer within the integration timeout 500 ("Controlling access to
/// WebSocket APIs with AWS Lambda REQUEST authorizers"; AWS documents no
/// status for an authorizer timeout). Allowed, its principal id and context
/// become `requestContext.authorizer` of every event of the connection.
async fn authorized(
    gateway: &Arc<Gateway>,
    peer: &Peer,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<HashMap<String, serde_json::Value>, StatusCode> {
    let request = events::authorizer(peer, headers, query);
    for source in &gateway.settings.identity_sources {
        let present = match identity_source(source) {
            Some(("header", name)) => request.header(name),
            Some((_, name)) => request.query(name),
            None => None,
        };
        if present.is_none_or(str::is_empty) {
            tracing::info!(identity_source = %source, "$connect without the authorizer's identity source: 401");
            return Err(StatusCode::UNAUTHORIZED);
        }
    }
    let slot = Arc::clone(&gateway.slots).acquire(Lane::Lifecycle).await;
    let started = std::time::Instant::now();
    match authorize(gateway, slot, request).await {
        Some(Ok(Verdict::Allow(identity))) => {
            let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok(identity.fields(latency))
        }
        Some(Ok(Verdict::Deny(_))) => Err(StatusCode::FORBIDDEN),
        Some(Ok(Verdict::Unauthorized(_))) => Err(StatusCode::UNAUTHORIZED),
        Some(Err(_)) => Err(StatusCode::INTERNAL_SERVER_ERROR),
        None => {
            tracing::error!(
                timeout = ?gateway.settings.integration_timeout,
                "the authorizer did not answer within the integration timeout"
            );
            Err(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Bytes each socket buffers before a read or write (tungstenite grows the
/// read buffer for a larger frame).
const SOCKET_BUFFER: usize = 8 * 1024;

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

const DEFAULT_PAGE: &str = include_str!("console.html");

/// An error as API Gateway's management API sends it: the SDK reads the
/// exception from `x-amzn-ErrorType`.
fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    (
        status,
        [
            ("x-amzn-ErrorType", error_type),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
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

fn forbidden() -> Response {
    aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

/// Why a management request is not served.
enum Denied {
    OtherStage,
    Unauthorized(Unauthorized),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::OtherStage | Denied::Unauthorized(Unauthorized::BrowserOrigin) => forbidden(),
            // API Gateway's answer to an unsigned request.
            Denied::Unauthorized(Unauthorized::Unsigned) => aws_error(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
        }
    }
}

/// The connection id of a management request this gateway serves: under its
/// stage or the root, signed, and not from a browser.
fn admit<'a>(
    gateway: &Gateway,
    params: &'a HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<&'a str, Denied> {
    if params
        .get("stage")
        .is_some_and(|stage| *stage != gateway.settings.stage)
    {
        return Err(Denied::OtherStage);
    }
    if let Err(why) = management_allowed(headers) {
        if why == Unauthorized::BrowserOrigin {
            tracing::warn!("refused a @connections request from a web page");
        }
        return Err(Denied::Unauthorized(why));
    }
    Ok(params.get("id").map(String::as_str).unwrap_or(""))
}

/// `POST @connections/{id}`: send data to the client.
async fn post(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match admit(&gateway, &params, &headers) {
        Ok(id) => id,
        Err(denied) => return denied.into_response(),
    };
    if body.len() > gateway.settings.max_message_bytes {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &format!(
                "Message of {} bytes is over the {} byte limit",
                body.len(),
                gateway.settings.max_message_bytes
            ),
        );
    }
    let outbox = match gateway.live().get(id) {
        Some(live) => live.outbox.clone(),
        None => return gone(),
    };
    match outbox.post(body.to_vec()) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(Refused::Gone) => gone(),
        // PostToConnection's LimitExceededException (429): "the WebSocket
        // client side buffer is full" (API Gateway management API reference).
        Err(Refused::Full) => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Too Many Requests",
        ),
    }
}

/// `GET @connections/{id}`: what API Gateway knows of the connection, in the
/// shape of its GetConnection answer.
async fn info(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let id = match admit(&gateway, &params, &headers) {
        Ok(id) => id,
        Err(denied) => return denied.into_response(),
    };
    let live = gateway.live();
    let Some(conn) = live.get(id) else {
        return gone();
    };
    let body = serde_json::json!({
        "connectedAt": iso8601(conn.peer.connected_at),
        "identity": { "sourceIp": conn.peer.source_ip, "userAgent": conn.peer.user_agent },
        "lastActiveAt": iso8601(conn.last_active),
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// `DELETE @connections/{id}`: close the connection (its `$disconnect` follows).
async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let id = match admit(&gateway, &params, &headers) {
        Ok(id) => id,
        Err(denied) => return denied.into_response(),
    };
    match gateway.live().get(id) {
        Some(conn) if conn.outbox.close() => StatusCode::NO_CONTENT.into_response(),
        _ => gone(),
    }
}
