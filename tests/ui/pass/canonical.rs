use lawcket::{Connection, Event, Publish};

#[lawcket::handler(table = "connections")]
async fn handler(
    event: Event,
    connection: Connection,
    publish: Option<Publish>,
) -> Result<(), lawcket::Error> {
    if let Some(publish) = publish {
        publish.send(&event.text()).await?;
    }
    let _ = connection.id();
    Ok(())
}
