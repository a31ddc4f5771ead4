//! What a handler answers: a reply for the client that sent the message
//! (API Gateway's route response), and the `$connect` response's headers.

use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::error::Error;

/// A handler's answer to the event it served.
///
/// For a message, the body is the integration response API Gateway sends
/// back to the sender when the route has a route response ("Set up a route
/// response for a WebSocket API", API Gateway Developer Guide); deploy/ gives
/// `$default` one. For `$connect`, the headers go into the handshake
/// response (above all `Sec-WebSocket-Protocol`) and a body is dropped: the
/// client never sees it. `$disconnect` has no one to answer.
///
/// ```
/// use lawcket::Reply;
///
/// let ack = Reply::json(&serde_json::json!({ "type": "ack" }))?;
/// let handshake = Reply::empty().protocol("graphql-transport-ws");
/// # Ok::<(), lawcket::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub(crate) body: Option<ReplyBody>,
    pub(crate) headers: Vec<(String, String)>,
}

/// A reply's body as it goes to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyBody {
    /// A text frame.
    Text(String),
    /// A binary frame (base64 in the Lambda response, `isBase64Encoded`).
    Binary(Vec<u8>),
}

impl Reply {
    /// No body and no headers: the same as returning `()`.
    pub fn empty() -> Self {
        Reply::default()
    }

    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Reply {
            body: Some(ReplyBody::Text(text.into())),
            headers: Vec::new(),
        }
    }

    /// A JSON reply, serialised now.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_string(value)
            .map(Reply::text)
            .map_err(Error::Serialize)
    }

    /// A binary reply.
    pub fn binary(bytes: impl Into<Vec<u8>>) -> Self {
        Reply {
            body: Some(ReplyBody::Binary(bytes.into())),
            headers: Vec::new(),
        }
    }

    /// Sets a header of the `$connect` response, replacing one of the same
    /// name. A name or value HTTP does not allow refuses the connection (500)
    /// with an error naming it, as a failing handler would.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// The body as it goes to the client, if any.
    pub fn body(&self) -> Option<&[u8]> {
        match self.body.as_ref()? {
            ReplyBody::Text(text) => Some(text.as_bytes()),
            ReplyBody::Binary(bytes) => Some(bytes),
        }
    }

    /// The headers set for the `$connect` response.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Picks the subprotocol of the `$connect` response
    /// (`Sec-WebSocket-Protocol`); it wins over the one `subprotocols = [..]`
    /// chose. A browser fails the connection unless it is one it offered.
    pub fn protocol(self, protocol: impl Into<String>) -> Self {
        self.header(SEC_WEBSOCKET_PROTOCOL, protocol)
    }
}

impl Reply {
    /// Whether a header of this name is set.
    pub(crate) fn sets(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The headers as HTTP types, or the first one HTTP does not allow.
    pub(crate) fn http_headers(&self) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let parsed = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            );
            let (Ok(name), Ok(value)) = parsed else {
                return Err(Error::Config(format!(
                    "the handler's `$connect` reply sets the header {name:?}: {value:?}, which HTTP does not allow"
                )));
            };
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

pub(crate) const SEC_WEBSOCKET_PROTOCOL: &str = "Sec-WebSocket-Protocol";

/// What a handler may return as its reply (or inside `Ok`): `()` (none),
/// [`Reply`], `String`, `&'static str`, `serde_json::Value`, `Vec<u8>`
/// (binary), or an `Option` of one of these.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a lawcket reply",
    label = "not a reply",
    note = "a reply is `()`, `lawcket::Reply`, `String`, `&'static str`, `serde_json::Value`, `Vec<u8>` or an `Option` of one; for any `Serialize` type use `lawcket::Reply::json(&value)?`"
)]
pub trait IntoReply {
    /// The reply as the pipeline sends it.
    fn into_reply(self) -> Reply;
}

impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::empty()
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for String {
    fn into_reply(self) -> Reply {
        Reply::text(self)
    }
}

impl IntoReply for &'static str {
    fn into_reply(self) -> Reply {
        Reply::text(self)
    }
}

impl IntoReply for serde_json::Value {
    fn into_reply(self) -> Reply {
        Reply::text(self.to_string())
    }
}

impl IntoReply for Vec<u8> {
    fn into_reply(self) -> Reply {
        Reply::binary(self)
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Reply {
        self.map_or_else(Reply::empty, IntoReply::into_reply)
    }
}
