#[lawcket::handler(table = "connections")]
async fn handler(_event: lawcket::Event) -> () {}
