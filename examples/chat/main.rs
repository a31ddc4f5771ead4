//! A chat with channels, in the browser.
//!
//! ```sh
//! cargo run --example chat     # then open http://127.0.0.1:3001/ in two tabs
//! ```
//!
//! Outside Lambda the binary runs lawcket's local gateway, which serves
//! `index.html` at `/`. Deployed (see deploy/), the same binary is the Lambda
//! behind an API Gateway WebSocket API.

use lawcket::{Connection, Event, Publish, Registration};
use serde::Deserialize;
use serde_json::json;

/// What the page sends, tagged by `action` (the route selection field).
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    /// Move to another channel.
    Join { channel: String },
    /// Say something to everyone in a channel.
    Send { channel: String, text: String },
}

#[lawcket::handler(
    table = env!("CONNECTIONS_TABLE"),
    // The channel comes from `?channel=` on connect; `#general` without one.
    sync(channel = query("channel", default = "#general")),
    index(channel = "channel-index"),
    local(page = "index.html"),
)]
async fn chat(
    event: Event,
    connection: Connection,
    publish: Option<Publish>,
    registration: Registration,
) -> Result<(), lawcket::Error> {
    // $connect and $disconnect: storing and releasing is lawcket's job.
    let Some(publish) = publish else {
        return Ok(());
    };
    match event.json::<Action>()? {
        Action::Join { channel } => {
            // Validated like the query parameter; refused if the connection
            // has been released meanwhile.
            registration.set("channel", channel.as_str()).await?;
            publish
                .send(&json!({ "type": "joined", "channel": channel }))
                .await?;
        }
        Action::Send { channel, text } => {
            let message = json!({ "type": "message", "channel": channel, "from": connection.id(), "text": text });
            let report = publish
                .matching("channel", channel.as_str())
                .send(&message)
                .await?;
            for failure in &report.failed {
                eprintln!(
                    "not delivered to {}: {}",
                    failure.connection_id, failure.error
                );
            }
        }
    }
    Ok(())
}
