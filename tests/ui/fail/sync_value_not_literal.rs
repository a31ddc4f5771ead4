const CHANNEL: &str = "#general";

#[lawcket::handler(
    table = "connections",
    sync(channel = CHANNEL, shard = shard_of("x"), weight = 1.5),
)]
async fn handler() {}

fn shard_of(_: &str) -> i64 {
    0
}
