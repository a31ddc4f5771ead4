#[lawcket::handler(
    table = "connections",
    sync(channel = "#general", team = "a", room = "b"),
    index(channel = 42, team = "", room = channel_index),
)]
async fn handler() {}
