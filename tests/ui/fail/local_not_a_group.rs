#[lawcket::handler(table = "connections", local = "index.html")]
async fn handler() {}
