#[lawcket::handler(table = "connections", plugins = [audit::record])]
async fn handler() {}

mod audit {
    pub async fn record(connection: lawcket::Connection, body: String) {
        let _ = (connection, body);
    }
}
