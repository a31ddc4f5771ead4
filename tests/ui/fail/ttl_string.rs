#[lawcket::handler(table = "connections", ttl = "x")]
async fn handler() {}
