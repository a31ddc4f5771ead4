#[lawcket::handler(table = "connections", local(page = "missing.html"))]
async fn handler() {}
