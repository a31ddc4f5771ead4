#[lawcket::handler(table = "connections", sync(session = cookie("session")))]
async fn handler() {}
