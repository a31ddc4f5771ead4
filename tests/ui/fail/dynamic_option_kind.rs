#[lawcket::handler(
    table = "connections",
    sync(channel = query("channel", max_len = "32", default = 7, chars = a_z)),
)]
async fn handler() {}
