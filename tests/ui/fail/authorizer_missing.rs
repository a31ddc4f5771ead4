// A sync field from the authorizer, without one; subprotocols that are not
// tokens or are listed twice.
#[lawcket::handler(
    table = "connections",
    sync(user = authorizer("principalId")),
    subprotocols = ["graphql ws", "mqtt", "mqtt"],
)]
async fn handler() {}
