#[lawcket::handler(table = "connections", middleware = [auth, auth], plugins = [count, audit::count, count])]
async fn handler() {}

async fn auth(event: lawcket::Event, _: lawcket::Connection) -> Result<lawcket::Event, lawcket::Error> {
    Ok(event)
}

async fn count() {}

mod audit {
    pub async fn count() {}
}
