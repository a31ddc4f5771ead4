//! What the pipeline answers API Gateway with.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderMap;

use crate::error::{chain, Error};
use crate::reply::{Reply, ReplyBody};

/// 200: the event was handled (`$disconnect`).
pub(super) fn ok() -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response
}

/// 200 with the handler's reply as the body, which API Gateway sends to the
/// client when the route has a route response. A binary body goes base64
/// encoded with `isBase64Encoded`, as Lambda proxy responses carry binary.
pub(super) fn reply(reply: Reply) -> ApiGatewayProxyResponse {
    let mut response = ok();
    match reply.body {
        Some(ReplyBody::Text(text)) => response.body = Some(Body::Text(text)),
        Some(ReplyBody::Binary(bytes)) => {
            response.body = Some(Body::Binary(bytes));
            response.is_base64_encoded = true;
        }
        None => {}
    }
    response
}

/// 200 accepting a `$connect`, with the headers of the handler's reply (the
/// subprotocol).
pub(super) fn accept(headers: HeaderMap) -> ApiGatewayProxyResponse {
    let mut response = ok();
    response.headers = headers;
    response
}

/// A `$connect` answer that refuses the handshake with the error's status.
///
/// The body is the status's generic reason only ("Unauthorized"): API Gateway
/// gives the client the status alone, and the error's text can name tables,
/// endpoints and request ids. The error goes to the log, at error level, in
/// the invocation's span (connection and request id).
pub(super) fn refuse(error: Error) -> ApiGatewayProxyResponse {
    let status = error.status();
    tracing::error!(error = %chain(&error), status, "connection refused");
    let reason = aws_lambda_events::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = Some(Body::Text(reason.to_owned()));
    response
}
