// CONNECTIONS_TABLE is set for every build by .cargo/config.toml.
#[lawcket::handler(table = env!("CONNECTIONS_TABLE"))]
async fn handler() {}
