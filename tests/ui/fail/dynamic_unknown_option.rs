#[lawcket::handler(table = "connections", sync(channel = query("channel", maxlen = 32)))]
async fn handler() {}
