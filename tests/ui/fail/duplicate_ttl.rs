#[lawcket::handler(table = "connections", ttl = 600, ttl = 900)]
async fn handler() {}
