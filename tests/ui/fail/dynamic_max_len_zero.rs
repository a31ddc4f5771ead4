#[lawcket::handler(table = "connections", sync(channel = header("x-channel", max_len = 0)))]
async fn handler() {}
