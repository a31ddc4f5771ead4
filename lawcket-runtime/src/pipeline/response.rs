//! What the pipeline answers API Gateway with.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;

use crate::error::Error;

/// 200: the event was handled (on `$connect`, the connection is accepted).
pub(super) fn ok() -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response
}

/// A `$connect` answer that refuses the handshake with the error's status; the
/// error is logged.
pub(super) fn refuse(error: Error) -> ApiGatewayProxyResponse {
    let status = error.status();
    if status >= 500 {
        tracing::error!(%error, "connection refused");
    } else {
        tracing::info!(%error, "connection refused");
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = Some(Body::Text(error.to_string()));
    response
}
