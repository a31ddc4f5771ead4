// Only the sync value is reported: the index names a key that was written.
#[lawcket::handler(table = "connections", sync(channel = CHANNEL), index(channel = "channel-index"))]
async fn handler() {}

const CHANNEL: &str = "#general";
