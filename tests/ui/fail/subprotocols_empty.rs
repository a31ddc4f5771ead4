#[lawcket::handler(table = "connections", subprotocols = [])]
async fn handler() {}
