//! Announcements to every connection through the fan-out (lawcket's `fanout`
//! feature): the handler dispatches the broadcast to an SQS queue and
//! answers at once with its id; workers (this same binary, invoked by the
//! queue) post it, paced to API Gateway's throttle; `report` reads what they
//! have done. docs/fanout.md explains the setup.
//!
//! Send `{"action":"announce","text":"..."}` or
//! `{"action":"report","broadcast":"<id>"}`.

use lawcket::{Error, Event, Publish, Reply};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    Announce { text: String },
    Report { broadcast: String },
}

#[lawcket::handler(table = env!("CONNECTIONS_TABLE"))]
async fn handler(event: Event, publish: Option<Publish>) -> Result<Option<Reply>, Error> {
    let Some(publish) = publish else {
        return Ok(None); // $connect and $disconnect: lawcket keeps the table
    };
    let reply = match event.json::<Action>() {
        Ok(Action::Announce { text }) => {
            let announcement = json!({ "type": "announcement", "text": text });
            let dispatched = publish.everyone().dispatch().send(&announcement).await?;
            json!({
                "type": "dispatched",
                "broadcast": dispatched.id(),
                "connections": dispatched.connections(),
                "batches": dispatched.batches(),
            })
        }
        Ok(Action::Report { broadcast }) => match publish.publisher().report(&broadcast).await? {
            Some(report) => json!({ "type": "report", "broadcast": broadcast, "report": report }),
            None => json!({ "type": "error", "message": "no such broadcast" }),
        },
        Err(_) => json!({
            "type": "error",
            "message": "send {\"action\":\"announce\",\"text\":\"...\"} or \
                        {\"action\":\"report\",\"broadcast\":\"<id>\"}",
        }),
    };
    Ok(Some(Reply::json(&reply)?))
}
