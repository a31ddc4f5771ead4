//! Management API clients, built once per endpoint and kept for the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_apigatewaymanagement as management;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;

/// Attempts per post: throttling (LimitExceeded, 429) and 5xx answers are
/// retried by the SDK with exponential backoff and jitter.
const POST_ATTEMPTS: u32 = 5;

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
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(POST_ATTEMPTS)
                            .with_initial_backoff(Duration::from_millis(20)),
                    )
                    .build();
                management::Client::from_conf(config)
            })
            .clone()
    }
}
