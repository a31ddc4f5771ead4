#[lawcket::handler(table = env!("LAWCKET_SURELY_UNSET_VAR"))]
async fn handler() {}
