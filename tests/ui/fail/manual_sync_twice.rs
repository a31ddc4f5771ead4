#[lawcket::handler(table = "connections", manual_sync, manual_sync)]
async fn handler() {}
