#[lawcket::handler(table = "connections", local(pages = "x"))]
async fn handler() {}
