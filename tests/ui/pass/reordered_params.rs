use lawcket::{Connection, Event, Kind, Publish};

#[lawcket::handler(table = "connections")]
async fn handler(publish: Option<Publish>, kind: Kind, connection: Connection, event: Event) {
    let _ = (publish, kind, connection, event);
}
