#[lawcket::handler(table = "connections", ttl = 600)]
async fn handler() {}
