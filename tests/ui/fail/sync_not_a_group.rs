#[lawcket::handler(sync = "#general", table = "connections")]
async fn handler() {}
