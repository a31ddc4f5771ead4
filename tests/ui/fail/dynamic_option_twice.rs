#[lawcket::handler(
    table = "connections",
    sync(channel = query("channel", default = "#a", max_len = 8, default = "#b", max_len = 9, chars = "a-z#", chars = "a-z")),
)]
async fn handler() {}
