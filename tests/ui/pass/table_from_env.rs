// Read when the process starts, so it need not be set when building.
#[lawcket::handler(table = lawcket::table_from_env("X"))]
async fn handler() {}
