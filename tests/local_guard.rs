//! What keeps a web page from using the local gateway: the Origin of a
//! WebSocket handshake, the Host of every request (DNS rebinding), and
//! signed, non-browser requests only on the management API. The same
//! refusals from a real browser are in tests/browser.rs.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use lawcket_runtime::test_util::Settings;
use lawcket_runtime::{BoxError, Config, Invocation};
use support::gateway::{next_text, Local, SIGNED};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Echoes `{"action":"echo","data":..}`; remembers connection ids.
async fn start(settings: Settings) -> (Local, Arc<Mutex<Vec<String>>>) {
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&ids);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            if invocation.publish().is_none() {
                record
                    .lock()
                    .unwrap()
                    .push(invocation.connection().id().to_owned());
                return Ok(());
            }
            let message: serde_json::Value = invocation.event().json()?;
            invocation.publish().unwrap().send(&message["data"]).await?;
            Ok::<(), BoxError>(())
        }
    };
    let local = Local::start(Config::new("unused"), settings, handler).await;
    (local, ids)
}

/// A handshake with these extra headers: the status it got.
async fn handshake(local: &Local, headers: &[(&'static str, String)]) -> u16 {
    let mut request = format!("ws://{}/", local.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake failed without a status: {other}"),
    }
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_open_a_websocket() {
    let settings = Settings {
        origins: vec!["http://localhost:5173".into()],
        ..Settings::default()
    };
    let (local, ids) = start(settings).await;
    let own = format!("http://{}", local.addr);
    for refused in [
        "http://evil.example",
        "http://127.0.0.1:1",
        "https://localhost:5173",
        "null",
    ] {
        let status = handshake(&local, &[("origin", refused.into())]).await;
        assert_eq!(status, 403, "Origin {refused}");
    }
    assert!(ids.lock().unwrap().is_empty(), "no $connect ran for them");
    // The gateway's own page, an allowed origin, and clients that are no browser.
    assert_eq!(handshake(&local, &[("origin", own)]).await, 101);
    assert_eq!(
        handshake(&local, &[("origin", "http://localhost:5173".into())]).await,
        101
    );
    assert_eq!(handshake(&local, &[]).await, 101);
}

#[tokio::test]
async fn requests_for_another_host_name_are_refused() {
    let (local, ids) = start(Settings::default()).await;
    let port = local.addr.port();
    let rebound = format!("host: rebind.example:{port}");
    // The page, the handshake and the management API.
    let (status, _) = local.raw_http("GET", "/", &rebound, b"").await;
    assert_eq!(status, 403);
    let upgrade = format!(
        "{rebound}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13"
    );
    let (status, _) = local.raw_http("GET", "/", &upgrade, b"").await;
    assert_eq!(status, 403);
    assert!(ids.lock().unwrap().is_empty(), "no $connect ran");
    let mut client = local.connect("").await.unwrap();
    let id = ids.lock().unwrap()[0].clone();
    let signed = format!("{rebound}\r\nauthorization: {SIGNED}");
    for method in ["POST", "GET", "DELETE"] {
        let (status, _) = local
            .raw_http(method, &format!("/@connections/{id}"), &signed, b"rebound")
            .await;
        assert_eq!(status, 403, "{method}");
    }
    // The loopback names pass.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let (status, _) = local
            .raw_http("GET", "/", &format!("host: {host}"), b"")
            .await;
        assert_eq!(status, 200, "{host}");
    }
    // The client is still there and got nothing.
    client
        .send(Message::text(r#"{"action":"echo","data":"still here"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#""still here""#);
}

#[tokio::test]
async fn the_management_api_takes_signed_requests_from_no_browser() {
    let (local, ids) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids.lock().unwrap()[0].clone();
    let host = format!("host: {}", local.addr);
    let path = format!("/@connections/{id}");

    // Unsigned: API Gateway's answer.
    for method in ["POST", "GET", "DELETE"] {
        let (status, body) = local.raw_http(method, &path, &host, b"unsigned").await;
        assert_eq!(status, 403, "{method}");
        assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
    }
    // Signed, but from a page.
    let browser = format!(
        "{host}\r\nauthorization: {SIGNED}\r\norigin: http://{}",
        local.addr
    );
    for method in ["POST", "GET", "DELETE"] {
        let (status, _) = local
            .raw_http(method, &path, &browser, b"from a page")
            .await;
        assert_eq!(status, 403, "{method}");
    }
    // Signed and no browser: delivered. The client's next message is that
    // one, so nothing refused above reached it.
    let (status, _) = local.http("POST", &path, b"signed").await;
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut client).await, "signed");
    let nothing = tokio::time::timeout(Duration::from_millis(300), next_text(&mut client)).await;
    assert!(nothing.is_err(), "nothing else arrived: {nothing:?}");
}
