//! Events shaped exactly as API Gateway sends them to the integration.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;

use super::formats::{random_id, request_time};
use crate::authorizer::AuthorizerRequest;
use crate::clock::now_ms;

/// What the gateway knows of a connection from its handshake.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) connection_id: String,
    pub(crate) connected_at: i64,
    pub(crate) source_ip: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) domain_name: String,
    pub(crate) stage: String,
    /// `requestContext.authorizer` of every event, once the authorizer allowed.
    pub(crate) authorizer: Option<Arc<HashMap<String, serde_json::Value>>>,
}

pub(crate) const API_ID: &str = "local";

fn context(
    peer: &Peer,
    route_key: &str,
    event_type: &str,
) -> ApiGatewayWebsocketProxyRequestContext {
    let now = now_ms();
    let request_id = random_id();
    let mut context = ApiGatewayWebsocketProxyRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.event_type = Some(event_type.to_owned());
    context.extended_request_id = Some(request_id.clone());
    context.request_id = Some(request_id);
    context.request_time = Some(request_time(now));
    context.request_time_epoch = now;
    context.message_direction = Some("IN".into());
    context.stage = Some(peer.stage.clone());
    context.connected_at = peer.connected_at;
    context.identity.source_ip = Some(peer.source_ip.clone());
    context.identity.user_agent = peer.user_agent.clone();
    context.domain_name = Some(peer.domain_name.clone());
    context.connection_id = Some(peer.connection_id.clone());
    context.apiid = Some(API_ID.into());
    if let Some(fields) = &peer.authorizer {
        context.authorizer.fields = HashMap::clone(fields);
    }
    context
}

/// A REQUEST authorizer's input: the `$connect` request with the ARN of the
/// route (in API Gateway's form, with this gateway's names).
pub(crate) fn authorizer(
    peer: &Peer,
    headers: &HeaderMap,
    query: Option<&str>,
) -> AuthorizerRequest {
    let method_arn = format!(
        "arn:aws:execute-api:local:000000000000:{API_ID}/{}/$connect",
        peer.stage
    );
    AuthorizerRequest {
        method_arn,
        request: connect(peer, headers, query),
    }
}

pub(crate) fn connect(
    peer: &Peer,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut request = ApiGatewayWebsocketProxyRequest::default();
    request.request_context = context(peer, "$connect", "CONNECT");
    request.headers = headers.clone();
    request.multi_value_headers = headers.clone();
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        params
            .entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    // queryStringParameters keeps the last value, as API Gateway does.
    let single: HashMap<String, String> = params
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.last()?.clone())))
        .collect();
    request.query_string_parameters = QueryMap::from(single);
    request.multi_value_query_string_parameters = QueryMap::from(params);
    request.is_base64_encoded = false;
    request
}

/// A message event. Text goes as it is; binary as base64 with `isBase64Encoded`.
pub(crate) fn message(peer: &Peer, route_key: &str, data: Data) -> ApiGatewayWebsocketProxyRequest {
    let mut request = ApiGatewayWebsocketProxyRequest::default();
    request.request_context = context(peer, route_key, "MESSAGE");
    request.request_context.message_id = Some(random_id());
    match data {
        Data::Text(text) => {
            request.body = Some(text);
            request.is_base64_encoded = false;
        }
        Data::Binary(bytes) => {
            request.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
            request.is_base64_encoded = true;
        }
    }
    request
}

pub(crate) fn disconnect(peer: &Peer, code: u16, reason: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut request = ApiGatewayWebsocketProxyRequest::default();
    request.request_context = context(peer, "$disconnect", "DISCONNECT");
    request.request_context.disconnect_status_code = Some(i64::from(code));
    request.request_context.disconnect_reason = Some(reason.to_owned());
    request
}

pub(crate) enum Data {
    Text(String),
    Binary(Vec<u8>),
}

/// API Gateway's answer to a client whose message the integration failed
/// (`Internal server error`) or did not answer in time (`Endpoint request
/// timed out`).
pub(crate) fn gateway_error(message: &str, connection_id: &str) -> Vec<u8> {
    serde_json::json!({
        "message": message,
        "connectionId": connection_id,
        "requestId": random_id(),
    })
    .to_string()
    .into_bytes()
}

/// The route key for a message: the value at the selection path in a JSON text
/// body, when it names a route; `$default` otherwise.
pub(crate) fn route_key(data: &Data, path: &[String], routes: Option<&[String]>) -> String {
    let Data::Text(text) = data else {
        return "$default".into();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "$default".into();
    };
    let selected = path.iter().try_fold(&value, |v, key| v.get(key));
    let key = match selected {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
        _ => return "$default".into(),
    };
    match routes {
        None => key,
        Some(routes) if routes.contains(&key) => key,
        Some(_) => "$default".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_selection() {
        let path = vec!["action".to_owned()];
        let text = |s: &str| Data::Text(s.to_owned());
        let join = vec!["join".to_owned()];
        assert_eq!(
            route_key(&text(r#"{"action":"join"}"#), &path, Some(&join)),
            "join"
        );
        assert_eq!(
            route_key(&text(r#"{"action":"other"}"#), &path, Some(&join)),
            "$default"
        );
        assert_eq!(
            route_key(&text(r#"{"action":"other"}"#), &path, None),
            "other"
        );
        assert_eq!(route_key(&text("not json"), &path, None), "$default");
        assert_eq!(route_key(&Data::Binary(vec![1]), &path, None), "$default");
        let nested = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(route_key(&text(r#"{"a":{"b":"x"}}"#), &nested, None), "x");
    }

    #[test]
    fn events_deserialise_like_the_fixtures() {
        let peer = Peer {
            connection_id: "abc=".into(),
            connected_at: 1,
            source_ip: "127.0.0.1".into(),
            user_agent: Some("test".into()),
            domain_name: "localhost".into(),
            stage: "local".into(),
            authorizer: None,
        };
        // Round-trip through JSON: what a Lambda would receive must parse.
        for request in [
            connect(&peer, &HeaderMap::new(), Some("channel=%23general&x=1&x=2")),
            message(&peer, "$default", Data::Binary(vec![0, 1])),
            disconnect(&peer, 1001, "Going away"),
        ] {
            let json = serde_json::to_value(&request).unwrap();
            let back: ApiGatewayWebsocketProxyRequest = serde_json::from_value(json).unwrap();
            assert_eq!(back.request_context.connection_id.as_deref(), Some("abc="));
        }
        let c = connect(&peer, &HeaderMap::new(), Some("channel=%23general&x=1&x=2"));
        assert_eq!(c.query_string_parameters.first("channel"), Some("#general"));
        assert_eq!(c.query_string_parameters.first("x"), Some("2"));
        assert_eq!(
            c.multi_value_query_string_parameters.all("x"),
            Some(vec!["1", "2"])
        );
    }
}
