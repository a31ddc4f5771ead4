use lawcket::{Connection, Event};

#[lawcket::handler(table = "connections", middleware = [auth])]
async fn handler() {}

fn auth(event: Event, _: Connection) -> Result<Event, lawcket::Error> {
    Ok(event)
}
