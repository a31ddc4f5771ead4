//! Sending messages to connections through the API Gateway management API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewaymanagement as management;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde::Serialize;

use crate::registry::Registry;
use crate::Error;

/// Management API clients, one per endpoint, built on first use and kept for the
/// life of the process (a Lambda container serves one API, so this is one client).
#[derive(Debug)]
pub(crate) struct Clients {
    sdk: aws_config::SdkConfig,
    by_endpoint: Mutex<HashMap<String, management::Client>>,
}

impl Clients {
    pub(crate) fn new(sdk: aws_config::SdkConfig) -> Self {
        Clients {
            sdk,
            by_endpoint: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }

    pub(crate) fn client(&self, endpoint: &str) -> management::Client {
        let mut clients = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                let config = management::config::Builder::from(&self.sdk)
                    .endpoint_url(endpoint)
                    .build();
                management::Client::from_conf(config)
            })
            .clone()
    }
}

/// The capability to send messages, handed to the handler on MESSAGE events.
///
/// [`send`](Publish::send) answers the sender; [`to`](Publish::to) reaches any
/// connection by id. A post that API Gateway answers with 410 Gone releases that
/// connection from the registry and returns [`Error::Gone`].
///
/// ```
/// # async fn demo(publish: lawcket::Publish) -> Result<(), lawcket::Error> {
/// publish.send(&serde_json::json!({ "message": "hello" })).await?;   // JSON text
/// publish.send_bytes(vec![0xca, 0xfe]).await?;                        // binary
/// publish.to("L0SM9cOFvHcCIhw=", "a plain string is JSON too").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publish {
    sender: Arc<str>,
    target: Target,
}

/// Where posts go and which registry releases gone connections.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) endpoint: Arc<str>,
    pub(crate) client: management::Client,
    pub(crate) registry: Registry,
}

impl Publish {
    pub(crate) fn new(sender: &str, target: Target) -> Self {
        Publish {
            sender: sender.into(),
            target,
        }
    }

    /// The id of the connection that sent the message being handled.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The management endpoint posts go to.
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }

    /// Sends `value` as JSON to the sender.
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.to(&self.sender, value).await
    }

    /// Sends raw bytes to the sender.
    pub async fn send_bytes(&self, data: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.to_bytes(&self.sender, data).await
    }

    /// Sends `value` as JSON to the connection `connection_id`.
    pub async fn to<T: Serialize + ?Sized>(
        &self,
        connection_id: &str,
        value: &T,
    ) -> Result<(), Error> {
        let data = serde_json::to_vec(value).map_err(Error::Serialize)?;
        self.target.post(connection_id, data).await
    }

    /// Sends raw bytes to the connection `connection_id`.
    pub async fn to_bytes(
        &self,
        connection_id: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.target.post(connection_id, data.into()).await
    }
}

impl Target {
    /// Posts once; on 410 Gone releases the connection and answers [`Error::Gone`].
    pub(crate) async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<(), Error> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_gone(&error) => {
                tracing::info!(connection_id, "connection is gone (410); releasing it");
                self.registry.release(connection_id).await?;
                Err(Error::Gone {
                    connection_id: connection_id.to_owned(),
                })
            }
            Err(error) => Err(Error::Post {
                connection_id: connection_id.to_owned(),
                endpoint: self.endpoint.to_string(),
                message: DisplayErrorContext(&error).to_string(),
            }),
        }
    }
}

/// API Gateway answers 410 with `GoneException`; a bare 410 means the same.
fn is_gone(error: &SdkError<PostToConnectionError, HttpResponse>) -> bool {
    error
        .as_service_error()
        .is_some_and(PostToConnectionError::is_gone_exception)
        || error
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 410)
}
