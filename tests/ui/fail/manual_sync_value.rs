#[lawcket::handler(table = "connections", manual_sync = true)]
async fn handler() {}
