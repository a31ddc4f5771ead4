#[lawcket::handler(table = "connections")]
async fn handler() -> Result<(), std::io::Error> {
    Ok(())
}
