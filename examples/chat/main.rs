//! A chat with channels, in the browser.
//!
//! ```sh
//! cargo run --example chat     # then open http://127.0.0.1:3001/ in two tabs
//! ```
//!
//! Outside Lambda the binary runs lawcket's local gateway, which serves
//! `index.html` at `/`. Deployed (see deploy/), the same binary is the Lambda
//! behind an API Gateway WebSocket API, and its authorizer too.
//!
//! What it shows: the authorizer (a display name passed as `?token=`, stored
//! as `user`), replies (every action is answered: an acknowledgement or an
//! error the page shows), and publishing to a channel.

use lawcket::{AuthorizerRequest, Connection, Error, Event, Identity, Publish, Registration};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the page sends, tagged by `action` (the route selection field).
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    /// Move to another channel.
    Join { channel: String },
    /// Say something to everyone in a channel; `ref` comes back in the ack.
    Send {
        channel: String,
        text: String,
        #[serde(rename = "ref")]
        reference: Option<u64>,
    },
}

/// The REQUEST authorizer: the token is the display name the page asked
/// for. A real API would verify a signed token here instead.
async fn sign_in(request: AuthorizerRequest) -> Result<Identity, Error> {
    let name = request.query("token").unwrap_or_default();
    let valid = (1..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(Error::reject(
            401,
            "a name of 1 to 24 letters, digits, _ . or -",
        ));
    }
    Ok(Identity::new(name).with("name", name))
}

#[lawcket::handler(
    table = env!("CONNECTIONS_TABLE"),
    authorizer = sign_in,
    // The channel comes from `?channel=` on connect (`#general` without
    // one); the user is the authorizer's principal id.
    sync(
        channel = query("channel", default = "#general"),
        user = authorizer("principalId", chars = "a-zA-Z0-9_.-", max_len = 24),
    ),
    index(channel = "channel-index", user = "user-index"),
    local(page = "index.html"),
)]
async fn chat(
    event: Event,
    connection: Connection,
    identity: Identity,
    publish: Option<Publish>,
    registration: Registration,
) -> Result<Option<Value>, Error> {
    // $connect and $disconnect: storing and releasing is lawcket's job.
    let Some(publish) = publish else {
        return Ok(None);
    };
    let name = identity.principal_id();
    let action = match event.json::<Action>() {
        Ok(action) => action,
        Err(_) => return Ok(Some(error(None, None, "expected a join or send action"))),
    };
    let reply = match action {
        Action::Join { channel } => {
            // Validated like the query parameter; refused if the connection
            // has been released meanwhile.
            if let Err(refused) = registration.set("channel", channel.as_str()).await {
                let mut reply = error(Some("join"), None, &refusal(&refused));
                reply["channel"] = json!(channel);
                return Ok(Some(reply));
            }
            let joined = json!({ "type": "joined", "channel": channel, "name": name, "connection": connection.id() });
            publish
                .matching("channel", channel.as_str())
                .send(&joined)
                .await?;
            json!({ "type": "ack", "action": "join", "channel": channel,
                    "you": { "name": name, "connection": connection.id() } })
        }
        Action::Send {
            channel,
            text,
            reference,
        } => {
            let message = json!({ "type": "message", "channel": channel, "name": name,
                                   "connection": connection.id(), "text": text });
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
            json!({ "type": "ack", "action": "send", "ref": reference })
        }
    };
    Ok(Some(reply))
}

/// An error reply the page shows.
fn error(action: Option<&str>, reference: Option<u64>, message: &str) -> Value {
    json!({ "type": "error", "action": action, "ref": reference, "message": message })
}

/// What the client may read of a refused change: the rule it broke, not
/// internals (a registry failure is reported as such, without details).
fn refusal(error: &Error) -> String {
    match error {
        Error::Rejected { message, .. } => message.clone(),
        Error::Released { .. } => "you are no longer connected; reload the page".into(),
        _ => {
            eprintln!("join failed: {error}");
            "the channel could not be changed; try again".into()
        }
    }
}
