//! What the pipeline answers API Gateway with.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;

use crate::error::{chain, Error};

/// 200: the event was handled (on `$connect`, the connection is accepted).
pub(super) fn ok() -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
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
