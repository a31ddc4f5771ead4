#[lawcket::handler(
    table = "connections",
    sync(channel = "#general", shard = 3, offset = -7, public = true, archived = false, big = 9i64),
)]
async fn handler() {}
