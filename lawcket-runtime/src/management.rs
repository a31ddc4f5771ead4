//! The API Gateway management API (`@connections`): building a client for an
//! endpoint, and what one post comes to.

use std::time::Duration;

use aws_sdk_apigatewaymanagement as management;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::error::Error;

/// Attempts per post: throttling (LimitExceeded, 429) and 5xx answers are
/// retried by the SDK with exponential backoff and jitter.
const POST_ATTEMPTS: u32 = 5;

/// A client for one management endpoint, with lawcket's retry settings and
/// the given bounds on each post.
pub(crate) fn client(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    timeouts: &aws_config::timeout::TimeoutConfig,
) -> management::Client {
    let retries = RetryConfig::standard()
        .with_max_attempts(POST_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(20));
    client_with(sdk, endpoint, timeouts, retries)
}

/// A client for one endpoint that tries each post once: the fan-out's
/// workers pace and retry throttled posts themselves, against the budget
/// they share.
#[cfg(feature = "fanout")]
pub(crate) fn paced_client(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    timeouts: &aws_config::timeout::TimeoutConfig,
) -> management::Client {
    client_with(sdk, endpoint, timeouts, RetryConfig::disabled())
}

fn client_with(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    timeouts: &aws_config::timeout::TimeoutConfig,
    retries: RetryConfig,
) -> management::Client {
    let config = management::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .timeout_config(timeouts.clone())
        .retry_config(retries)
        .build();
    management::Client::from_conf(config)
}

/// What a single post came to.
pub enum Outcome {
    /// API Gateway accepted it.
    Delivered,
    /// 410 Gone.
    Gone,
    /// Throttled (429, `LimitExceededException`): not delivered, safe to
    /// try again. (A client with retries has already retried it.)
    Throttled(Error),
    /// Failed, or perhaps delivered (a 5xx, a broken connection, no answer
    /// in time): not to be tried again by lawcket's workers.
    Failed(Error),
}

/// Posts `data` to `connection_id` through `client` (built for `endpoint`).
pub(crate) async fn post(
    client: &management::Client,
    endpoint: &str,
    connection_id: &str,
    data: Vec<u8>,
) -> Outcome {
    let result = client
        .post_to_connection()
        .connection_id(connection_id)
        .data(Blob::new(data))
        .send()
        .await;
    let error = match result {
        Ok(_) => return Outcome::Delivered,
        Err(error) if is_gone(&error) => return Outcome::Gone,
        Err(error) => error,
    };
    // Only a throttle proves the post was not delivered: after a 5xx or a
    // request that failed in transit it may have been.
    let throttled = error.raw_response().map(|r| r.status().as_u16()) == Some(429)
        || matches!(
            error.code(),
            Some("LimitExceededException" | "ThrottlingException")
        );
    let error = Error::Post {
        connection_id: connection_id.to_owned(),
        endpoint: endpoint.to_owned(),
        // The hint only: the SDK's own account of it is the source.
        message: match (&error, error.code()) {
            (_, Some(code)) => format!("API Gateway answered {code}"),
            (SdkError::TimeoutError(_), None) => {
                "no answer in time (LAWCKET_POST_TIMEOUT)".to_owned()
            }
            (SdkError::DispatchFailure(_), None) => "the endpoint could not be reached".to_owned(),
            (_, None) => match error.raw_response() {
                Some(response) => {
                    format!("API Gateway answered {}", response.status().as_u16())
                }
                None => "the request failed".to_owned(),
            },
        },
        source: Some(Box::new(management::Error::from(error))),
    };
    match throttled {
        true => Outcome::Throttled(error),
        false => Outcome::Failed(error),
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
