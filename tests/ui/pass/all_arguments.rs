#[lawcket::handler(crate = "::lawcket", ttl = 7800, sync(channel = "#general"), table = env!("CONNECTIONS_TABLE"))]
async fn handler(event: lawcket::Event) -> Result<(), lawcket::Error> {
    let _ = event;
    Ok(())
}
