//! The local gateway behaves as API Gateway does where a client or the
//! management API can tell: close codes, the handshake path, refusals without
//! a body, the integration timeout, the GetConnection shape (read through the
//! SDK), the stage of `@connections`, and a full client buffer answering 429.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lawcket::{Error, Kind};
use lawcket_runtime::test_util::Settings;
use lawcket_runtime::{BoxError, Config, Invocation};
use support::gateway::{close_code, eventually, eventually_within, next_text, Local};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message};

type Log = Arc<Mutex<Vec<(Kind, String, Option<i64>)>>>;

/// Records (kind, connection id, disconnect code). `?token=bad` refuses the
/// connect with a reason, `?slow=1` makes the connect outlast any timeout;
/// messages: `echo` answers, `slow` takes 3 s.
async fn start(settings: Settings) -> (Local, Log) {
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            let connection = invocation.connection().clone();
            let event = invocation.event();
            record.lock().unwrap().push((
                connection.kind(),
                connection.id().to_owned(),
                event.request().request_context.disconnect_status_code,
            ));
            if event.query("token") == Some("bad") {
                return Err(Error::reject(403, "secret reason: bad token").into());
            }
            if event.query("slow").is_some() {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let Some(publish) = invocation.publish() else {
                return Ok(());
            };
            let message: serde_json::Value = event.json().unwrap_or_default();
            match message["action"].as_str() {
                Some("echo") => publish.send(&message["data"]).await?,
                Some("slow") => tokio::time::sleep(Duration::from_secs(3)).await,
                _ => {}
            }
            Ok::<(), BoxError>(())
        }
    };
    let local = Local::start(Config::new("unused"), settings, handler).await;
    (local, log)
}

fn ids(log: &Log, kind: Kind) -> Vec<String> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, id, _)| id.clone())
        .collect()
}

fn disconnect_codes(log: &Log) -> Vec<i64> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(k, _, _)| *k == Kind::Close)
        .filter_map(|(_, _, code)| *code)
        .collect()
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(close_code(&mut client).await, 1003);
    eventually("$disconnect with 1003", || disconnect_codes(&log) == [1003]).await;
    assert!(ids(&log, Kind::Message).is_empty(), "no MESSAGE event");
    assert!(local.memory.is_empty(), "released");
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    let frame = Frame::message(vec![b'h', 0xff, 0xfe], OpCode::Data(Data::Text), true);
    client.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut client).await, 1007);
    eventually("$disconnect with 1007", || disconnect_codes(&log) == [1007]).await;
}

/// A handshake by hand, so the frames that follow can break the protocol.
async fn raw_websocket(local: &Local) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(local.addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nhost: {}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        local.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let (local, log) = start(Settings::default()).await;
    let mut stream = raw_websocket(&local).await;
    // A text frame "hi" without the mask every client frame must carry.
    stream.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    let mut frame = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut frame))
        .await
        .expect("a close frame within 5 s")
        .unwrap();
    assert_eq!(frame[0], 0x88, "a close frame: {frame:?}");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1002);
    eventually("$disconnect with 1002", || disconnect_codes(&log) == [1002]).await;
}

#[tokio::test]
async fn clients_connect_under_the_stage_path_too() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("local?channel=x").await.unwrap();
    client
        .send(Message::text(r#"{"action":"echo","data":"staged"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#""staged""#);
    match local.connect("other").await.unwrap_err() {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected 403 for another stage, got {other}"),
    }
    assert_eq!(
        ids(&log, Kind::Connect).len(),
        1,
        "no $connect for another stage"
    );
}

#[tokio::test]
async fn a_refused_connect_sends_the_status_without_its_reason() {
    let (local, _) = start(Settings::default()).await;
    match local.connect("?token=bad").await.unwrap_err() {
        tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
            let body = response.body().clone().unwrap_or_default();
            assert!(
                body.is_empty(),
                "API Gateway sends no body: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
        other => panic!("expected HTTP 403, got {other}"),
    }
}

#[tokio::test]
async fn a_message_past_the_integration_timeout_gets_api_gateways_answer() {
    let settings = Settings {
        integration_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let (local, _) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    client
        .send(Message::text(r#"{"action":"slow"}"#))
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(answer["message"], "Endpoint request timed out");
    assert!(answer["connectionId"].is_string() && answer["requestId"].is_string());
    // The connection stays open, as on API Gateway.
    client
        .send(Message::text(r#"{"action":"echo","data":1}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "1");
}

#[tokio::test]
async fn a_connect_past_the_integration_timeout_is_refused_and_undone() {
    let settings = Settings {
        integration_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    match local.connect("?slow=1").await.unwrap_err() {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 504),
        other => panic!("expected HTTP 504, got {other}"),
    }
    // The connect finishes late and is stored; its client never got the
    // connection, so a $disconnect releases it.
    let id = ids(&log, Kind::Connect).pop().unwrap();
    eventually_within(
        Duration::from_secs(15),
        "the late connect is undone",
        || ids(&log, Kind::Close) == [id.clone()],
    )
    .await;
    assert!(local.memory.is_empty(), "nothing left stored");
}

#[tokio::test]
async fn a_half_open_handshake_is_dropped() {
    let settings = Settings {
        handshake_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let (local, _) = start(settings).await;
    // One sends nothing, one half a request head.
    let mut silent = tokio::net::TcpStream::connect(local.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(local.addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    for stream in [&mut silent, &mut half] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("the gateway drops the connection");
        // Closed, perhaps after a 408; never a served request.
        assert!(
            read.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

#[tokio::test]
async fn get_connection_through_the_sdk() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    let management = local.management().await;

    let info = management
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(info.connected_at().is_some(), "{info:?}");
    assert!(info.last_active_at().is_some(), "{info:?}");
    let identity = info.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert!(identity.user_agent().is_some(), "{info:?}");

    management
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            "via the SDK",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "via the SDK");

    management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, 1000);
    eventually("released", || local.memory.is_empty()).await;
    let error = management
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_management_api_answers_under_its_stage_and_the_root_only() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    let (status, body) = local
        .http("POST", &format!("/prod/@connections/{id}"), b"wrong stage")
        .await;
    assert_eq!(status, 403, "{body}");
    for path in [
        format!("/local/@connections/{id}"),
        format!("/@connections/{id}"),
    ] {
        let (status, body) = local.http("POST", &path, b"right").await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(next_text(&mut client).await, "right");
    }
}

type PostError = aws_sdk_apigatewaymanagement::error::SdkError<
    aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError,
>;

/// Posts `chunk` to `id` until a post is refused: how many were accepted,
/// and the refusal. A client that reads nothing fills its socket's buffers,
/// then the gateway's.
async fn post_until_refused(
    management: &aws_sdk_apigatewaymanagement::Client,
    id: &str,
    chunk: &str,
) -> (usize, PostError) {
    for accepted in 0..2000 {
        let result = management
            .post_to_connection()
            .connection_id(id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(chunk))
            .send()
            .await;
        if let Err(error) = result {
            return (accepted, error);
        }
    }
    panic!("no post refused after 2000 of {} bytes", chunk.len());
}

#[tokio::test]
async fn a_client_that_does_not_read_fills_its_buffer_and_posts_answer_429() {
    let settings = Settings {
        send_buffer: 128 * 1024,
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    let management = local.management().await;
    // The client reads nothing: the socket's buffers fill, then the gateway's.
    let chunk = "x".repeat(64 * 1024);
    let (accepted, throttled) = post_until_refused(&management, &id, &chunk).await;
    assert!(
        throttled
            .as_service_error()
            .is_some_and(|e| e.is_limit_exceeded_exception()),
        "{throttled:?}"
    );
    // Nothing accepted is lost: the client gets every one once it reads.
    let mut received = 0;
    while received < accepted {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                assert_eq!(text.len(), chunk.len());
                received += 1;
            }
            other => panic!("after {received} of {accepted}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn posts_keep_a_connection_from_idling_out() {
    let settings = Settings {
        idle_timeout: Duration::from_millis(1500),
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    // Posts every 300 ms for twice the idle timeout keep it open.
    for i in 0..10 {
        let (status, _) = local
            .http(
                "POST",
                &format!("/@connections/{id}"),
                format!("{i}").as_bytes(),
            )
            .await;
        assert_eq!(status, 200, "post {i}: the connection idled out");
        assert_eq!(next_text(&mut client).await, format!("{i}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Then nothing: it closes.
    assert_eq!(close_code(&mut client).await, 1001);
}

/// A client that stops reading: posts fill its socket and then its buffer
/// (429), the stalled write drops it with 1006 after the write timeout, even
/// with a DELETE in its queue, and with a single slot another client is
/// served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_holds_up_no_one() {
    let settings = Settings {
        concurrency: 1,
        send_buffer: 128 * 1024,
        write_timeout: Duration::from_millis(500),
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut stuck = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    let management = local.management().await;
    post_until_refused(&management, &id, &"x".repeat(64 * 1024)).await;
    // It still sends: its message takes the only slot and runs.
    stuck
        .send(Message::text(r#"{"action":"none"}"#))
        .await
        .unwrap();
    let (status, _) = local
        .http("DELETE", &format!("/@connections/{id}"), b"")
        .await;
    assert!(status == 204 || status == 410, "DELETE answered {status}");

    let mut other = local.connect("").await.unwrap();
    other
        .send(Message::text(r#"{"action":"echo","data":"served"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut other).await, r#""served""#);

    eventually_within(
        Duration::from_secs(15),
        "the stuck client is dropped",
        || ids(&log, Kind::Close).contains(&id),
    )
    .await;
    // Dropped for its stalled write (its DELETE waited behind it).
    assert_eq!(disconnect_codes(&log), [1006]);
    assert!(local.memory.get(&id).is_none(), "released");
    let (status, _) = local.http("GET", &format!("/@connections/{id}"), b"").await;
    assert_eq!(status, 410);
    drop(stuck);
}

/// Pings are not data: a client that only pings idles out (AWS does not say
/// which traffic resets the timer; lawcket counts data either way).
#[tokio::test]
async fn pings_do_not_keep_a_connection_from_idling_out() {
    let settings = Settings {
        idle_timeout: Duration::from_millis(1000),
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    let pinging = async {
        for _ in 0..20 {
            if client.send(Message::Ping(vec![1].into())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // 20 pings over 4 s; the connection has closed after 1 s regardless
    // (were pings data, it would be open until 1 s after the last).
    pinging.await;
    assert_eq!(disconnect_codes(&log), [1001]);
}

/// The socket closes as soon as the close handshake is done, not when
/// `$disconnect` has run: a slow handler does not keep a client waiting, or
/// its descriptor open. Both ways: the client closes, or the gateway does.
#[tokio::test]
async fn a_slow_disconnect_does_not_hold_the_socket() {
    let connected: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&connected);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            let connection = invocation.connection();
            match connection.kind() {
                Kind::Connect => record.lock().unwrap().push(connection.id().to_owned()),
                Kind::Close => tokio::time::sleep(Duration::from_secs(3)).await,
                Kind::Message => {}
            }
            Ok::<(), BoxError>(())
        }
    };
    let local = Local::start(Config::new("unused"), Settings::default(), handler).await;
    let until_end = |mut client: support::gateway::Client| async move {
        let mut code = None;
        while let Some(Ok(message)) = client.next().await {
            if let Message::Close(frame) = message {
                code = frame.map(|f| u16::from(f.code));
            }
        }
        code
    };

    let mut client = local.connect("").await.unwrap();
    client.close(None).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(1), until_end(client)).await;
    assert!(
        ended.is_ok(),
        "the socket stayed open while $disconnect ran"
    );

    let client = local.connect("").await.unwrap();
    let management = local.management().await;
    let id = connected.lock().unwrap()[1].clone();
    management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let code = tokio::time::timeout(Duration::from_secs(1), until_end(client)).await;
    assert_eq!(
        code.expect("the socket stayed open while $disconnect ran"),
        Some(1000)
    );
}
