#[lawcket::handler(table = "connections")]
fn handler() {}
