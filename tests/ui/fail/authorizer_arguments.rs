// The authorizer named as a string, a sync value from the authorizer without
// its key, and subprotocols that are not a list.
#[lawcket::handler(
    table = "connections",
    authorizer = "sign_in",
    sync(user = authorizer()),
    subprotocols = "graphql-ws",
)]
async fn handler() {}
