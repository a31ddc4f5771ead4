#[lawcket::handler(tabel = "typo", ttl = 0, sync(stage = "prod", channel = CHANNEL), crate = "not a path!")]
fn handler<T>() {}

const CHANNEL: &str = "#general";
