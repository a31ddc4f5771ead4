#[lawcket::handler(table = "connections", crate = "::lawcket", crate = "lawcket")]
async fn handler() {}
