#[lawcket::handler(table = "connections", local(page = "a.html", page = "b.html"))]
async fn handler() {}
