#[lawcket::handler(table = 42)]
async fn handler() {}
