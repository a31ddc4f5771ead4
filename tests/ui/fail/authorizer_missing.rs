// What needs an authorizer, without one; subprotocols that are not tokens or
// are listed twice, and an empty list.
#[lawcket::handler(
    table = "connections",
    sync(user = authorizer("principalId")),
    subprotocols = ["graphql ws", "mqtt", "mqtt"],
)]
async fn handler(identity: lawcket::Identity) {
    let _ = identity;
}
