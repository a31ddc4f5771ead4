#[lawcket::handler(table = "connections", concurrency = "32")]
async fn handler() {}
