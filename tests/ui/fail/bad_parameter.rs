#[lawcket::handler(table = "connections")]
async fn handler(connection: lawcket::Connection, body: String) {
    let _ = (connection, body);
}
