#[lawcket::handler(table = "connections", table = "other")]
async fn handler() {}
