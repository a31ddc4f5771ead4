use lawcket::{Connection, Event};

#[lawcket::handler(table = "connections", middleware = [log])]
async fn handler() {}

// Returns nothing instead of the event to pass on.
async fn log(event: Event, _: Connection) {
    let _ = event;
}
