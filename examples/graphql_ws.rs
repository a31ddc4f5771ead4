//! The handshake and keep-alive of the GraphQL over WebSocket protocol
//! (`graphql-transport-ws`), answered with replies.
//!
//! ```sh
//! cargo run --example graphql_ws
//! # then, in a browser console on http://127.0.0.1:3001/:
//! #   ws = new WebSocket("ws://127.0.0.1:3001/", ["graphql-transport-ws"])
//! #   ws.onmessage = (e) => console.log(e.data)
//! #   ws.send('{"type":"connection_init"}')     // → {"type":"connection_ack"}
//! ```
//!
//! A client offering only other subprotocols is refused at `$connect`, which
//! a browser reports as a failed connection. Route selection is
//! `$request.body.action`, which these messages lack: all of them reach the
//! `$default` route, whose route response sends the reply back.

use lawcket::{Event, Publish};
use serde_json::{json, Value};

#[lawcket::handler(
    table = env!("CONNECTIONS_TABLE"),
    subprotocols = ["graphql-transport-ws"],
)]
async fn graphql(event: Event, publish: Option<Publish>) -> Result<Option<Value>, lawcket::Error> {
    // $connect and $disconnect: lawcket answers the handshake and the registry.
    let (Some(publish), Ok(message)) = (publish, event.json::<Value>()) else {
        return Ok(None);
    };
    let reply = match message["type"].as_str() {
        Some("connection_init") => json!({ "type": "connection_ack" }),
        Some("ping") => json!({ "type": "pong" }),
        // A subscription with one result: the result is posted, and the
        // reply (sent after the handler returns) completes it.
        Some("subscribe") => {
            let id = &message["id"];
            let result =
                json!({ "type": "next", "id": id, "payload": { "data": { "hello": "world" } } });
            publish.send(&result).await?;
            json!({ "type": "complete", "id": id })
        }
        _ => return Ok(None),
    };
    Ok(Some(reply))
}
