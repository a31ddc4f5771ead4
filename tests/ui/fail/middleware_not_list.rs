#[lawcket::handler(table = "connections", middleware = auth, plugins = "count")]
async fn handler() {}

async fn auth(event: lawcket::Event, _: lawcket::Connection) -> Result<lawcket::Event, lawcket::Error> {
    Ok(event)
}
