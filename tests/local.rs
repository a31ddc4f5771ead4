//! The local gateway with real WebSocket clients (tokio-tungstenite): API
//! Gateway's event shapes, limits, timeouts and `@connections` semantics.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use lawcket::{Error, Kind};
use lawcket_runtime::test_util::Settings;
use lawcket_runtime::{BoxError, Config, Invocation};
use support::gateway::{close_code, eventually, next_text, Local};
use tokio_tungstenite::tungstenite::{self, Message};

#[derive(Clone, Debug)]
struct Seen {
    kind: Kind,
    id: String,
    route: String,
    disconnect_code: Option<i64>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A handler that records every event and acts on `{"action": ...}` messages:
/// `echo` answers the sender, `fail` fails, `send` posts to `to`.
async fn start(settings: Settings) -> (Local, Log) {
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            let connection = invocation.connection().clone();
            record.lock().unwrap().push(Seen {
                kind: connection.kind(),
                id: connection.id().to_owned(),
                route: connection.route_key().to_owned(),
                disconnect_code: invocation
                    .event()
                    .request()
                    .request_context
                    .disconnect_status_code,
            });
            let event = invocation.event();
            if connection.kind() == Kind::Connect && event.query("token") == Some("bad") {
                return Err(Error::reject(403, "bad token").into());
            }
            let Some(publish) = invocation.publish() else {
                return Ok(());
            };
            let message: serde_json::Value = event.json().unwrap_or_default();
            match message["action"].as_str() {
                Some("echo") => publish.send(&message["data"]).await?,
                Some("fail") => return Err::<(), BoxError>("the handler failed on purpose".into()),
                Some("send") => {
                    let to = message["to"].as_str().unwrap();
                    if let Err(error) = publish.to(to, &message["data"]).await {
                        publish.send(&format!("error: {error}")).await?;
                    }
                }
                _ => {}
            }
            Ok(())
        }
    };
    let local = Local::start(Config::new("unused"), settings, handler).await;
    (local, log)
}

fn ids(log: &Log, kind: Kind) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.id.clone())
        .collect()
}

#[tokio::test]
async fn connect_message_disconnect_round_trip() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("?channel=%23general").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().expect("$connect ran");
    assert_eq!(id.len(), 16, "{id}");
    assert!(local.memory.get(&id).is_some(), "stored on $connect");

    client
        .send(Message::text(r#"{"action":"echo","data":"hi"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#""hi""#);
    assert_eq!(
        log.lock().unwrap()[1].route,
        "$default",
        "no custom routes by default"
    );

    client.close(None).await.unwrap();
    eventually("$disconnect ran", || ids(&log, Kind::Close) == [id.clone()]).await;
    assert!(local.memory.is_empty(), "released on close");
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.disconnect_code, Some(1005));
}

#[tokio::test]
async fn route_selection_names_declared_routes() {
    let settings = Settings {
        routes: Some(vec!["echo".into()]),
        // Binary frames as base64 messages (API Gateway closes with 1003).
        accept_binary: true,
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    client
        .send(Message::text(r#"{"action":"echo","data":1}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "1");
    client
        .send(Message::text(r#"{"action":"nope"}"#))
        .await
        .unwrap();
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    eventually("three messages", || ids(&log, Kind::Message).len() == 3).await;
    let routes: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.kind == Kind::Message)
        .map(|s| s.route.clone())
        .collect();
    assert!(routes.contains(&"echo".to_owned()));
    assert_eq!(routes.iter().filter(|r| *r == "$default").count(), 2);
}

#[tokio::test]
async fn posts_to_a_closed_connection_answer_410_and_surface_as_gone() {
    let (local, log) = start(Settings::default()).await;
    let mut sender = local.connect("").await.unwrap();
    let mut gone = local.connect("").await.unwrap();
    let connects = ids(&log, Kind::Connect);
    let (sender_id, gone_id) = (connects[0].clone(), connects[1].clone());

    // Reachable while open: POST delivers, GET describes.
    let (status, _) = local
        .http("POST", &format!("/@connections/{gone_id}"), b"direct")
        .await;
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut gone).await, "direct");
    let (status, body) = local
        .http("GET", &format!("/local/@connections/{gone_id}"), b"")
        .await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");

    gone.close(None).await.unwrap();
    eventually("closed", || ids(&log, Kind::Close).len() == 1).await;
    let (status, _) = local
        .http("POST", &format!("/@connections/{gone_id}"), b"late")
        .await;
    assert_eq!(status, 410);
    let (status, _) = local
        .http("GET", &format!("/@connections/{gone_id}"), b"")
        .await;
    assert_eq!(status, 410);

    // Through the publisher: the 410 becomes Error::Gone.
    let request = serde_json::json!({ "action": "send", "to": gone_id, "data": "x" });
    sender
        .send(Message::text(request.to_string()))
        .await
        .unwrap();
    let answer = next_text(&mut sender).await;
    assert!(
        answer.contains(&format!("connection {gone_id} is gone (410 Gone)")),
        "{answer}"
    );
    let _ = sender_id;
}

#[tokio::test]
async fn delete_closes_the_connection() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    let id = ids(&log, Kind::Connect).pop().unwrap();
    let (status, _) = local
        .http("DELETE", &format!("/@connections/{id}"), b"")
        .await;
    assert_eq!(status, 204);
    assert_eq!(close_code(&mut client).await, 1000);
    eventually("released", || local.memory.is_empty()).await;
}

#[tokio::test]
async fn a_refused_connect_refuses_the_handshake_with_its_status() {
    let (local, log) = start(Settings::default()).await;
    let error = local.connect("?token=bad").await.unwrap_err();
    match error {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other}"),
    }
    assert!(
        local.memory.is_empty(),
        "nothing stored for a refused connection"
    );
    assert_eq!(
        ids(&log, Kind::Close),
        Vec::<String>::new(),
        "no $disconnect for a refused $connect"
    );
}

#[tokio::test]
async fn a_failing_message_gets_api_gateways_internal_error() {
    let (local, _) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    client
        .send(Message::text(r#"{"action":"fail"}"#))
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(answer["message"], "Internal server error");
    assert!(answer["connectionId"].is_string());
}

#[tokio::test]
async fn frames_over_32_kib_close_with_1009() {
    let (local, log) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    // Just under the limit passes.
    let fits = format!(
        r#"{{"action":"echo","data":"{}"}}"#,
        "a".repeat(32 * 1024 - 40)
    );
    client.send(Message::text(fits)).await.unwrap();
    assert_eq!(next_text(&mut client).await.len(), 32 * 1024 - 40 + 2);
    client
        .send(Message::binary(vec![0u8; 32 * 1024 + 1]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, 1009);
    eventually("$disconnect with 1009", || {
        log.lock()
            .unwrap()
            .iter()
            .any(|s| s.kind == Kind::Close && s.disconnect_code == Some(1009))
    })
    .await;
}

#[tokio::test]
async fn messages_over_128_kib_close_with_1009() {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    let (local, _) = start(Settings::default()).await;
    let mut client = local.connect("").await.unwrap();
    // Five 30 KiB frames of one message: each frame fits, the message (150 KiB) does not.
    let chunk = vec![b'x'; 30 * 1024];
    for i in 0..5 {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(chunk.clone(), opcode, i == 4);
        if client.send(Message::Frame(frame)).await.is_err() {
            break; // the server may already have closed
        }
    }
    assert_eq!(close_code(&mut client).await, 1009);
    eventually("released", || local.memory.is_empty()).await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_released() {
    let settings = Settings {
        idle_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let (local, log) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    assert_eq!(close_code(&mut client).await, 1001);
    eventually("$disconnect after idle timeout", || {
        ids(&log, Kind::Close).len() == 1
    })
    .await;
    assert!(local.memory.is_empty());
}

#[tokio::test]
async fn connections_end_at_the_maximum_duration() {
    let settings = Settings {
        max_duration: Duration::from_millis(300),
        ..Settings::default()
    };
    let (local, _) = start(settings).await;
    let mut client = local.connect("").await.unwrap();
    assert_eq!(close_code(&mut client).await, 1001);
    eventually("released", || local.memory.is_empty()).await;
}

#[tokio::test]
async fn an_abrupt_drop_still_disconnects() {
    let (local, log) = start(Settings::default()).await;
    let client = local.connect("").await.unwrap();
    drop(client); // no close frame: the TCP connection just ends
    eventually("$disconnect after a drop", || {
        ids(&log, Kind::Close).len() == 1
    })
    .await;
    assert_eq!(
        log.lock().unwrap().last().unwrap().disconnect_code,
        Some(1006)
    );
    assert!(local.memory.is_empty());
}

/// The example binary outside Lambda, with `LAWCKET_LOCAL_REGISTRY=dynamodb`:
/// connections go to a real table (moto) through the SDK.
#[tokio::test]
async fn the_binary_can_keep_local_connections_in_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use futures_util::StreamExt;
    let table = env!("CONNECTIONS_TABLE");
    let moto = support::moto::start();
    let dynamo = moto.client().await;
    support::moto::create_table(&dynamo, table).await;
    let port = support::free_port();
    let mut child = std::process::Command::new(support::example("echo"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
        .env("LAWCKET_LOCAL_REGISTRY", "dynamodb")
        .envs(moto.env())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the echo example did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scan = || async {
        dynamo
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    };

    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .unwrap();
    let items = scan().await;
    assert_eq!(items.len(), 1, "stored in DynamoDB on connect");
    assert_eq!(items[0]["stage"], AttributeValue::S("local".into()));
    assert_eq!(items[0]["channel"], AttributeValue::S("#general".into()));
    let id = items[0]["connectionId"].as_s().unwrap().clone();

    client.send(Message::text("ping")).await.unwrap();
    let answer = loop {
        match client.next().await.unwrap().unwrap() {
            Message::Text(text) => break text.as_str().to_owned(),
            _ => continue,
        }
    };
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer, serde_json::json!({ "echo": "ping", "from": id }));

    client.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !scan().await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "released from DynamoDB on close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn broadcast_reaches_exactly_the_clients_of_one_channel() {
    use lawcket::Dynamic;
    let config = Config::new("unused").sync_dynamic("channel", Dynamic::query("channel"));
    let handler = |invocation: Invocation| async move {
        if let Some(publish) = invocation.publish() {
            let message: serde_json::Value = invocation.event().json()?;
            let channel = message["channel"].as_str().unwrap_or_default();
            let report = publish
                .matching("channel", channel)
                .send(&message["text"])
                .await?;
            publish
                .send(&format!("delivered to {}", report.delivered))
                .await?;
        }
        Ok::<(), BoxError>(())
    };
    let local = Local::start(config, Settings::default(), handler).await;
    let mut a = local.connect("?channel=%23general").await.unwrap();
    let mut b = local.connect("?channel=%23general").await.unwrap();
    let mut c = local.connect("?channel=%23random").await.unwrap();

    let say = |channel: &str, text: &str| {
        Message::text(serde_json::json!({ "channel": channel, "text": text }).to_string())
    };
    a.send(say("#general", "hello general")).await.unwrap();
    // a gets its own copy, then the report; b gets the copy; c gets nothing.
    let mut got_a = vec![next_text(&mut a).await, next_text(&mut a).await];
    got_a.sort();
    assert_eq!(got_a, [r#""delivered to 2""#, r#""hello general""#]);
    assert_eq!(next_text(&mut b).await, r#""hello general""#);

    c.send(say("#random", "hello random")).await.unwrap();
    let mut got_c = vec![next_text(&mut c).await, next_text(&mut c).await];
    got_c.sort();
    assert_eq!(
        got_c,
        [r#""delivered to 1""#, r#""hello random""#],
        "c saw nothing of #general"
    );
    // Neither a nor b got the #random message: their next message is a fresh one.
    b.send(say("#general", "second")).await.unwrap();
    assert_eq!(next_text(&mut a).await, r#""second""#);
}

/// `cargo run --example announce` with no AWS account: the local gateway has
/// no SQS, so a dispatched broadcast is worked in the same process, as SQS
/// and the queue's Lambda workers would work it, and reaches every client
/// once; its report counts them.
#[tokio::test]
async fn the_announce_example_fans_out_locally_without_a_queue() {
    let port = support::free_port();
    let log = std::env::temp_dir().join(format!("lawcket-announce-{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = std::process::Command::new(support::example("announce"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
        // Batches of 2, so five clients make three batches.
        .env("LAWCKET_FANOUT_BATCH", "2")
        .stdout(std::process::Stdio::from(file.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .unwrap();
    support::wait_listening(port, &mut child, || {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let mut clients = Vec::new();
    for _ in 0..5 {
        let (client, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
            .await
            .unwrap();
        clients.push(client);
    }
    let announce = r#"{"action":"announce","text":"maintenance at noon"}"#;
    clients[0].send(Message::text(announce)).await.unwrap();
    // The sender gets its reply and the announcement, in either order.
    let mut dispatched = None;
    let mut announced = 0;
    for _ in 0..2 {
        let value = next_json(&mut clients[0], &log).await;
        match value["type"].as_str() {
            Some("dispatched") => dispatched = Some(value),
            Some("announcement") => announced += 1,
            _ => panic!("unexpected {value}; log:\n{}", read_log()),
        }
    }
    let dispatched = dispatched.unwrap();
    assert_eq!(announced, 1);
    assert_eq!(dispatched["connections"], 5);
    assert_eq!(dispatched["batches"], 3);
    for client in &mut clients[1..] {
        let value = next_json(client, &log).await;
        assert_eq!(value["type"], "announcement", "{value}");
        assert_eq!(value["text"], "maintenance at noon");
    }

    let id = dispatched["broadcast"].as_str().unwrap();
    let ask = format!(r#"{{"action":"report","broadcast":"{id}"}}"#);
    let finished = serde_json::json!({
        "delivered": 5, "released": 0, "failed": 0,
        "batches_done": 3, "batches": 3, "connections": 5
    });
    // Until every batch is finished (a failure bound, not a measurement:
    // it takes milliseconds).
    let mut tries = 0;
    let report = loop {
        clients[1].send(Message::text(ask.clone())).await.unwrap();
        let value = next_json(&mut clients[1], &log).await;
        assert_eq!(value["type"], "report", "{value}");
        if value["report"]["batches_done"] == 3 {
            break value["report"].clone();
        }
        tries += 1;
        assert!(
            tries < 100,
            "the broadcast was not finished after {tries} reports (the last: {value}); log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(report, finished);
    // Exactly once: each client's next message is the report it asks for
    // now. A second announcement to it would come before: every post of a
    // batch is made before the batch is recorded finished, and the report
    // said all were.
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(Message::text(ask.clone())).await.unwrap();
        let value = next_json(client, &log).await;
        assert_eq!(
            value["type"],
            "report",
            "client {i} received {value} after the broadcast was finished, not its report; \
             log:\n{}",
            read_log()
        );
        assert_eq!(value["broadcast"], id, "{value}");
        assert_eq!(value["report"], finished, "client {i}: {value}");
    }
}

/// The next text message of `client`, as JSON (10 s at most; the server's
/// `log` shown otherwise).
async fn next_json(
    client: &mut support::gateway::Client,
    log: &std::path::Path,
) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("no message in 10 s; log:\n{log}")
            })
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
