//! The incoming event and its decoded body.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use base64::Engine;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::limits::{MAX_MESSAGE_BYTES, MAX_URL_CHARS};

/// A message body, decoded the way the npm original does: base64 first when
/// `isBase64Encoded`, then JSON when it parses as JSON, text when it is UTF-8,
/// bytes otherwise.
///
/// It serialises as what it holds (`null`, the JSON value, the string, or an
/// array of bytes), so it can be echoed inside a JSON answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Body {
    /// No body (connect and disconnect events).
    Empty,
    /// The body parsed as JSON.
    Json(serde_json::Value),
    /// UTF-8 text that is not JSON.
    Text(String),
    /// Bytes that are not UTF-8.
    Binary(Vec<u8>),
}

/// The event the handler is serving: the original API Gateway request plus its
/// decoded [`Body`]. Cloning is cheap.
///
/// ```
/// # fn demo(event: lawcket::Event) -> Result<(), lawcket::Error> {
/// #[derive(serde::Deserialize)]
/// struct Chat { action: String, data: String }
///
/// let chat: Chat = event.json()?;
/// let channel = event.query("channel"); // on $connect
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Event(Arc<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    request: ApiGatewayWebsocketProxyRequest,
    body: Body,
}

impl Event {
    /// Decodes the body of `request`.
    ///
    /// Fails on a body marked `isBase64Encoded` that is not base64, and on a body
    /// over [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    pub fn from_request(mut request: ApiGatewayWebsocketProxyRequest) -> Result<Self, Error> {
        check_query(&request)?;
        let body = decode(request.body.take(), request.is_base64_encoded)?;
        Ok(Event(Arc::new(Inner { request, body })))
    }

    /// The request exactly as API Gateway sent it, without the body (which is in
    /// [`Event::body`]).
    pub fn request(&self) -> &ApiGatewayWebsocketProxyRequest {
        &self.0.request
    }

    /// The decoded body.
    pub fn body(&self) -> &Body {
        &self.0.body
    }

    /// Replaces the body (middleware may rewrite a message before the handler sees it).
    pub fn set_body(&mut self, body: Body) {
        Arc::make_mut(&mut self.0).body = body;
    }

    /// Mutable access to the request (middleware may add headers, for example).
    pub fn request_mut(&mut self) -> &mut ApiGatewayWebsocketProxyRequest {
        &mut Arc::make_mut(&mut self.0).request
    }

    /// Deserialises the body into `T`.
    ///
    /// A JSON body is read directly; a text or binary body is parsed as JSON
    /// first. The error names `T` and says what did not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let target = std::any::type_name::<T>();
        let result = match &self.0.body {
            Body::Json(value) => T::deserialize(value),
            Body::Text(text) => serde_json::from_str(text),
            Body::Binary(bytes) => serde_json::from_slice(bytes),
            Body::Empty => serde_json::from_str(""),
        };
        result.map_err(|source| Error::Body { target, source })
    }

    /// The body as text: JSON re-serialised, text as it is; `None` for binary or
    /// empty bodies.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match &self.0.body {
            Body::Json(value) => Some(value.to_string().into()),
            Body::Text(text) => Some(text.as_str().into()),
            _ => None,
        }
    }

    /// A query-string parameter of the `$connect` request.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.0.request.query_string_parameters.first(name)
    }

    /// A header of the `$connect` request (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.request.headers.get(name)?.to_str().ok()
    }
}

/// A query string longer than API Gateway's URL limit cannot have come from
/// it ("Length, in characters, of the URL for a WebSocket API: 4096", API
/// Gateway quotas): refuse it before anything reads it.
fn check_query(request: &ApiGatewayWebsocketProxyRequest) -> Result<(), Error> {
    for map in [
        &request.query_string_parameters,
        &request.multi_value_query_string_parameters,
    ] {
        let (count, length) = map.iter().fold((0, 0), |(n, len), (k, v)| {
            (n + 1, len + k.len() + v.len() + 2)
        });
        if length > MAX_URL_CHARS {
            return Err(Error::MalformedEvent(format!(
                "the query string has {count} parameters in about {length} characters, over \
                 API Gateway's {MAX_URL_CHARS}-character URL limit"
            )));
        }
    }
    Ok(())
}

fn decode(body: Option<String>, is_base64: bool) -> Result<Body, Error> {
    let Some(body) = body else {
        return Ok(Body::Empty);
    };
    let bytes = if is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(Error::Base64)?
    } else {
        body.into_bytes()
    };
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    if bytes.is_empty() {
        return Ok(Body::Empty);
    }
    if let Ok(value) = serde_json::from_slice(&bytes) {
        return Ok(Body::Json(value));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Body::Text(text)),
        Err(not_utf8) => Ok(Body::Binary(not_utf8.into_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(raw: &str, b64: bool) -> Result<Body, Error> {
        decode(Some(raw.to_owned()), b64)
    }

    #[test]
    fn json_text_and_binary_bodies() {
        assert_eq!(
            body(r#"{"a":1}"#, false).unwrap(),
            Body::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(body("hello", false).unwrap(), Body::Text("hello".into()));
        assert_eq!(body("/wA=", true).unwrap(), Body::Binary(vec![0xff, 0]));
        assert_eq!(
            body("eyJhIjoxfQ==", true).unwrap(),
            Body::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(decode(None, false).unwrap(), Body::Empty);
        assert_eq!(body("", false).unwrap(), Body::Empty);
    }

    #[test]
    fn bad_base64_is_a_typed_error() {
        let err = body("not base64!", true).unwrap_err();
        assert!(matches!(err, Error::Base64(_)), "{err}");
        assert!(err.to_string().contains("isBase64Encoded"), "{err}");
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let err = body(&big, false).unwrap_err();
        assert!(matches!(err, Error::TooLarge { size, .. } if size == MAX_MESSAGE_BYTES + 1));
        assert!(body(&"x".repeat(MAX_MESSAGE_BYTES), false).is_ok());
    }
}
