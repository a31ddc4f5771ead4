#[lawcket::handler(
    table = "connections",
    sync(channel = query("channel", chars = "0-9z-a"), topic = query("topic", chars = "")),
)]
async fn handler() {}
