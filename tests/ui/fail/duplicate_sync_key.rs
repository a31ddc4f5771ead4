#[lawcket::handler(table = "connections", sync(channel = "#general", channel = "#random"))]
async fn handler() {}
