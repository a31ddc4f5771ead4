//! What travels through the queue: one batch of a broadcast per SQS message,
//! and the SQS records Lambda delivers them in.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The largest message lawcket sends with the payload inside: SQS bills each
/// 64 KiB of a message as one request ("Amazon SQS pricing"), and a bigger
/// payload is stored once in the broadcast's ledger record instead (a
/// DynamoDB item holds 400 KB; API Gateway's 128 KiB fits), which each worker
/// reads once.
pub(crate) const INLINE_LIMIT: usize = 64 * 1024;

/// The most bytes of messages in one SendMessageBatch: SQS's limit was 256
/// KiB for years ("Amazon SQS message quotas"; raised to 1 MiB in 2025), and
/// staying under it keeps a Lambda batch of 10 messages far below the 6 MB
/// invocation payload.
pub(crate) const SEND_BATCH_LIMIT: usize = 256 * 1024;

/// Entries in one SendMessageBatch (SQS's maximum).
pub(crate) const SEND_BATCH_ENTRIES: usize = 10;

/// One batch of a broadcast: the connections to post to and what to post.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Batch {
    /// Marks the message as lawcket's (any other message is refused).
    pub(crate) lawcket: Fanout,
    /// The broadcast's id.
    pub(crate) broadcast: String,
    /// When it was dispatched, epoch ms: its ledger records live 15 days.
    pub(crate) at: i64,
    /// The batch's number within the broadcast, from 0.
    pub(crate) seq: u64,
    /// The management endpoint the posts go to.
    pub(crate) endpoint: String,
    /// The payload, base64; absent when it is in the broadcast's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<String>,
    /// `(connection id, connectedAt)` pairs.
    pub(crate) connections: Vec<(String, Option<i64>)>,
}

/// The message format's version tag.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) enum Fanout {
    #[serde(rename = "fanout/1")]
    V1,
}

impl Batch {
    /// The message body.
    pub(crate) fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a batch is plain data")
    }

    /// Reads a message body, refusing any message that is not a lawcket batch.
    pub fn from_body(body: &str) -> Result<Batch, Error> {
        serde_json::from_str(body).map_err(|e| {
            Error::MalformedEvent(format!(
                "an SQS message that is not a lawcket fan-out batch ({e}); only lawcket's \
                 dispatcher should send to this queue"
            ))
        })
    }

    /// The inline payload, decoded.
    pub(crate) fn inline_payload(&self) -> Option<Result<Vec<u8>, Error>> {
        self.payload.as_ref().map(|p| {
            base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(Error::Base64)
        })
    }
}

/// The payload as it travels inside a message.
pub(crate) fn encode(payload: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(payload)
}

/// One record of an SQS event as Lambda delivers it ("Using Lambda with
/// Amazon SQS": `Records[].messageId`, `body`, `eventSource`).
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    #[serde(rename = "messageId")]
    pub(crate) message_id: String,
    pub(crate) body: String,
    #[serde(rename = "eventSource", default)]
    pub(crate) event_source: Option<String>,
}
