//! What API Gateway offers a handler: replies (route responses), `$connect`
//! subprotocols, and REQUEST authorizers with the identity in every event.
//!
//! Through the Lambda path (the chat and graphql_ws examples as child
//! processes, served by a Runtime API here, DynamoDB in moto, posts to a
//! `@connections` endpoint here) and through the local gateway (in process,
//! real WebSocket clients).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{SinkExt, StreamExt};
use lawcket::{AuthorizerRequest, Error, Event, Identity, Publish, Reply};
use lawcket_runtime::test_util::{
    offline_sdk_config, run_lambda_payload, LambdaOutput, Memory, Pipeline, Registry, Settings,
};
use lawcket_runtime::{Config, Dynamic, Invocation};
use serde_json::{json, Value};
use support::connections::Connections;
use support::function::{status, Function};
use support::gateway::{Client, Local};
use support::runtime_api::{Outcome, RuntimeApi};
use support::{fixture, moto};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const ID: &str = "0PYxyh3bqNs7z8s=";
const PATIENCE: Duration = Duration::from_secs(10);

/// `requestContext.authorizer` as API Gateway passes it after the authorizer
/// allowed `principal`.
fn with_identity(mut event: Value, principal: &str) -> Value {
    event["requestContext"]["authorizer"] =
        json!({ "principalId": principal, "name": principal, "integrationLatency": 3 });
    event
}

fn response(outcome: &Outcome) -> &Value {
    match outcome {
        Outcome::Response(body) => body,
        Outcome::Error(error) => panic!("expected a response, the function failed: {error}"),
    }
}

/// The chat example as a Lambda: its authorizer answers API Gateway's
/// authorizer invocation, `$connect` stores the principal as `user`, and
/// messages are answered with replies (the response body).
#[tokio::test]
async fn chat_on_lambda_authorizes_stores_the_user_and_replies() {
    let moto = moto::start();
    let dynamo = moto.client().await;
    let table = env!("CONNECTIONS_TABLE");
    moto::create_indexed_table(
        &dynamo,
        table,
        &[("channel", "channel-index"), ("user", "user-index")],
    )
    .await;
    let runtime = RuntimeApi::start().await;
    let connections = Connections::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    env.push(("LAWCKET_MANAGEMENT_ENDPOINT", connections.url.clone()));
    let function = Function::spawn("chat", env);

    // The authorizer invocation: an IAM policy allowing the methodArn, the
    // principal and the context ("Output from an API Gateway Lambda authorizer").
    let authorizer = fixture("authorizer.json");
    let policy = response(&runtime.invoke(authorizer.clone()).await).clone();
    assert_eq!(
        policy,
        json!({
            "principalId": "alice",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123defg/prod/$connect",
                }],
            },
            "context": { "name": "alice" },
        }),
        "{}",
        function.log()
    );
    // No token, or one the authorizer refuses with 401: the invocation fails
    // with the error `Unauthorized`, which API Gateway answers with 401.
    for token in [None, Some("not a name!")] {
        let mut refused = authorizer.clone();
        match token {
            Some(token) => refused["queryStringParameters"]["token"] = json!(token),
            None => {
                refused["queryStringParameters"]
                    .as_object_mut()
                    .unwrap()
                    .remove("token");
            }
        }
        match runtime.invoke(refused).await {
            Outcome::Error(error) => assert_eq!(
                (&error["errorType"], &error["errorMessage"]),
                (&json!("Unauthorized"), &json!("Unauthorized")),
                "token {token:?}"
            ),
            Outcome::Response(body) => panic!("token {token:?} was allowed: {body}"),
        }
    }

    // $connect with the authorizer's context: stored with the user.
    let connect = with_identity(fixture("connect.json"), "alice");
    assert_eq!(
        status(&runtime.invoke(connect).await),
        200,
        "{}",
        function.log()
    );
    let stored = moto::item(&dynamo, table, ID).await.expect("stored");
    assert_eq!(stored["user"], AttributeValue::S("alice".into()));
    assert_eq!(stored["channel"], AttributeValue::S("#general".into()));

    // A $connect that did not go through the authorizer is refused: the
    // route is misconfigured, and the handler has no identity to give.
    let mut bare = fixture("connect.json");
    bare["requestContext"]["connectionId"] = json!("bare=");
    assert_eq!(status(&runtime.invoke(bare).await), 500);
    assert!(moto::item(&dynamo, table, "bare=").await.is_none());

    // A join: announced to the channel through @connections, and answered
    // with a reply in the response body.
    let mut join = with_identity(fixture("message-json.json"), "alice");
    join["body"] = json!(json!({ "action": "join", "channel": "#rust" }).to_string());
    let answer = response(&runtime.invoke(join).await).clone();
    assert_eq!(answer["statusCode"], 200, "{}", function.log());
    let reply: Value = serde_json::from_str(answer["body"].as_str().expect("a body")).unwrap();
    assert_eq!(
        reply,
        json!({ "type": "ack", "action": "join", "channel": "#rust",
                "you": { "name": "alice", "connection": ID } })
    );
    let posts = connections.posts();
    assert_eq!(posts.len(), 1, "the announcement, to the one member");
    let announced: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(announced["type"], "joined");
    assert_eq!(announced["name"], "alice");

    // What the handler cannot read is answered with an error reply.
    let mut junk = with_identity(fixture("message-json.json"), "alice");
    junk["body"] = json!("not json");
    let answer = response(&runtime.invoke(junk).await).clone();
    let reply: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["type"], "error");

    // $disconnect (with the identity, as API Gateway sends it) releases.
    let disconnect = with_identity(fixture("disconnect.json"), "alice");
    assert_eq!(status(&runtime.invoke(disconnect).await), 200);
    assert!(moto::item(&dynamo, table, ID).await.is_none());
    assert_eq!(runtime.init_error(), None);
}

/// The graphql_ws example as a Lambda: `$connect` answers the first
/// subprotocol the client offered that it speaks, refuses a client that
/// offered only others, and replies go back as the response body.
#[tokio::test]
async fn graphql_on_lambda_negotiates_the_subprotocol_and_replies() {
    let moto = moto::start();
    let dynamo = moto.client().await;
    let table = env!("CONNECTIONS_TABLE");
    moto::create_table(&dynamo, table).await;
    let runtime = RuntimeApi::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    let function = Function::spawn("graphql_ws", env);

    let connect = |offered: Option<&str>, id: &str| {
        let mut event = fixture("connect.json");
        event["requestContext"]["connectionId"] = json!(id);
        if let Some(offered) = offered {
            event["headers"]["Sec-WebSocket-Protocol"] = json!(offered);
            event["multiValueHeaders"]["Sec-WebSocket-Protocol"] = json!([offered]);
        }
        event
    };
    let offered = response(
        &runtime
            .invoke(connect(Some("graphql-ws, graphql-transport-ws"), ID))
            .await,
    )
    .clone();
    assert_eq!(offered["statusCode"], 200, "{}", function.log());
    assert_eq!(
        offered["headers"]["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    assert!(moto::item(&dynamo, table, ID).await.is_some());

    let other = response(&runtime.invoke(connect(Some("v12.stomp"), "stomp=")).await).clone();
    assert_eq!(other["statusCode"], 400, "{other}");
    assert!(other["headers"].get("sec-websocket-protocol").is_none());
    assert!(moto::item(&dynamo, table, "stomp=").await.is_none());

    let none = response(&runtime.invoke(connect(None, "plain=")).await).clone();
    assert_eq!(none["statusCode"], 200);
    assert!(none["headers"].get("sec-websocket-protocol").is_none());

    let mut init = fixture("message-json.json");
    init["body"] = json!(r#"{"type":"connection_init"}"#);
    let ack = response(&runtime.invoke(init).await).clone();
    assert_eq!(ack["body"], r#"{"type":"connection_ack"}"#);
}

/// An authorizer as `authorizer = ..` writes it, for the pipeline and the
/// local gateway: `alice`, `alice2` and `bob` are allowed (`alice2` as
/// alice), `mallory` is denied (403), `boom` fails (500), anything else 401.
async fn check(request: AuthorizerRequest) -> Result<Identity, Error> {
    match request.query("token") {
        Some(name @ ("alice" | "bob")) => {
            Ok(Identity::new(name).with("name", name).with("level", 2))
        }
        Some("alice2") => Ok(Identity::new("alice")
            .with("name", "alice")
            .with("level", 2)),
        Some("mallory") => Err(Error::reject(403, "not mallory")),
        Some("boom") => Err(Error::Config("the token service is down".into())),
        Some("later") => Err(Error::reject(503, "the token service is busy")),
        _ => Err(Error::reject(401, "no token")),
    }
}

/// A REQUEST authorizer invocation's answer for `token`, read as Lambda
/// reads it; `Err` carries the error type of a failed invocation.
async fn authorize(pipeline: &Pipeline, token: &str) -> Result<Value, String> {
    let mut event = fixture("authorizer.json");
    event["queryStringParameters"]["token"] = json!(token);
    let bytes = serde_json::to_vec(&event).unwrap();
    match run_lambda_payload(pipeline, &bytes).await {
        Ok(LambdaOutput::Policy(policy)) => Ok(policy),
        Ok(LambdaOutput::Unauthorized) => Err("Unauthorized".into()),
        Ok(other) => panic!("not an authorizer's answer: {other:?}"),
        Err(error) => Err(error.to_string()),
    }
}

/// A pipeline for `config` on a memory registry, whose handler does nothing.
async fn in_memory(config: Config) -> Pipeline {
    Pipeline::new(
        config,
        Registry::Memory(Arc::new(Memory::new())),
        offline_sdk_config().await,
        None,
        |_: Invocation| async {},
    )
}

#[tokio::test]
async fn the_authorizers_answers_follow_api_gateways_contract() {
    let pipeline = in_memory(Config::new("t").authorizer(check)).await;
    let allowed = authorize(&pipeline, "bob").await.unwrap();
    assert_eq!(allowed["principalId"], "bob");
    assert_eq!(allowed["context"], json!({ "name": "bob", "level": 2 }));
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    // Refused with 403: a Deny policy on the same resource.
    let denied = authorize(&pipeline, "mallory").await.unwrap();
    assert_eq!(denied["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(
        denied["policyDocument"]["Statement"][0]["Resource"],
        fixture("authorizer.json")["methodArn"]
    );
    assert_eq!(
        authorize(&pipeline, "nobody").await,
        Err("Unauthorized".into())
    );
    // Any other failure fails the invocation (API Gateway answers 500), and
    // its text stays in the log and the Lambda error, not in a policy.
    let failed = authorize(&pipeline, "boom").await.unwrap_err();
    assert!(failed.contains("the token service is down"), "{failed}");
    // A 5xx refusal says the authorizer could not decide: a failure, not a Deny.
    let failed = authorize(&pipeline, "later").await.unwrap_err();
    assert!(failed.contains("503"), "{failed}");

    // A context API Gateway would refuse fails the authorization.
    let nested = in_memory(Config::new("t").authorizer(|_: AuthorizerRequest| async {
        Ok::<_, Error>(Identity::new("x").with("roles", json!(["admin"])))
    }))
    .await;
    let failed = authorize(&nested, "x").await.unwrap_err();
    assert!(failed.contains("`roles`"), "{failed}");

    // An authorizer invocation for a handler without an authorizer fails
    // with a message that says so.
    let without = in_memory(Config::new("t")).await;
    let failed = authorize(&without, "bob").await.unwrap_err();
    assert!(failed.contains("no `authorizer = ..`"), "{failed}");
}

/// Reads frames until one satisfies `wanted`; answers it and the text
/// frames read before it.
async fn until(
    client: &mut Client,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> (String, Vec<String>) {
    let mut before = Vec::new();
    let reading = async {
        loop {
            match client.next().await {
                Some(Ok(Message::Text(text))) if wanted(text.as_str()) => {
                    return text.as_str().to_owned()
                }
                Some(Ok(Message::Text(text))) => before.push(text.as_str().to_owned()),
                Some(Ok(_)) => {}
                other => panic!("the connection ended waiting for {what}: {other:?}"),
            }
        }
    };
    let found = tokio::time::timeout(PATIENCE, reading)
        .await
        .unwrap_or_else(|_| panic!("{what} did not come within {PATIENCE:?}"));
    (found, before)
}

/// The local gateway's handler: posts `posted:<body>` through the management
/// API, then replies `reply:<body>`; `whoami` replies with the identity;
/// `to-me` reaches every connection of the sender's user.
async fn local_handler(
    event: Event,
    identity: Option<Identity>,
    publish: Option<Publish>,
) -> Result<Option<Reply>, Error> {
    let Some(publish) = publish else {
        return Ok(None);
    };
    let text = event.text().unwrap_or_default().into_owned();
    if text == "binary" {
        return Ok(Some(Reply::binary(vec![0, 159, 146, 150])));
    }
    if text == "huge" {
        return Ok(Some(Reply::text(
            "x".repeat(lawcket::MAX_MESSAGE_BYTES + 1),
        )));
    }
    if text.contains("whoami") {
        let identity = identity.expect("the identity reaches every message");
        return Reply::json(
            &json!({ "principal": identity.principal_id(), "context": identity.context() }),
        )
        .map(Some);
    }
    if text.contains("to-me") {
        let user = identity.expect("an identity").principal_id().to_owned();
        let report = publish
            .matching("user", user.as_str())
            .send(&json!({ "for": user }))
            .await?;
        return Ok(Some(Reply::text(format!("reached:{}", report.delivered))));
    }
    publish.send_bytes(format!("posted:{text}")).await?;
    Ok(Some(Reply::text(format!("reply:{text}"))))
}

async fn start(config: Config, settings: Settings) -> Local {
    let handler = |invocation: Invocation| async move {
        use lawcket_runtime::FromInvocation;
        local_handler(
            Event::from_invocation(&invocation),
            Option::<Identity>::from_invocation(&invocation),
            Option::<Publish>::from_invocation(&invocation),
        )
        .await
    };
    Local::start(config, settings, handler).await
}

/// A reply reaches the sender when its route has a route response, and only
/// then (`$default` by default, as deploy/ configures it).
#[tokio::test]
async fn the_local_gateway_sends_replies_of_routes_with_a_route_response() {
    let settings = Settings {
        routes: Some(vec!["shout".into()]),
        ..Settings::default()
    };
    let local = start(Config::new("t"), settings).await;
    let mut client = local.connect("").await.unwrap();
    // `shout` is a route without a route response: the handler's post
    // arrives, its reply does not.
    client
        .send(Message::text(r#"{"action":"shout"}"#))
        .await
        .unwrap();
    until(&mut client, "the shout's post", |t| {
        t.starts_with("posted:")
    })
    .await;
    client.send(Message::text("hello")).await.unwrap();
    let (reply, before) = until(&mut client, "the reply", |t| t.starts_with("reply:")).await;
    assert_eq!(reply, "reply:hello");
    assert_eq!(
        before,
        vec!["posted:hello".to_owned()],
        "no reply for `shout`"
    );
    // Bytes that are not UTF-8 go as a binary frame.
    client.send(Message::text("binary")).await.unwrap();
    let frame = tokio::time::timeout(PATIENCE, client.next()).await.unwrap();
    assert_eq!(
        frame.unwrap().unwrap(),
        Message::binary(vec![0, 159, 146, 150])
    );
    // A reply over API Gateway's message size fails the invocation, which
    // the sender learns as API Gateway's error answer.
    client.send(Message::text("huge")).await.unwrap();
    let (error, _) = until(&mut client, "the error answer", |t| {
        t.contains("Internal server error")
    })
    .await;
    assert!(error.contains("connectionId"), "{error}");

    // With no route response at all, nothing comes back but the posts.
    let settings = Settings {
        route_responses: Some(Vec::new()),
        ..Settings::default()
    };
    let local = start(Config::new("t"), settings).await;
    let mut client = local.connect("").await.unwrap();
    // The last one is a sentinel: the reply to "two", if any, comes before it.
    for text in ["one", "two", "three"] {
        client.send(Message::text(text)).await.unwrap();
        let (post, before) = until(&mut client, "a post", |t| t.starts_with("posted:")).await;
        assert_eq!(post, format!("posted:{text}"));
        assert!(before.is_empty(), "replies came: {before:?}");
    }
}

/// What a WebSocket client gets from the handshake when it offers `offered`:
/// the protocol the gateway answered with and the open client, or the
/// refusal's status.
async fn handshake(local: &Local, offered: Option<&str>) -> Result<(Option<String>, Client), u16> {
    let mut request = format!("ws://{}/", local.addr)
        .into_client_request()
        .unwrap();
    if let Some(offered) = offered {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offered.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((client, response)) => {
            let protocol = response.headers().get("sec-websocket-protocol");
            Ok((protocol.map(|v| v.to_str().unwrap().to_owned()), client))
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

#[tokio::test]
async fn the_local_gateway_negotiates_subprotocols_as_the_connect_response_says() {
    let config = Config::new("t").subprotocols(["graphql-transport-ws", "graphql-ws"]);
    let local = start(config, Settings::default()).await;
    let (protocol, _first) = handshake(&local, Some("mqtt, graphql-ws, graphql-transport-ws"))
        .await
        .unwrap();
    assert_eq!(
        protocol.as_deref(),
        Some("graphql-ws"),
        "the client's first supported protocol"
    );
    assert_eq!(handshake(&local, Some("mqtt")).await.err(), Some(400));
    let (protocol, _second) = handshake(&local, None).await.unwrap();
    assert_eq!(protocol, None);
    assert_eq!(local.memory.len(), 2, "the refused client is not stored");
}

/// A header HTTP does not allow fails the `$connect` (500), and nothing of
/// the connection is left in the registry.
#[tokio::test]
async fn a_connect_reply_with_a_bad_header_refuses_the_connection() {
    let handler = |invocation: Invocation| async move {
        match invocation.connection().kind() {
            lawcket::Kind::Connect => Reply::empty().header("X-Bad", "a\nb"),
            _ => Reply::empty(),
        }
    };
    let local = Local::start(Config::new("t"), Settings::default(), handler).await;
    match local.connect("").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 500),
        other => panic!("expected 500, got {other:?}"),
    }
    assert_eq!(local.memory.len(), 0);
}

/// A `$connect` handler may pick the subprotocol itself (its choice wins)
/// and set other headers of the handshake's response.
#[tokio::test]
async fn a_connect_handler_may_choose_the_subprotocol() {
    let config = Config::new("t").subprotocols(["graphql-transport-ws", "graphql-ws"]);
    let handler = |invocation: Invocation| async move {
        match invocation.connection().kind() {
            lawcket::Kind::Connect => Reply::empty()
                .protocol("graphql-ws")
                .header("X-Served-By", "lawcket"),
            _ => Reply::empty(),
        }
    };
    let local = Local::start(config, Settings::default(), handler).await;
    let mut request = format!("ws://{}/", local.addr)
        .into_client_request()
        .unwrap();
    let offered = "graphql-transport-ws, graphql-ws".parse().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offered);
    let (_client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-ws");
    // Its other headers reach the client too.
    assert_eq!(response.headers()["x-served-by"], "lawcket");
}

#[tokio::test]
async fn the_local_gateway_runs_the_authorizer_before_connect() {
    let config = Config::new("t")
        .authorizer(check)
        .sync_dynamic("user", Dynamic::authorizer("principalId"));
    let local = start(config, Settings::default()).await;
    let refused = |query: &'static str| {
        let local = &local;
        async move {
            match local.connect(query).await {
                Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
                other => panic!("{query}: expected a refused handshake, got {other:?}"),
            }
        }
    };
    assert_eq!(refused("").await, 401);
    assert_eq!(refused("?token=nobody").await, 401);
    assert_eq!(refused("?token=mallory").await, 403);
    assert_eq!(refused("?token=boom").await, 500);
    assert_eq!(refused("?token=later").await, 500);
    assert_eq!(local.memory.len(), 0);

    // Allowed: the identity reaches every message, and is stored as `user`.
    let mut alice = local.connect("?token=alice").await.unwrap();
    let mut alice_phone = local.connect("?token=alice2").await.unwrap();
    let mut bob = local.connect("?token=bob").await.unwrap();
    alice.send(Message::text("whoami")).await.unwrap();
    let (whoami, _) = until(&mut alice, "whoami's reply", |t| t.contains("principal")).await;
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["principal"], "alice");
    // Context values reach later events as strings, as API Gateway gives them.
    assert_eq!(whoami["context"], json!({ "name": "alice", "level": "2" }));

    // Every connection of alice's, and not bob's.
    alice.send(Message::text("to-me")).await.unwrap();
    let (reached, before) = until(&mut alice, "to-me's reply", |t| t.starts_with("reached:")).await;
    assert_eq!(reached, "reached:2");
    assert_eq!(before, vec![r#"{"for":"alice"}"#.to_owned()]);
    until(&mut alice_phone, "alice's post on her phone", |t| {
        t.contains("alice")
    })
    .await;
    bob.send(Message::text("whoami")).await.unwrap();
    let (whoami, before) = until(&mut bob, "bob's whoami", |t| t.contains("principal")).await;
    assert!(whoami.contains("bob"));
    assert!(before.is_empty(), "bob got alice's post: {before:?}");
}

/// The identity sources API Gateway checks before running the authorizer:
/// a `$connect` without one gets 401 and the authorizer is not called.
#[tokio::test]
async fn identity_sources_are_required_before_the_authorizer_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let config = Config::new("t").authorizer(move |request: AuthorizerRequest| {
        counted.fetch_add(1, Ordering::SeqCst);
        check(request)
    });
    let settings = Settings {
        identity_sources: vec!["route.request.querystring.token".into()],
        ..Settings::default()
    };
    let local = start(config, settings).await;
    for query in ["", "?token="] {
        match local.connect(query).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("{query}: expected 401, got {other:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the authorizer ran");
    local.connect("?token=bob").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The identity routes a message to every connection of one user through
/// DynamoDB (moto) and its `user-index`: events read as the Lambda entry
/// reads them, posts recorded by a `@connections` endpoint here.
#[tokio::test]
async fn publishing_to_a_user_reaches_each_of_their_connections_through_dynamodb() {
    use lawcket_runtime::test_util::Dynamo;
    let moto = moto::start();
    let dynamo = moto.client().await;
    let table = moto::unique_table("users");
    moto::create_indexed_table(&dynamo, &table, &[("user", "user-index")]).await;
    let connections = Connections::start().await;
    let registry = Dynamo::new(dynamo.clone(), table.as_str()).with_index("user", "user-index");
    let config = Config::new(table.as_str())
        .authorizer(check)
        .sync_dynamic("user", Dynamic::authorizer("principalId"))
        .index("user", "user-index");
    let handler = |identity: Identity, publish: Option<Publish>| async move {
        if let Some(publish) = publish {
            let user = identity.principal_id().to_owned();
            let report = publish
                .matching("user", user.as_str())
                .send(&json!({ "for": user }))
                .await?;
            return Ok::<_, Error>(Some(Reply::text(format!("reached:{}", report.delivered))));
        }
        Ok(None)
    };
    let handler = move |invocation: Invocation| {
        use lawcket_runtime::FromInvocation;
        handler(
            Identity::from_invocation(&invocation),
            Option::<Publish>::from_invocation(&invocation),
        )
    };
    let pipeline = Pipeline::new(
        config,
        Registry::Dynamo(Arc::new(registry)),
        moto.sdk_config().await,
        Some(connections.url.clone()),
        handler,
    );
    let run = |event: Value| {
        let pipeline = &pipeline;
        async move {
            let bytes = serde_json::to_vec(&event).unwrap();
            match run_lambda_payload(pipeline, &bytes).await {
                Ok(LambdaOutput::Response(response)) => response,
                other => panic!("expected a response, got {other:?}"),
            }
        }
    };
    for (id, user) in [
        ("alice-laptop=", "alice"),
        ("alice-phone=", "alice"),
        ("bob=", "bob"),
    ] {
        let mut connect = with_identity(fixture("connect.json"), user);
        connect["requestContext"]["connectionId"] = json!(id);
        assert_eq!(run(connect).await.status_code, 200);
    }
    let mut message = with_identity(fixture("message-json.json"), "alice");
    message["requestContext"]["connectionId"] = json!("alice-laptop=");
    let response = run(message).await;
    assert_eq!(
        response.body,
        Some(aws_lambda_events::encodings::Body::Text("reached:2".into()))
    );
    let mut reached: Vec<String> = connections
        .posts()
        .into_iter()
        .map(|post| post.connection_id)
        .collect();
    reached.sort();
    assert_eq!(reached, vec!["alice-laptop=", "alice-phone="]);
}
