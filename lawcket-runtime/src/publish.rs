//! The publish capability handed to the handler on MESSAGE events.

use serde::Serialize;

use crate::error::Error;
use crate::publisher::{Broadcast, Publisher};
use crate::sync::SyncValue;

/// The capability to send messages, handed to the handler on MESSAGE events.
///
/// [`send`](Publish::send) answers the sender; [`to`](Publish::to) reaches any
/// connection by id; [`everyone`](Publish::everyone) and
/// [`matching`](Publish::matching) mass-publish to this stage's connections and
/// return a [`Report`](crate::Report). A post that API Gateway answers with 410
/// Gone releases that connection from the registry.
///
/// ```
/// # async fn demo(publish: lawcket::Publish) -> Result<(), lawcket::Error> {
/// publish.send(&serde_json::json!({ "message": "hello" })).await?;   // JSON text
/// publish.send_bytes(vec![0xca, 0xfe]).await?;                        // binary
/// publish.to("L0SM9cOFvHcCIhw=", "a plain string is JSON too").await?;
/// let report = publish
///     .matching("channel", "#general")
///     .except(publish.sender())
///     .send(&serde_json::json!({ "from": publish.sender(), "text": "hi all" }))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publish {
    sender: String,
    publisher: Publisher,
}

impl Publish {
    pub(crate) fn new(sender: &str, publisher: Publisher) -> Self {
        Publish {
            sender: sender.to_owned(),
            publisher,
        }
    }

    /// The id of the connection that sent the message being handled.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The management endpoint posts go to.
    pub fn endpoint(&self) -> &str {
        self.publisher.endpoint()
    }

    /// The underlying [`Publisher`], to keep beyond the handler call.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Sends `value` as JSON to the sender. If API Gateway answers 410 Gone
    /// the sender is released at once and [`Error::Gone`] returned.
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let data = serde_json::to_vec(value).map_err(Error::Serialize)?;
        self.send_bytes(data).await
    }

    /// Sends raw bytes to the sender (released at once on 410 Gone).
    pub async fn send_bytes(&self, data: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.publisher.to_sender(&self.sender, data.into()).await
    }

    /// Sends `value` as JSON to the connection `connection_id`.
    pub async fn to<T: Serialize + ?Sized>(
        &self,
        connection_id: &str,
        value: &T,
    ) -> Result<(), Error> {
        self.publisher.to(connection_id, value).await
    }

    /// Sends raw bytes to the connection `connection_id`.
    pub async fn to_bytes(
        &self,
        connection_id: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.publisher.to_bytes(connection_id, data).await
    }

    /// Every connection of this stage (the sender included unless
    /// [`except`](Broadcast::except)ed).
    pub fn everyone(&self) -> Broadcast<'_> {
        self.publisher.everyone()
    }

    /// The connections whose sync field `field` equals `value`.
    pub fn matching(&self, field: &str, value: impl Into<SyncValue>) -> Broadcast<'_> {
        self.publisher.matching(field, value)
    }
}
