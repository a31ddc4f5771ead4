//! Answers every message with what it received.
//!
//! ```sh
//! CONNECTIONS_TABLE=connections cargo run --example echo
//! ```

use lawcket::{Body, Connection, Event, Publish};

#[lawcket::handler(table = env!("CONNECTIONS_TABLE"), sync(channel = "#general"))]
async fn handler(
    event: Event,
    connection: Connection,
    publish: Option<Publish>,
) -> Result<(), lawcket::Error> {
    if let Some(publish) = publish {
        match event.body() {
            Body::Binary(bytes) => publish.send_bytes(bytes.clone()).await?,
            body => {
                publish
                    .send(&serde_json::json!({ "echo": body, "from": connection.id() }))
                    .await?
            }
        }
    }
    Ok(())
}
