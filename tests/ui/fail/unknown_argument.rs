#[lawcket::handler(table = "connections", tabel = "typo")]
async fn handler() {}
