#[lawcket::handler(table "connections")]
async fn handler() {}
