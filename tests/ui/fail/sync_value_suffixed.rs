#[lawcket::handler(table = "connections", sync(shard = 5u8))]
async fn handler() {}
