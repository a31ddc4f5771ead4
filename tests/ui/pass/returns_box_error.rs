#[lawcket::handler(table = "connections")]
async fn handler(_event: lawcket::Event) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("boxed errors convert".into())
}
