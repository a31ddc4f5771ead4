#[lawcket::handler(ttl = 600)]
async fn handler() {}
