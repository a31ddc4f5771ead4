#[lawcket::handler(
    table = "connections",
    sync(channel = "#general"),
    index(channel = "channel-index"),
    index(channel = "other-index"),
)]
async fn handler() {}
