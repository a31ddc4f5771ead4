#[lawcket::handler(table = "connections", concurrency = 0)]
async fn handler() {}
