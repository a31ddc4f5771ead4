use lawcket::Event;

#[lawcket::handler(table = "connections", middleware = [auth])]
async fn handler() {}

// Missing the `Connection` parameter.
async fn auth(e: Event) -> Result<Event, lawcket::Error> {
    Ok(e)
}
