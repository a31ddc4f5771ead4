//! Every argument added with dynamic sync fields, together.

use lawcket::{Connection, Event, Kind, Publish, Registration};

#[lawcket::handler(
    table = "connections",
    sync(
        channel = query("channel", default = "#general", max_len = 32, chars = "a-z0-9#-"),
        tenant = header("X-Tenant", default = "acme", max_len = 16, chars = "a-z"),
        region = query("region"),
        shard = 3,
    ),
    index(channel = "channel-index"),
    index(tenant = "tenant-index"),
    manual_sync,
    middleware = [auth, audit::log],
    plugins = [count, audit::trace],
    concurrency = 8,
    local(page = "page.html"),
)]
async fn handler(connection: Connection, registration: Registration) -> Result<(), lawcket::Error> {
    let _ = (connection, registration);
    Ok(())
}

async fn auth(event: Event, connection: Connection) -> Result<Event, lawcket::Error> {
    let _ = connection;
    Ok(event)
}

async fn count() {}

mod audit {
    use super::*;

    pub async fn log(event: Event, _: Connection) -> Result<Event, std::io::Error> {
        Ok(event)
    }

    pub async fn trace(
        kind: Kind,
        event: Event,
        publish: Option<Publish>,
        connection: Connection,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = (kind, event, publish, connection);
        Ok(())
    }
}
