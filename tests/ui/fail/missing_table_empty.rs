#[lawcket::handler]
async fn handler() {}
