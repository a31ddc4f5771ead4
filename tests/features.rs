//! Middleware, plugins, dynamic sync fields, manual sync, conditional updates
//! and typed routes, through the real pipeline (memory registry) and, for
//! `$connect` refusals, through the local gateway with a WebSocket client.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lawcket::{Dynamic, Error, Event, Kind, SyncValue};
use lawcket_runtime::test_util::{offline_sdk_config, Memory, Pipeline, Registry, Settings};
use lawcket_runtime::{BoxError, Config, Handler, Invocation};
use support::fixture;

const ID: &str = "0PYxyh3bqNs7z8s=";

fn event(name: &str) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(fixture(name)).unwrap()
}

async fn pipeline(config: Config, handler: impl Handler) -> (Pipeline, Arc<Memory>) {
    let memory = Arc::new(Memory::new());
    let registry = Registry::Memory(Arc::clone(&memory));
    (
        Pipeline::new(config, registry, offline_sdk_config().await, None, handler),
        memory,
    )
}

fn ok_handler() -> impl Handler {
    |_: Invocation| async { Ok::<(), BoxError>(()) }
}

type Trace = Arc<Mutex<Vec<String>>>;

/// A middleware that appends `name` to the trace and to the event's body text.
fn tracer(trace: &Trace, name: &'static str) -> impl lawcket_runtime::IntoMiddleware {
    let trace = Arc::clone(trace);
    move |mut event: Event, _connection: lawcket::Connection| {
        let trace = Arc::clone(&trace);
        async move {
            trace.lock().unwrap().push(name.to_owned());
            let text = event.text().map(|t| t.into_owned()).unwrap_or_default();
            event.set_body(lawcket::Body::Text(format!("{text}|{name}")));
            Ok::<Event, BoxError>(event)
        }
    }
}

#[tokio::test]
async fn middleware_runs_in_order_and_may_change_the_event() {
    let trace: Trace = Arc::default();
    let seen: Arc<Mutex<Option<lawcket::Body>>> = Arc::default();
    let record = Arc::clone(&seen);
    let config = Config::new("t")
        .middleware("first", tracer(&trace, "first"))
        .middleware("second", tracer(&trace, "second"));
    let handler = move |invocation: Invocation| {
        *record.lock().unwrap() = Some(invocation.event().body().clone());
        async { Ok::<(), BoxError>(()) }
    };
    let (pipeline, _) = pipeline(config, handler).await;
    pipeline.run(event("message-json.json")).await.unwrap();
    assert_eq!(*trace.lock().unwrap(), ["first", "second"]);
    let body = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        body,
        lawcket::Body::Text(r#"{"action":"sendmessage","data":"hi"}|first|second"#.into())
    );
}

fn rejecting(status: u16) -> impl lawcket_runtime::IntoMiddleware {
    move |event: Event, _: lawcket::Connection| async move {
        match event.query("token") {
            Some("good") => Ok(event),
            _ => Err::<Event, BoxError>(Error::reject(status, "a valid token is required").into()),
        }
    }
}

#[tokio::test]
async fn a_rejecting_middleware_refuses_connect_with_its_status_and_stores_nothing() {
    for status in [401, 403, 429] {
        let trace: Trace = Arc::default();
        let config = Config::new("t")
            .middleware("auth", rejecting(status))
            .middleware("after", tracer(&trace, "after"));
        let ran = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&ran);
        let handler = move |_: Invocation| {
            *flag.lock().unwrap() = true;
            async { Ok::<(), BoxError>(()) }
        };
        let (pipeline, memory) = pipeline(config, handler).await;
        let response = pipeline.run(event("connect.json")).await.unwrap();
        assert_eq!(response.status_code, i64::from(status));
        assert!(memory.is_empty(), "nothing stored");
        assert!(!*ran.lock().unwrap(), "the handler did not run");
        assert!(
            trace.lock().unwrap().is_empty(),
            "later middleware did not run"
        );
    }
}

#[tokio::test]
async fn a_rejecting_middleware_fails_a_message_invocation() {
    let config = Config::new("t").middleware("auth", rejecting(403));
    let (pipeline, _) = pipeline(config, ok_handler()).await;
    let err = pipeline.run(event("message-json.json")).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 403, .. }), "{err}");
}

#[tokio::test]
async fn a_rejecting_middleware_cannot_stop_a_disconnect_from_releasing() {
    let config = Config::new("t").middleware("auth", rejecting(403));
    let (pipeline, memory) = pipeline(config, ok_handler()).await;
    let mut connect = event("connect.json");
    connect.query_string_parameters =
        std::collections::HashMap::from([("token".to_owned(), "good".to_owned())]).into();
    assert_eq!(pipeline.run(connect).await.unwrap().status_code, 200);
    assert_eq!(memory.len(), 1);
    assert!(pipeline.run(event("disconnect.json")).await.is_err());
    assert!(memory.is_empty(), "released all the same");
}

#[tokio::test]
async fn plugins_run_concurrently_with_the_handler_and_their_failures_count() {
    // Handler and plugin each wait for the other to have started: this only
    // completes if they overlap in time.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let meet = |barrier: &Arc<tokio::sync::Barrier>| {
        let barrier = Arc::clone(barrier);
        move |invocation: Invocation| {
            let barrier = Arc::clone(&barrier);
            async move {
                assert_eq!(invocation.connection().kind(), Kind::Message);
                assert!(
                    invocation.publish().is_some(),
                    "plugins get the same arguments"
                );
                tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                    .await
                    .map_err(|_| "handler and plugin did not overlap")?;
                Ok::<(), BoxError>(())
            }
        }
    };
    let config = Config::new("t").plugin("audit", meet(&barrier));
    let (overlapping, _) = pipeline(config, meet(&barrier)).await;
    overlapping.run(event("message-json.json")).await.unwrap();

    let failing = |_: Invocation| async { Err::<(), BoxError>("disk full".into()) };
    let config = Config::new("t").plugin("audit", failing);
    let (pipeline, _) = pipeline(config, ok_handler()).await;
    let err = pipeline.run(event("message-json.json")).await.unwrap_err();
    assert_eq!(support::chain(&err), "plugin `audit` failed: disk full");
}

fn connect_with(
    query: &[(&str, &str)],
    headers: &[(&'static str, &str)],
) -> ApiGatewayWebsocketProxyRequest {
    let mut request = event("connect.json");
    request.query_string_parameters = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    for (name, value) in headers {
        request.headers.insert(*name, value.parse().unwrap());
    }
    request
}

fn dynamic_config() -> Config {
    Config::new("t")
        .sync_field("app", "chat")
        .sync_dynamic(
            "channel",
            Dynamic::query("channel")
                .default("#general")
                .max_len(16)
                .chars("a-z0-9#-"),
        )
        .sync_dynamic("team", Dynamic::header("x-team"))
}

#[tokio::test]
async fn dynamic_fields_come_from_query_and_headers_with_defaults() {
    let (pipeline, memory) = pipeline(dynamic_config(), ok_handler()).await;
    let response = pipeline
        .run(connect_with(&[("channel", "#rust")], &[("x-team", "core")]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    let fields = memory.get(ID).unwrap().fields;
    assert_eq!(
        fields,
        [
            ("app".to_owned(), SyncValue::from("chat")),
            ("channel".to_owned(), SyncValue::from("#rust")),
            ("team".to_owned(), SyncValue::from("core")),
        ]
    );
    pipeline.run(event("disconnect.json")).await.unwrap();
    pipeline
        .run(connect_with(&[], &[("X-Team", "ops")]))
        .await
        .unwrap();
    assert_eq!(
        memory.get(ID).unwrap().fields[1].1,
        SyncValue::from("#general"),
        "default"
    );
}

#[tokio::test]
async fn invalid_or_missing_dynamic_fields_refuse_with_400_naming_the_field() {
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        &'a [(&'static str, &'a str)],
        &'a str,
    );
    let cases: [Case; 4] = [
        (
            &[],
            &[],
            "missing sync field `team`: connect with the header `x-team`",
        ),
        (
            &[("channel", "#Rust")],
            &[("x-team", "a")],
            "sync field `channel`: `R` is not allowed",
        ),
        (
            &[("channel", "#a-very-long-channel-name")],
            &[("x-team", "a")],
            "sync field `channel`: 25 characters, over the limit of 16",
        ),
        (
            &[],
            &[("x-team", "<script>")],
            "sync field `team`: `<` is not allowed",
        ),
    ];
    let logs = support::logs::capture();
    for (query, headers, message) in cases {
        let (pipeline, memory) = pipeline(dynamic_config(), ok_handler()).await;
        let response = pipeline.run(connect_with(query, headers)).await.unwrap();
        assert_eq!(response.status_code, 400);
        // The client is told "Bad Request"; the reason goes to the log.
        let body = format!("{:?}", response.body);
        assert!(
            body.contains("Bad Request") && !body.contains(message),
            "{body}"
        );
        let log = logs.text();
        assert!(
            log.contains(message),
            "the log should say {message}:\n{log}"
        );
        assert!(memory.is_empty());
    }
}

#[tokio::test]
async fn manual_sync_stores_and_releases_only_when_the_handler_says() {
    let handler = |invocation: Invocation| async move {
        let registration = invocation.registration();
        match invocation.connection().kind() {
            Kind::Connect if invocation.event().query("channel") == Some("#general") => {
                registration.register().await?
            }
            Kind::Close => registration.release().await?,
            _ => {}
        }
        Ok::<(), BoxError>(())
    };
    let (pipeline, memory) = pipeline(dynamic_config().manual_sync(), handler).await;
    pipeline
        .run(connect_with(&[("channel", "#other")], &[("x-team", "a")]))
        .await
        .unwrap();
    assert!(
        memory.is_empty(),
        "manual sync: nothing stored unless the handler registers"
    );
    pipeline
        .run(connect_with(&[("channel", "#general")], &[("x-team", "a")]))
        .await
        .unwrap();
    assert_eq!(
        memory.get(ID).unwrap().fields[1].1,
        SyncValue::from("#general")
    );
    pipeline.run(event("disconnect.json")).await.unwrap();
    assert!(memory.is_empty(), "released by the handler");
}

#[tokio::test]
async fn set_writes_declared_fields_only_and_never_resurrects() {
    let outcome: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&outcome);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            if invocation.connection().kind() == Kind::Message {
                let r = invocation.registration();
                for (field, value) in [
                    ("channel", SyncValue::from("#rust")),
                    ("nope", "x".into()),
                    ("channel", "bad value".into()),
                    ("app", 5.into()),
                ] {
                    let result = r.set(field, value).await;
                    record.lock().unwrap().push(
                        result
                            .map(|()| "ok".to_owned())
                            .unwrap_or_else(|e| e.to_string()),
                    );
                }
            }
            Ok::<(), BoxError>(())
        }
    };
    let (pipeline, memory) = pipeline(dynamic_config(), handler).await;
    pipeline
        .run(connect_with(&[], &[("x-team", "a")]))
        .await
        .unwrap();
    pipeline.run(event("message-json.json")).await.unwrap();
    assert_eq!(
        memory.get(ID).unwrap().fields[1].1,
        SyncValue::from("#rust")
    );
    let results = outcome.lock().unwrap().clone();
    assert_eq!(results[0], "ok");
    assert!(
        results[1].contains("`nope` is not a declared sync field (declared: app, channel, team)"),
        "{}",
        results[1]
    );
    assert!(results[2].contains("` ` is not allowed"), "{}", results[2]);
    assert!(
        results[3].contains("sync field `app` is fixed"),
        "{}",
        results[3]
    );

    pipeline.run(event("disconnect.json")).await.unwrap();
    outcome.lock().unwrap().clear();
    pipeline.run(event("message-json.json")).await.unwrap();
    assert!(
        memory.is_empty(),
        "a released connection is not written back"
    );
    assert_eq!(
        outcome.lock().unwrap()[0],
        format!("connection {ID} is no longer registered; nothing was written")
    );
}

#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    Join { channel: String },
    SendMessage { data: String },
}

#[tokio::test]
async fn routes_reach_the_handler_and_bodies_deserialise_into_tagged_enums() {
    type Seen = Vec<(String, Result<Action, String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = Arc::clone(&seen);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            let route = invocation.connection().route_key().to_owned();
            record.lock().unwrap().push((
                route,
                invocation
                    .event()
                    .json::<Action>()
                    .map_err(|e| support::chain(&e)),
            ));
            Ok::<(), BoxError>(())
        }
    };
    let (pipeline, _) = pipeline(Config::new("t"), handler).await;
    pipeline.run(event("message-json.json")).await.unwrap();
    let mut join = event("message-json.json");
    join.body = Some(r##"{"action":"join","channel":"#rust"}"##.into());
    join.request_context.route_key = Some("join".into());
    pipeline.run(join).await.unwrap();
    let mut unknown = event("message-json.json");
    unknown.body = Some(r#"{"action":"dance"}"#.into());
    pipeline.run(unknown).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0],
        (
            "$default".to_owned(),
            Ok(Action::SendMessage { data: "hi".into() })
        )
    );
    assert_eq!(
        seen[1],
        (
            "join".to_owned(),
            Ok(Action::Join {
                channel: "#rust".into()
            })
        )
    );
    let err = seen[2].1.as_ref().unwrap_err();
    assert!(
        err.contains("unknown variant `dance`, expected `join` or `sendmessage`"),
        "{err}"
    );
    assert!(err.contains("features::Action"), "{err}");
}

#[tokio::test]
async fn the_local_gateway_refuses_the_handshake_with_the_middleware_status() {
    use support::gateway::Local;
    let config = dynamic_config().middleware("auth", rejecting(401));
    let local = Local::start(config, Settings::default(), ok_handler()).await;
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("{other}"),
    };
    assert_eq!(status(local.connect("?token=bad").await.unwrap_err()), 401);
    assert_eq!(
        status(
            local
                .connect("?token=good&channel=%23BAD")
                .await
                .unwrap_err()
        ),
        400
    );
    assert!(local.memory.is_empty());
    assert_eq!(
        status(
            local
                .connect("?token=good&channel=%23ok")
                .await
                .unwrap_err()
        ),
        400,
        "x-team header is required"
    );
}

#[tokio::test]
async fn manual_register_is_for_connect_and_is_undone_when_connect_fails() {
    let outcome: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&outcome);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            let registration = invocation.registration();
            let result = registration.register().await;
            record
                .lock()
                .unwrap()
                .push(format!("{:?}", result.as_ref().map_err(|e| e.to_string())));
            if invocation.connection().kind() == Kind::Connect {
                return Err::<(), BoxError>(Error::reject(403, "changed my mind").into());
            }
            Ok(())
        }
    };
    let (pipeline, memory) = pipeline(dynamic_config().manual_sync(), handler).await;
    let response = pipeline
        .run(connect_with(&[], &[("x-team", "a")]))
        .await
        .unwrap();
    assert_eq!(response.status_code, 403);
    assert!(
        memory.is_empty(),
        "what the handler registered is removed with the refusal"
    );
    pipeline.run(event("message-json.json")).await.unwrap();
    let results = outcome.lock().unwrap().clone();
    assert_eq!(results[0], "Ok(())");
    assert!(
        results[1].contains("register() is for $connect"),
        "{}",
        results[1]
    );
    assert!(memory.is_empty());
}
