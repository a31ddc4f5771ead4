//! Sending batches to the SQS queue.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::error::Error;

/// Attempts at entries SQS answered as failed without the sender's fault.
const SEND_ATTEMPTS: u32 = 5;

/// Sends `bodies` (at most 10) in one SendMessageBatch, retrying entries SQS
/// failed for its own reasons; any entry still unsent is an error.
pub(crate) async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    bodies: Vec<String>,
) -> Result<(), Error> {
    let mut pending: Vec<(String, String)> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| (i.to_string(), body))
        .collect();
    let error = |message: String, source: Option<aws_sdk_sqs::Error>| Error::Queue {
        queue: queue.to_owned(),
        operation: "SendMessageBatch",
        message,
        source: source.map(|e| Box::new(e) as _),
    };
    for attempt in 0..SEND_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let entries = pending
            .iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                let message = match e.code() {
                    Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
                        "the queue does not exist; check LAWCKET_FANOUT_QUEUE".to_owned()
                    }
                    Some("AccessDenied" | "AccessDeniedException") => {
                        "access denied; the function's role needs sqs:SendMessage on the queue"
                            .to_owned()
                    }
                    Some(code) => format!("SQS answered {code}"),
                    None => "the request failed".to_owned(),
                };
                error(message, Some(aws_sdk_sqs::Error::from(e)))
            })?;
        if let Some(fault) = out.failed.iter().find(|f| f.sender_fault) {
            return Err(error(
                format!(
                    "SQS refused a message: {} {}",
                    fault.code,
                    fault.message().unwrap_or("")
                ),
                None,
            ));
        }
        let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
        pending.retain(|(id, _)| failed.contains(&id.as_str()));
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(error(
        format!(
            "{} messages were still failing after {SEND_ATTEMPTS} attempts",
            pending.len()
        ),
        None,
    ))
}
