//! Subprotocols, an authorizer with its identity as a parameter and as sync
//! fields, and every reply type a handler (or a plugin) may return.

use lawcket::{AuthorizerRequest, Identity, Reply};

async fn check(request: AuthorizerRequest) -> Result<Identity, lawcket::Error> {
    match request.query("token") {
        Some(token) => Ok(Identity::new(token).with("admin", false).with("level", 3)),
        None => Err(lawcket::Error::reject(401, "no token")),
    }
}

#[lawcket::handler(
    table = "connections",
    subprotocols = ["graphql-transport-ws", "graphql-ws"],
    authorizer = check,
    sync(user = authorizer("principalId"), level = authorizer("level", default = "0")),
    index(user = "user-index"),
    plugins = [unit, text, fixed, value, bytes, maybe, optional_identity],
)]
async fn handler(identity: Identity, event: lawcket::Event) -> Result<Reply, std::io::Error> {
    let _ = event;
    Ok(Reply::text(identity.principal_id()).protocol("graphql-ws"))
}

async fn unit() {}
async fn text() -> String {
    String::new()
}
async fn fixed() -> &'static str {
    ""
}
async fn value() -> serde_json::Value {
    serde_json::Value::Null
}
async fn bytes() -> Vec<u8> {
    Vec::new()
}
async fn maybe() -> Result<Option<Reply>, lawcket::Error> {
    Ok(None)
}
async fn optional_identity(identity: Option<Identity>) {
    let _ = identity;
}
