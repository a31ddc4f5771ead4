//! Who sent the event: [`Connection`] and its [`Kind`].

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
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
    /// Fails with [`Error::MalformedEvent`] when a field API Gateway always sends
    /// is missing, naming the field.
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
        let field = |value: &Option<String>, name: &str| match value.as_deref() {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(missing(name)),
        };
        Ok(Connection {
            kind,
            id: field(&context.connection_id, "connectionId")?,
            stage: field(&context.stage, "stage")?,
            domain_name: field(&context.domain_name, "domainName")?,
            route_key: context.route_key.clone().unwrap_or_else(|| match kind {
                Kind::Connect => "$connect".into(),
                Kind::Close => "$disconnect".into(),
                Kind::Message => "$default".into(),
            }),
            api_id: context.apiid.clone(),
            connected_at: context.connected_at,
        })
    }

    /// Connect, close or message.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The API Gateway connection id (`requestContext.connectionId`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The API stage (`requestContext.stage`), e.g. `prod`.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The domain the client connected to (`requestContext.domainName`).
    pub fn domain_name(&self) -> &str {
        &self.domain_name
    }

    /// The route API Gateway selected: `$connect`, `$disconnect`, `$default` or a
    /// custom route key.
    pub fn route_key(&self) -> &str {
        &self.route_key
    }

    /// The API id (`requestContext.apiId`), when API Gateway sent it.
    pub fn api_id(&self) -> Option<&str> {
        self.api_id.as_deref()
    }

    /// When the connection was opened, in milliseconds since the Unix epoch.
    pub fn connected_at(&self) -> i64 {
        self.connected_at
    }
}

fn missing(field: &str) -> Error {
    Error::MalformedEvent(format!(
        "requestContext.{field} is missing; is this an API Gateway WebSocket event?"
    ))
}
