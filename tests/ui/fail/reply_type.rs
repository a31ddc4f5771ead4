// A reply of a type lawcket cannot send.
#[lawcket::handler(table = "connections")]
async fn handler() -> Result<u32, lawcket::Error> {
    Ok(7)
}
