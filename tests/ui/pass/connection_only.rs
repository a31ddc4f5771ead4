#[lawcket::handler(table = "connections")]
async fn handler(connection: lawcket::Connection) {
    let _ = connection.id();
}
