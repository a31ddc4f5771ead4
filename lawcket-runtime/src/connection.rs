//! Who sent the event: [`Connection`] and its [`Kind`].

use std::sync::Arc;

use crate::error::Error;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

/// What happened on the connection, from `requestContext.eventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `$connect`: a client is opening the WebSocket (`CONNECT`).
    Connect,
    /// `$disconnect`: the WebSocket has closed (`DISCONNECT`).
    Close,
    /// A message arrived on an open WebSocket (`MESSAGE`).
    Message,
}

/// The WebSocket connection an event belongs to.
///
/// ```
/// # fn demo(connection: lawcket::Connection) {
/// use lawcket::Kind;
/// match connection.kind() {
///     Kind::Connect => println!("{} joined via {}", connection.id(), connection.domain_name()),
///     Kind::Message => println!("{} sent on route {}", connection.id(), connection.route_key()),
///     Kind::Close => println!("{} left", connection.id()),
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Connection(Arc<Fields>);

/// Shared: every handler parameter, registration and publish of an event
/// holds the same connection, so a clone is a reference count, not five strings.
#[derive(Debug, PartialEq, Eq)]
struct Fields {
    kind: Kind,
    id: String,
    stage: String,
    domain_name: String,
    route_key: String,
    api_id: Option<String>,
    connected_at: i64,
}

impl Connection {
    /// Reads the connection out of an API Gateway WebSocket event.
    ///
    /// Fails with [`Error::MalformedEvent`] naming the field when a field API
    /// Gateway always sends is missing, or holds what API Gateway never sends:
    /// these fields build the URL posts go to and the registry's keys, so a
    /// forged value must stop here.
    pub fn from_request(request: &ApiGatewayWebsocketProxyRequest) -> Result<Self, Error> {
        let context = &request.request_context;
        let kind = match context.event_type.as_deref() {
            Some("CONNECT") => Kind::Connect,
            Some("DISCONNECT") => Kind::Close,
            Some("MESSAGE") => Kind::Message,
            Some(other) => {
                return Err(Error::MalformedEvent(format!(
                    "requestContext.eventType is {other:?}; expected CONNECT, DISCONNECT or MESSAGE"
                )))
            }
            None => return Err(missing("eventType")),
        };
        let field = |value: &Option<String>, name: &str, shape: Shape| match value.as_deref() {
            Some(v) if !v.is_empty() => shape.check(name, v).map(|()| v.to_owned()),
            _ => Err(missing(name)),
        };
        // An empty apiId is taken as absent.
        let api_id = context.apiid.clone().filter(|id| !id.is_empty());
        if let Some(api_id) = &api_id {
            Shape::ApiId.check("apiId", api_id)?;
        }
        // API Gateway stamps it in epoch ms; 0 means absent (the item then
        // takes the time of the store).
        if !(0..LATEST_CONNECTED_AT).contains(&context.connected_at) {
            return Err(Error::MalformedEvent(format!(
                "requestContext.connectedAt is {}, not a time in epoch milliseconds",
                context.connected_at
            )));
        }
        Ok(Connection(Arc::new(Fields {
            kind,
            id: field(&context.connection_id, "connectionId", Shape::ConnectionId)?,
            stage: field(&context.stage, "stage", Shape::Stage)?,
            domain_name: field(&context.domain_name, "domainName", Shape::DomainName)?,
            route_key: context.route_key.clone().unwrap_or_else(|| match kind {
                Kind::Connect => "$connect".into(),
                Kind::Close => "$disconnect".into(),
                Kind::Message => "$default".into(),
            }),
            api_id,
            connected_at: context.connected_at,
        })))
    }

    /// Connect, close or message.
    pub fn kind(&self) -> Kind {
        self.0.kind
    }

    /// The API Gateway connection id (`requestContext.connectionId`).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The API stage (`requestContext.stage`), e.g. `prod`.
    pub fn stage(&self) -> &str {
        &self.0.stage
    }

    /// The domain the client connected to (`requestContext.domainName`).
    pub fn domain_name(&self) -> &str {
        &self.0.domain_name
    }

    /// The route API Gateway selected: `$connect`, `$disconnect`, `$default` or a
    /// custom route key.
    pub fn route_key(&self) -> &str {
        &self.0.route_key
    }

    /// The API id (`requestContext.apiId`), when API Gateway sent it.
    pub fn api_id(&self) -> Option<&str> {
        self.0.api_id.as_deref()
    }

    /// When the connection was opened, in milliseconds since the Unix epoch.
    pub fn connected_at(&self) -> i64 {
        self.0.connected_at
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fields {
            kind,
            id,
            stage,
            domain_name,
            route_key,
            api_id,
            connected_at,
        } = &*self.0;
        f.debug_struct("Connection")
            .field("kind", kind)
            .field("id", id)
            .field("stage", stage)
            .field("domain_name", domain_name)
            .field("route_key", route_key)
            .field("api_id", api_id)
            .field("connected_at", connected_at)
            .finish()
    }
}

/// Whether `stage` is a stage name API Gateway could send.
pub(crate) fn is_stage(stage: &str) -> bool {
    !stage.is_empty() && Shape::Stage.check("stage", stage).is_ok()
}

/// Whether `name` is a domain name API Gateway could send.
pub(crate) fn is_domain_name(name: &str) -> bool {
    !name.is_empty() && Shape::DomainName.check("domainName", name).is_ok()
}

/// The connection a `$disconnect` event is for, when its id is well formed,
/// even if another field is not: the connection is gone either way, and its
/// release must not wait on the rest of the event.
pub(crate) fn disconnected_id(request: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    let context = &request.request_context;
    let id = context.connection_id.as_deref()?;
    let ok = context.event_type.as_deref() == Some("DISCONNECT")
        && !id.is_empty()
        && Shape::ConnectionId.check("connectionId", id).is_ok();
    ok.then_some(id)
}

/// 2100-01-01 in epoch milliseconds: a later `connectedAt` is no timestamp.
const LATEST_CONNECTED_AT: i64 = 4_102_444_800_000;

/// What API Gateway puts in the fields lawcket builds URLs and keys from.
#[derive(Clone, Copy)]
enum Shape {
    /// Ids like `L0SM9cOFvHcCIhw=`: base64 characters.
    ConnectionId,
    /// "Stage names can only contain alphanumeric characters, hyphens, and
    /// underscores. Maximum length is 128 characters." (API Gateway's
    /// CreateStage reference): one URL path segment.
    Stage,
    /// A DNS host name (`abc123defg.execute-api.us-east-1.amazonaws.com`, a
    /// custom domain, `localhost`, an IPv4 address): no port, path or user.
    DomainName,
    /// API ids like `abc123defg`: lowercase letters and digits.
    ApiId,
}

impl Shape {
    fn check(self, field: &str, value: &str) -> Result<(), Error> {
        // Every allowed character is ASCII, so the check runs on bytes (it
        // runs on every event); a non-ASCII character fails it either way.
        let (max, allowed, what): (usize, fn(u8) -> bool, &str) = match self {
            Shape::ConnectionId => (
                128,
                |b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'),
                "letters, digits and + / = _ -",
            ),
            Shape::Stage => (
                128,
                |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_',
                "letters, digits, - and _",
            ),
            Shape::DomainName => (
                253,
                |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.',
                "a host name's letters, digits, - and .",
            ),
            Shape::ApiId => (
                32,
                |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
                "lowercase letters and digits",
            ),
        };
        let problem = if value.len() > max && value.chars().count() > max {
            format!("is {} characters long, over {max}", value.chars().count())
        } else if let Some(at) = value.bytes().position(|b| !allowed(b)) {
            // `at` starts a character: every byte before it is ASCII.
            let bad = value[at..].chars().next().unwrap_or_default();
            format!("holds {bad:?}; API Gateway sends only {what}")
        } else if matches!(self, Shape::DomainName)
            && value
                .split('.')
                .any(|label| label.is_empty() || label.len() > 63)
        {
            "is not a host name (an empty or over-long label)".to_owned()
        } else {
            return Ok(());
        };
        Err(Error::MalformedEvent(format!(
            "requestContext.{field} {problem}"
        )))
    }
}

fn missing(field: &str) -> Error {
    Error::MalformedEvent(format!(
        "requestContext.{field} is missing; is this an API Gateway WebSocket event?"
    ))
}
