#[lawcket::handler(table = "connections", crate = "not a path!")]
async fn handler() {}
