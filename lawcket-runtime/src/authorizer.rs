//! REQUEST authorizers: the user's `authorizer = check` fn, its input, the
//! [`Identity`] it returns, and the answer API Gateway expects from it.
//!
//! API Gateway runs a Lambda REQUEST authorizer before `$connect` and passes
//! the `principalId` and `context` it returns to the integration in
//! `requestContext.authorizer`, on `$connect` and every later event of the
//! connection ("Controlling access to WebSocket APIs with AWS Lambda REQUEST
//! authorizers", API Gateway Developer Guide). The same binary answers both
//! invocations; [`crate::lambda`] tells them apart by `type` and `methodArn`.

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Map, Value};

use crate::error::{BoxError, Error};
use crate::invocation::{FromInvocation, Invocation};

/// What a REQUEST authorizer receives: the `$connect` request before API
/// Gateway accepts it.
///
/// Browsers cannot set headers on a WebSocket, so a token usually comes as a
/// query parameter (deploy/ names `route.request.querystring.token` as the
/// identity source).
#[derive(Clone, Debug)]
pub struct AuthorizerRequest {
    pub(crate) method_arn: String,
    pub(crate) request: ApiGatewayWebsocketProxyRequest,
}

impl AuthorizerRequest {
    /// A request as API Gateway would send it, e.g. to unit-test an
    /// authorizer.
    pub fn new(method_arn: impl Into<String>, request: ApiGatewayWebsocketProxyRequest) -> Self {
        AuthorizerRequest {
            method_arn: method_arn.into(),
            request,
        }
    }

    /// A request header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query string parameter (the last value when repeated, as API Gateway
    /// gives it).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.request.query_string_parameters.first(name)
    }

    /// The ARN of the `$connect` route being authorized
    /// (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/$connect`).
    pub fn method_arn(&self) -> &str {
        &self.method_arn
    }

    /// The client's IP address.
    pub fn source_ip(&self) -> Option<&str> {
        self.request.request_context.identity.source_ip.as_deref()
    }

    /// The whole request as API Gateway sent it (request context, stage
    /// variables, multi-value parameters).
    pub fn request(&self) -> &ApiGatewayWebsocketProxyRequest {
        &self.request
    }
}

/// Who is connecting, as the authorizer decided: a principal id and a context
/// of string, number and boolean values.
///
/// An authorizer returns it to accept a connection; handlers take it as a
/// parameter (`identity: Identity`) on `$connect` and every later event.
///
/// ```
/// let identity = lawcket::Identity::new("user-42")
///     .with("name", "Alice")
///     .with("admin", false);
/// assert_eq!(identity.principal_id(), "user-42");
/// assert_eq!(identity.get_str("name"), Some("Alice"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    principal_id: String,
    context: Map<String, Value>,
}

/// Keys API Gateway itself writes into `requestContext.authorizer`.
const RESERVED: [&str; 2] = ["principalId", "integrationLatency"];

impl Identity {
    /// An identity with an empty context.
    pub fn new(principal_id: impl Into<String>) -> Self {
        Identity {
            principal_id: principal_id.into(),
            context: Map::new(),
        }
    }

    /// Adds a context value. API Gateway takes strings, numbers and booleans
    /// only; an object, array or null fails the authorization (500) with an
    /// error naming the key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    /// The principal id.
    pub fn principal_id(&self) -> &str {
        &self.principal_id
    }

    /// A context value. In a handler, API Gateway gives numbers and booleans
    /// as strings (`"3"`, `"true"`), as does the local gateway; the
    /// authorizer's own answer keeps their types.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.context.get(key)
    }

    /// A context value that is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.context.get(key).and_then(Value::as_str)
    }

    /// The whole context.
    pub fn context(&self) -> &Map<String, Value> {
        &self.context
    }

    /// Whether API Gateway passed an identity with the event.
    pub(crate) fn is_in(request: &ApiGatewayWebsocketProxyRequest) -> bool {
        let fields = &request.request_context.authorizer.fields;
        fields.get("principalId").is_some_and(Value::is_string)
    }

    /// The identity API Gateway passed with an event, if any.
    pub(crate) fn of(request: &ApiGatewayWebsocketProxyRequest) -> Option<Identity> {
        let fields = &request.request_context.authorizer.fields;
        let principal_id = fields.get("principalId")?.as_str()?.to_owned();
        let context = fields
            .iter()
            .filter(|(key, _)| !RESERVED.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Some(Identity {
            principal_id,
            context,
        })
    }

    /// `requestContext.authorizer` as API Gateway fills it for later events:
    /// context values as strings, as API Gateway documents them ("The
    /// returned values are all stringified", Output from an API Gateway
    /// Lambda authorizer).
    #[cfg(feature = "local")]
    pub(crate) fn fields(&self, latency_ms: u64) -> std::collections::HashMap<String, Value> {
        let text = |value: &Value| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut fields: std::collections::HashMap<String, Value> = self
            .context
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(text(value))))
            .collect();
        fields.insert("principalId".into(), self.principal_id.clone().into());
        fields.insert("integrationLatency".into(), latency_ms.into());
        fields
    }

    /// Refuses what API Gateway would refuse in an authorizer's answer.
    fn validate(&self) -> Result<(), Error> {
        if self.principal_id.is_empty() {
            return Err(Error::Config(
                "the authorizer returned an empty principal id".into(),
            ));
        }
        for (key, value) in &self.context {
            if RESERVED.contains(&key.as_str()) {
                return Err(Error::Config(format!(
                    "the authorizer's context key `{key}` is written by API Gateway itself"
                )));
            }
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                return Err(Error::Config(format!(
                    "the authorizer's context value `{key}` is {value}; API Gateway takes \
                     strings, numbers and booleans only"
                )));
            }
        }
        Ok(())
    }
}

impl FromInvocation for Identity {
    const NEEDS_AUTHORIZER: bool = true;

    /// The authorizer's identity: the pipeline refuses an event without one
    /// when the handler has an authorizer, and `#[lawcket::handler]` refuses
    /// this parameter without `authorizer = ..`. (A plugin taking it behind
    /// no authorizer gets an empty principal id: take `Option<Identity>`.)
    fn from_invocation(invocation: &Invocation) -> Self {
        Identity::of(invocation.event.request()).unwrap_or_else(|| Identity::new(""))
    }
}

impl FromInvocation for Option<Identity> {
    fn from_invocation(invocation: &Invocation) -> Self {
        Identity::of(invocation.event.request())
    }
}

/// What the authorizer decided.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Connect, with this identity.
    Allow(Identity),
    /// `Error::reject(403, ..)` (or any 4xx but 401): a Deny policy; the
    /// client gets 403.
    Deny(String),
    /// `Error::reject(401, ..)`: the client gets 401.
    Unauthorized(String),
}

impl Verdict {
    /// The authorizer fn's outcome; any error but a refusal fails the
    /// authorization (the client gets 500).
    pub(crate) fn from_outcome(outcome: Result<Identity, BoxError>) -> Result<Verdict, Error> {
        match outcome {
            Ok(identity) => identity.validate().map(|()| Verdict::Allow(identity)),
            Err(error) => match Error::from_user("the authorizer", error) {
                Error::Rejected {
                    status: 401,
                    message,
                } => Ok(Verdict::Unauthorized(message)),
                // A 5xx says the authorizer could not decide: a failure (500),
                // not a verdict about the client.
                Error::Rejected { status, message } if status < 500 => Ok(Verdict::Deny(message)),
                other => Err(other),
            },
        }
    }

    /// The authorizer's answer as API Gateway reads it: an IAM policy on the
    /// `methodArn` and, when allowed, the context ("Output from an API Gateway
    /// Lambda authorizer"). `None` for a 401, which is the error
    /// `Unauthorized` instead.
    pub(crate) fn policy(&self, method_arn: &str) -> Option<Value> {
        let (principal_id, effect, context) = match self {
            Verdict::Allow(identity) => (
                identity.principal_id.as_str(),
                "Allow",
                Value::Object(identity.context.clone()),
            ),
            // API Gateway requires a principal id even in a Deny.
            Verdict::Deny(_) => ("denied", "Deny", Value::Object(Map::new())),
            Verdict::Unauthorized(_) => return None,
        };
        Some(json!({
            "principalId": principal_id,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": method_arn,
                }],
            },
            "context": context,
        }))
    }
}

/// The future an [`Authorizer`] returns.
pub type AuthorizerFuture = Pin<Box<dyn Future<Output = Result<Identity, BoxError>> + Send>>;

/// The user's authorizer fn as the pipeline calls it. Implemented for every
/// `Fn(AuthorizerRequest) -> impl Future<Output = Result<Identity, E>>`.
pub trait Authorizer: Send + Sync + 'static {
    /// Decides on one `$connect` request.
    fn call(&self, request: AuthorizerRequest) -> AuthorizerFuture;
}

impl<F, Fut> Authorizer for F
where
    F: Fn(AuthorizerRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Identity, BoxError>> + Send + 'static,
{
    fn call(&self, request: AuthorizerRequest) -> AuthorizerFuture {
        Box::pin(self(request))
    }
}

/// An async fn usable as `authorizer = ..`:
/// `async fn(AuthorizerRequest) -> Result<Identity, E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a lawcket authorizer",
    label = "not `async fn(lawcket::AuthorizerRequest) -> Result<lawcket::Identity, E>`",
    note = "an authorizer takes the `$connect` request and returns who connects, or `lawcket::Error::reject(401, ..)` (no or bad credentials) / `reject(403, ..)` (not allowed)"
)]
pub trait IntoAuthorizer: Send + Sync + 'static {
    /// The authorizer as the pipeline stores it.
    fn into_authorizer(self) -> Box<dyn Authorizer>;
}

// Implemented on the fn itself (not through `Authorizer`), so a fn of the
// wrong shape is reported against this trait, which the facade re-exports.
impl<F, Fut, E> IntoAuthorizer for F
where
    F: Fn(AuthorizerRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Identity, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn into_authorizer(self) -> Box<dyn Authorizer> {
        Box::new(move |request| {
            let future = self(request);
            async move { future.await.map_err(Into::into) }
        })
    }
}
