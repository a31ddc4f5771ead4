#[lawcket::handler(table = "connections", crate = "::lawcket")]
async fn handler() {}
