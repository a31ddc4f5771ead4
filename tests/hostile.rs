//! Hostile and malformed invocations, sent to the real `echo` binary through
//! a Runtime API served here (the real lambda_runtime client reads them):
//! each is answered with a typed error naming the problem (or served, where
//! API Gateway could have sent it), nothing panics, the process keeps serving,
//! and no credential or signature reaches the log even at trace level.

mod support;

use serde_json::{json, Value};
use support::connections::Connections;
use support::function::{error_type, status, Function};
use support::runtime_api::{Outcome, RuntimeApi};
use support::{fixture, moto};

async fn stored(client: &aws_sdk_dynamodb::Client) -> bool {
    moto::item(client, env!("CONNECTIONS_TABLE"), "0PYxyh3bqNs7z8s=")
        .await
        .is_some()
}

/// A secret no log line may contain.
const SECRET: &str = "lawcket-test-secret-9f3c1e7a";

/// What an invocation must come to.
enum Expect {
    /// An error of this `lawcket::Error` variant whose message holds the text.
    Error(&'static str, &'static str),
    /// A response with this status.
    Status(i64),
    /// A `$connect` refused with this status, the log naming the problem.
    Refused(i64, &'static str),
}

fn with(mut event: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut event);
    event
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::{Error, Refused, Status};
    let connect = || fixture("connect.json");
    let message = || fixture("message-json.json");
    let ctx = |event: Value, field: &str, value: Value| {
        with(event, |e| e["requestContext"][field] = value)
    };
    let json = |v: Value| v.to_string().into_bytes();
    // Objects inside objects, 100,000 deep: in a field the event reads (the
    // authorizer context) and in one it skips.
    let nest = |open: &str, close: &str| {
        [
            open.as_bytes(),
            &r#"{"a":"#.repeat(100_000).into_bytes(),
            b"1",
            &b"}".repeat(100_000),
            close.as_bytes(),
        ]
        .concat()
    };
    let deep = nest(r#"{"requestContext":{"authorizer":"#, "}}");
    let deep_unknown = nest(r#"{"x":"#, "}");
    // A real message whose body holds bytes that are not UTF-8.
    let marked = with(message(), |e| e["body"] = json!("@@BODY@@")).to_string();
    let (head, tail) = marked.split_once("@@BODY@@").unwrap();
    let non_utf8_body = [head.as_bytes(), &[0xff, 0xfe], tail.as_bytes()].concat();
    let many_queries: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("k{i}"), json!("v"))).collect();
    vec![
        (
            "empty object",
            json(json!({})),
            Error("MalformedEvent", "missing field `requestContext`"),
        ),
        (
            "no requestContext",
            json(json!({"body": "hi"})),
            Error("MalformedEvent", "missing field `requestContext`"),
        ),
        (
            "lowercase eventType",
            json(ctx(message(), "eventType", json!("message"))),
            Error("MalformedEvent", "\"message\""),
        ),
        (
            "unknown eventType",
            json(ctx(message(), "eventType", json!("PING"))),
            Error("MalformedEvent", "\"PING\""),
        ),
        (
            "eventType of the wrong type",
            json(ctx(message(), "eventType", json!(42))),
            Error("MalformedEvent", "invalid type"),
        ),
        (
            "no connectionId",
            json(with(message(), |e| {
                e["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("connectionId");
            })),
            Error("MalformedEvent", "connectionId is missing"),
        ),
        (
            "2 KB connectionId",
            json(ctx(message(), "connectionId", json!("A".repeat(2048)))),
            Error("MalformedEvent", "connectionId is 2048 characters long"),
        ),
        (
            "connectionId with a path",
            json(ctx(message(), "connectionId", json!("../x?y"))),
            Error("MalformedEvent", "connectionId holds '.'"),
        ),
        (
            "connectionId beyond ASCII",
            json(ctx(message(), "connectionId", json!("ïd="))),
            Error("MalformedEvent", "connectionId holds 'ï'"),
        ),
        (
            "domainName with a port and fragment",
            json(ctx(
                message(),
                "domainName",
                json!("127.0.0.1:8443#.execute-api.us-east-1.amazonaws.com"),
            )),
            Error("MalformedEvent", "domainName holds ':'"),
        ),
        (
            "domainName with a path",
            json(ctx(message(), "domainName", json!("evil.com/x"))),
            Error("MalformedEvent", "domainName holds '/'"),
        ),
        (
            "domainName with an empty label",
            json(ctx(message(), "domainName", json!("a..example.com"))),
            Error("MalformedEvent", "not a host name"),
        ),
        (
            "empty domainName",
            json(ctx(message(), "domainName", json!(""))),
            Error("MalformedEvent", "domainName is missing"),
        ),
        (
            "apiId that is a host",
            json(ctx(message(), "apiId", json!("evil.com#"))),
            Error("MalformedEvent", "apiId holds '.'"),
        ),
        (
            "stage with a path",
            json(ctx(message(), "stage", json!("prod/../admin"))),
            Error("MalformedEvent", "stage holds '/'"),
        ),
        (
            "empty stage",
            json(ctx(message(), "stage", json!(""))),
            Error("MalformedEvent", "stage is missing"),
        ),
        (
            "300-character stage",
            json(ctx(message(), "stage", json!("s".repeat(300)))),
            Error("MalformedEvent", "stage is 300 characters long"),
        ),
        (
            "connectedAt of i64::MAX",
            json(ctx(connect(), "connectedAt", json!(i64::MAX))),
            Error("MalformedEvent", "connectedAt is 9223372036854775807"),
        ),
        (
            "negative connectedAt",
            json(ctx(connect(), "connectedAt", json!(-1))),
            Error("MalformedEvent", "connectedAt is -1"),
        ),
        (
            "connectedAt as text",
            json(ctx(connect(), "connectedAt", json!("yesterday"))),
            Error("MalformedEvent", "invalid type"),
        ),
        (
            "requestContext as an array",
            json(with(message(), |e| e["requestContext"] = json!([1, 2]))),
            Error("MalformedEvent", "invalid type"),
        ),
        (
            "body as an object",
            json(with(message(), |e| e["body"] = json!({"a": 1}))),
            Error("MalformedEvent", "invalid type"),
        ),
        (
            "isBase64Encoded as text",
            json(with(message(), |e| e["isBase64Encoded"] = json!("yes"))),
            Error("MalformedEvent", "invalid type"),
        ),
        (
            "invalid base64",
            json(with(fixture("message-binary.json"), |e| {
                e["body"] = json!("not base64!")
            })),
            Error("Base64", "not valid base64"),
        ),
        (
            "1 MB body",
            json(with(message(), |e| e["body"] = json!("x".repeat(1 << 20)))),
            Error("TooLarge", "1048576 bytes"),
        ),
        (
            "10,000 query keys",
            json(with(connect(), |e| {
                e["queryStringParameters"] = Value::Object(many_queries.clone());
            })),
            Refused(400, "10000 parameters"),
        ),
        (
            "a JSON array",
            json(json!([connect(), connect()])),
            Error("MalformedEvent", "invalid type: sequence"),
        ),
        (
            "a JSON string",
            json(json!("CONNECT")),
            Error("MalformedEvent", "invalid type: string"),
        ),
        (
            "null",
            b"null".to_vec(),
            Error("MalformedEvent", "invalid type: null"),
        ),
        (
            "an empty payload",
            Vec::new(),
            Error("MalformedEvent", "EOF"),
        ),
        (
            "truncated JSON",
            br#"{"requestContext": {"eventType": "MESS"#.to_vec(),
            Error("MalformedEvent", "EOF"),
        ),
        (
            "bytes that are not UTF-8",
            vec![0xff, 0xfe, 0x00, 0x7b],
            Error("MalformedEvent", "expected value"),
        ),
        (
            "a body that is not UTF-8",
            non_utf8_body,
            Error("MalformedEvent", "unicode"),
        ),
        (
            "100,000-deep JSON",
            deep,
            Error("MalformedEvent", "recursion limit exceeded"),
        ),
        (
            "100,000-deep JSON in an unknown field",
            deep_unknown,
            Error("MalformedEvent", "missing field `requestContext`"),
        ),
        // What API Gateway does send, however odd, is served.
        (
            "null headers on $connect",
            json(with(connect(), |e| {
                e["headers"] = Value::Null;
                e["multiValueHeaders"] = Value::Null;
            })),
            Status(200),
        ),
        (
            "100,000-deep JSON inside a message body",
            json(with(message(), |e| e["body"] = json!("[".repeat(100_000)))),
            Status(200),
        ),
    ]
}

#[tokio::test]
async fn hostile_events_get_typed_errors_and_the_function_keeps_serving() {
    let moto = moto::start();
    let dynamo = moto.client().await;
    moto::create_table(&dynamo, env!("CONNECTIONS_TABLE")).await;
    let runtime = RuntimeApi::start().await;
    let connections = Connections::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    env.retain(|(name, _)| *name != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", SECRET.into()));
    env.push(("LAWCKET_MANAGEMENT_ENDPOINT", connections.url.clone()));
    // Everything at trace: lambda_runtime would stop on a payload that is not
    // UTF-8 at this level if lawcket did not cap its logging.
    env.push(("AWS_LAMBDA_LOG_LEVEL", "trace".into()));
    let mut function = Function::spawn("echo", env);
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let mut table = Vec::new();
    for (name, payload, expect) in cases {
        let outcome = runtime.invoke_raw(payload).await;
        let summary = match (&expect, &outcome) {
            (Expect::Error(variant, text), Outcome::Error(e)) => {
                let message = e["errorMessage"].as_str().unwrap_or_default();
                assert_eq!(
                    error_type(&outcome),
                    format!("lawcket::Error::{variant}"),
                    "{name}: {message}"
                );
                assert!(
                    message.contains(text),
                    "{name}: {message:?} should say {text:?}"
                );
                format!(
                    "{variant}: {}",
                    message.chars().take(110).collect::<String>()
                )
            }
            (Expect::Status(code), Outcome::Response(_)) => {
                assert_eq!(status(&outcome), *code, "{name}");
                format!("served, status {code}")
            }
            (Expect::Refused(code, text), Outcome::Response(_)) => {
                assert_eq!(status(&outcome), *code, "{name}");
                let log = function.wait_for_log(text);
                let line = log.lines().find(|l| l.contains(text)).unwrap_or_default();
                let at = line.find("malformed").unwrap_or(0);
                format!(
                    "$connect refused {code}; log: {}",
                    &line[at..(at + 110).min(line.len())]
                )
            }
            _ => panic!("{name}: unexpected outcome {outcome:?}"),
        };
        table.push(format!("| {name} | {summary} |"));
        // The next valid invocation is served by the same process.
        let next = runtime.invoke(fixture("disconnect.json")).await;
        assert_eq!(status(&next), 200, "after {name}: {next:?}");
        assert!(function.is_running(), "the function died after {name}");
    }
    println!("{}", table.join("\n"));

    // A $disconnect with a forged field is refused, and the connection is
    // released all the same: it is gone either way.
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert!(stored(&dynamo).await, "stored on $connect");
    let mut forged = fixture("disconnect.json");
    forged["requestContext"]["domainName"] = json!("evil.com/x");
    let outcome = runtime.invoke(forged).await;
    assert_eq!(error_type(&outcome), "lawcket::Error::MalformedEvent");
    assert!(
        !stored(&dynamo).await,
        "released although the event was malformed"
    );

    let log = function.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(SECRET), "the secret key reached the log");
}

#[tokio::test]
async fn no_credential_or_signature_is_logged_even_at_trace() {
    let moto = moto::start();
    let dynamo = moto.client().await;
    moto::create_table(&dynamo, env!("CONNECTIONS_TABLE")).await;
    let runtime = RuntimeApi::start().await;
    let connections = Connections::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    env.retain(|(name, _)| *name != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", SECRET.into()));
    env.push(("AWS_SESSION_TOKEN", format!("{SECRET}-token")));
    env.push(("LAWCKET_MANAGEMENT_ENDPOINT", connections.url.clone()));
    // Everything at trace, and the SDK's request logging asked for by name
    // (and a span directive, which lawcket's filter skips): the forms that
    // could widen a plain filter.
    env.push((
        "AWS_LAMBDA_LOG_LEVEL",
        "trace,aws_smithy_runtime::client::orchestrator=trace,aws_sigv4=trace,[lawcket]=trace"
            .into(),
    ));
    let function = Function::spawn("echo", env);

    // Signed calls to DynamoDB and to @connections, and a 410.
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert_eq!(
        status(&runtime.invoke(fixture("message-json.json")).await),
        200
    );
    let authorization = connections.posts()[0].authorization.clone().unwrap();
    let signature = authorization
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(signature.len(), 64, "{authorization}");
    connections.mark_gone("0PYxyh3bqNs7z8s=");
    let gone = runtime.invoke(fixture("message-json.json")).await;
    assert_eq!(error_type(&gone), "lawcket::Error::Gone");
    assert_eq!(
        status(&runtime.invoke(fixture("disconnect.json")).await),
        200
    );

    let log = function.wait_for_log("TRACE");
    for secret in [
        SECRET,
        signature.as_str(),
        "Signature=",
        "X-Amz-Security-Token",
        "x-amz-security-token",
    ] {
        assert!(!log.contains(secret), "{secret:?} reached the log");
    }
}
