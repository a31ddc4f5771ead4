//! The one error type of lawcket.

use std::fmt;

/// A boxed error from user code (a handler, middleware or plugin).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong between an API Gateway event and its response.
///
/// Each variant's message says what happened and, where there is one, what to do
/// about it. Match on the variant to react (for example [`Error::Gone`] after a
/// post to a connection that has already left).
///
/// As the standard library's errors do, the message does not repeat the
/// cause: an SDK error, a serde error or your own error is the error's
/// [`source()`](std::error::Error::source). Print the whole chain with
/// anyhow's `{:#}`, or walk `source()`; lawcket's own logs and Lambda's
/// `errorMessage` show the whole chain.
///
/// ```
/// let error = lawcket::Error::reject(403, "unknown api key");
/// assert_eq!(error.status(), 403);
/// assert_eq!(error.to_string(), "refused with status 403: unknown api key");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The invocation payload is not an API Gateway WebSocket event lawcket can serve.
    #[error("malformed event: {0}")]
    MalformedEvent(String),

    /// `isBase64Encoded` was set but the body is not valid base64.
    #[error("message body is marked isBase64Encoded but is not valid base64")]
    Base64(#[source] base64::DecodeError),

    /// The message body is larger than API Gateway ever delivers.
    #[error("message body of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Size of the decoded body in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The body could not be read as the type the caller asked for.
    #[error("message body does not fit `{target}`")]
    Body {
        /// The Rust type that was asked for.
        target: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },

    /// A value to publish, or a reply ([`Reply::json`](crate::Reply::json)),
    /// could not be serialised to JSON.
    #[error("could not serialise the message to JSON")]
    Serialize(#[source] serde_json::Error),

    /// A call to the fan-out's SQS queue failed (feature `fanout`).
    #[error("{operation} on the fan-out queue {queue} failed: {message}")]
    Queue {
        /// The queue URL (`LAWCKET_FANOUT_QUEUE`).
        queue: String,
        /// The SQS operation (SendMessageBatch, ...).
        operation: &'static str,
        /// What went wrong, with a hint where one helps.
        message: String,
        /// The SDK's error, when the call itself failed.
        #[source]
        source: Option<BoxError>,
    },

    /// A fan-out dispatch failed part-way (feature `fanout`). The batches it
    /// had already enqueued will be posted: read
    /// [`Publisher::report`](crate::Publisher) with `broadcast` before
    /// dispatching again, or those connections get the message twice.
    #[error(
        "dispatching broadcast {broadcast} failed after {batches} of its batches were cut; \
         those already enqueued will be posted, so read its report before dispatching again"
    )]
    Dispatch {
        /// The broadcast's id.
        broadcast: String,
        /// Batches cut so far (some may not have been enqueued).
        batches: u64,
        /// What failed.
        #[source]
        source: Box<Error>,
    },

    /// A DynamoDB call on the connections table failed.
    ///
    /// `source` is the SDK's error, converted to `aws_sdk_dynamodb::Error`, so
    /// a caller can match on it: `error.source()` and `downcast_ref`.
    #[error("DynamoDB {operation} on table `{table}` failed: {message}")]
    Registry {
        /// The table lawcket was configured with.
        table: String,
        /// The DynamoDB operation (PutItem, DeleteItem, ...).
        operation: &'static str,
        /// What went wrong, with a hint where one helps.
        message: String,
        /// The SDK's error, when the call itself failed (none when DynamoDB
        /// answered but left work undone, as unprocessed batch items).
        #[source]
        source: Option<BoxError>,
    },

    /// The connection has gone away (API Gateway answered 410 Gone). lawcket has
    /// already released it from the connections table.
    #[error(
        "connection {connection_id} is gone (410 Gone); it was released from the connections table"
    )]
    Gone {
        /// The connection that is gone.
        connection_id: String,
    },

    /// The connection is no longer in the connections table (it closed, or a post
    /// found it gone), so nothing was written for it.
    #[error("connection {connection_id} is no longer registered; nothing was written")]
    Released {
        /// The connection.
        connection_id: String,
    },

    /// A call to the API Gateway management API (`@connections`) failed for a reason
    /// other than 410 Gone. The connection is kept.
    ///
    /// `source` is the SDK's error, converted to `aws_sdk_apigatewaymanagement::Error`.
    #[error("posting to connection {connection_id} through {endpoint} failed: {message}")]
    Post {
        /// The connection the message was for.
        connection_id: String,
        /// The management endpoint used.
        endpoint: String,
        /// What went wrong.
        message: String,
        /// The SDK's error, when the call itself failed.
        #[source]
        source: Option<BoxError>,
    },

    /// The request was refused on purpose (by a handler or middleware). On `$connect`
    /// this refuses the WebSocket handshake with `status`.
    #[error("refused with status {status}: {message}")]
    Rejected {
        /// HTTP status for the refusal (4xx or 5xx).
        status: u16,
        /// Why, for logs and the response body.
        message: String,
    },

    /// lawcket was configured or called in a way it cannot work with (the
    /// attribute's settings, a publisher builder, a call on the wrong event).
    #[error("configuration: {0}")]
    Config(String),

    /// An environment variable lawcket reads is missing or invalid.
    #[error("environment variable {var}: {problem}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it, and what it should be.
        problem: String,
    },

    /// The process could not serve: starting tokio, binding the local
    /// gateway's address, or the server stopping.
    #[error("{context}")]
    Io {
        /// What lawcket was doing.
        context: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The Lambda runtime client (lambda_runtime) stopped.
    #[error("the Lambda runtime client stopped")]
    Runtime(#[source] BoxError),

    /// The handler, a middleware or a plugin returned an error of its own.
    #[error("{context} failed")]
    Handler {
        /// Which part of the user's code failed.
        context: String,
        /// The user's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// The variant's name, as Lambda reports it (`lawcket::Error::<name>`).
    fn variant(&self) -> &'static str {
        match self {
            Error::MalformedEvent(_) => "MalformedEvent",
            Error::Base64(_) => "Base64",
            Error::TooLarge { .. } => "TooLarge",
            Error::Body { .. } => "Body",
            Error::Serialize(_) => "Serialize",
            Error::Registry { .. } => "Registry",
            Error::Queue { .. } => "Queue",
            Error::Dispatch { .. } => "Dispatch",
            Error::Gone { .. } => "Gone",
            Error::Released { .. } => "Released",
            Error::Post { .. } => "Post",
            Error::Rejected { .. } => "Rejected",
            Error::Config(_) => "Config",
            Error::Env { .. } => "Env",
            Error::Io { .. } => "Io",
            Error::Runtime(_) => "Runtime",
            Error::Handler { .. } => "Handler",
        }
    }

    /// Refuses the request with an HTTP status (e.g. 401 or 403) and a reason.
    ///
    /// Returned from a handler or middleware on `$connect`, it refuses the
    /// WebSocket handshake with that status and nothing is stored. A status
    /// outside 400..=599 would accept the connection, so it is answered as 500.
    pub fn reject(status: u16, message: impl fmt::Display) -> Self {
        Error::Rejected {
            status,
            message: message.to_string(),
        }
    }

    /// The HTTP status this error answers with: the rejection's own status,
    /// 400 for a request lawcket could not read, 500 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            Error::Rejected { status, .. } if (400..=599).contains(status) => *status,
            Error::MalformedEvent(_) | Error::Base64(_) | Error::Body { .. } => 400,
            Error::TooLarge { .. } => 413,
            _ => 500,
        }
    }

    /// Turns a user error into an [`Error`], keeping a lawcket [`Error`] as it is
    /// (so `Error::reject` survives a trip through `Box<dyn Error>`).
    pub(crate) fn from_user(context: &str, error: BoxError) -> Self {
        match error.downcast::<Error>() {
            Ok(own) => *own,
            Err(source) => Error::Handler {
                context: context.to_owned(),
                source,
            },
        }
    }
}

/// A failed invocation as Lambda reports it: `errorType` is
/// `lawcket::Error::<Variant>`, `errorMessage` the error's message.
impl From<&Error> for lambda_runtime::Diagnostic {
    fn from(error: &Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("lawcket::Error::{}", error.variant()),
            error_message: chain(error).to_string(),
        }
    }
}

/// An error and its sources, `outer: inner: innermost`, for logs and reports.
pub(crate) fn chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> impl fmt::Display + 'a {
    struct Chain<'a>(&'a (dyn std::error::Error + 'static));
    impl fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0)?;
            let mut source = self.0.source();
            while let Some(error) = source {
                write!(f, ": {error}")?;
                source = error.source();
            }
            Ok(())
        }
    }
    Chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_names_the_variant() {
        let diagnostic = lambda_runtime::Diagnostic::from(&Error::reject(401, "no"));
        assert_eq!(diagnostic.error_type, "lawcket::Error::Rejected");
        assert_eq!(diagnostic.error_message, "refused with status 401: no");
    }

    #[test]
    fn sdk_errors_stay_reachable_as_the_source() {
        use std::error::Error as _;
        let error = Error::Post {
            connection_id: "a".into(),
            endpoint: "http://x".into(),
            message: "boom".into(),
            source: Some("the sdk said no".into()),
        };
        assert_eq!(error.source().unwrap().to_string(), "the sdk said no");
        assert_eq!(
            chain(&error).to_string(),
            "posting to connection a through http://x failed: boom: the sdk said no"
        );
    }
}
