#[lawcket::handler(table = "connections", ttl = 0)]
async fn handler() {}
