//! Subprotocol negotiation on `$connect`: the first protocol the client
//! offered that the handler supports.
//!
//! API Gateway passes the client's `Sec-WebSocket-Protocol` header to the
//! `$connect` integration and returns the header to the client only if the
//! integration's response sets it ("Working with WebSocket subprotocols", API
//! Gateway Developer Guide, whose example answers 400 when its protocol is not
//! offered). A browser that offered protocols fails the connection when the
//! answer names none of them, so refusing at `$connect` keeps such a
//! connection from being stored at all.

use aws_lambda_events::http::HeaderMap;

use crate::error::Error;
use crate::reply::SEC_WEBSOCKET_PROTOCOL;

/// What the client offered, in its order: the header may be repeated and
/// each holds a comma-separated list (RFC 6455 section 4.1).
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The protocol to answer with: `None` when the handler declares none or the
/// client offered none (a connection without a subprotocol); a refusal (400)
/// when the client offered only protocols the handler does not support.
pub(crate) fn choose<'a>(
    supported: &'a [String],
    headers: &HeaderMap,
) -> Result<Option<&'a str>, Error> {
    if supported.is_empty() {
        return Ok(None);
    }
    let mut any = false;
    for protocol in offered(headers) {
        any = true;
        if let Some(ours) = supported.iter().find(|s| *s == protocol) {
            return Ok(Some(ours));
        }
    }
    if !any {
        return Ok(None);
    }
    let offered: Vec<&str> = offered(headers).collect();
    Err(Error::reject(
        400,
        format!(
            "the client offered subprotocols {} and this handler supports {}",
            offered.join(", "),
            supported.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(SEC_WEBSOCKET_PROTOCOL, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_clients_first_supported_protocol_wins() {
        let ours = vec!["graphql-ws".to_owned(), "graphql-transport-ws".to_owned()];
        let pick = |h: &[&str]| choose(&ours, &headers(h)).map_err(|e| e.status());
        assert_eq!(
            pick(&["graphql-transport-ws, graphql-ws"]),
            Ok(Some("graphql-transport-ws"))
        );
        assert_eq!(pick(&["x", "graphql-ws"]), Ok(Some("graphql-ws")));
        assert_eq!(pick(&[]), Ok(None));
        assert_eq!(pick(&["v12.stomp, mqtt"]), Err(400));
        assert_eq!(choose(&[], &headers(&["x"])).unwrap(), None);
    }
}
