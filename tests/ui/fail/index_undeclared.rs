#[lawcket::handler(table = "connections", sync(channel = "#general"), index(chanel = "channel-index"))]
async fn handler() {}
