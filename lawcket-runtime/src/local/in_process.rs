//! The gateway's own `@connections` API reached without a socket. A handler's
//! post is built and signed by the SDK as for API Gateway, then handed to the
//! gateway's router in the process: the same checks and answers as over HTTP,
//! and no descriptor, port or connection pool per post however hard handlers
//! publish.

use std::sync::{Arc, OnceLock};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use axum::{http, Router};
use tower::ServiceExt;

/// An SDK HTTP client whose every request goes to the gateway's router, set
/// once the gateway serves. (The router holds the gateway, which holds the
/// pipeline that holds this client: they live as long as the gateway serves,
/// which is as long as the process.)
#[derive(Clone, Debug, Default)]
pub(crate) struct InProcess {
    router: Arc<OnceLock<Router>>,
}

impl InProcess {
    pub(crate) fn serve(&self, router: Router) {
        let _ = self.router.set(router);
    }
}

impl HttpClient for InProcess {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let router = self.router.get().cloned();
        HttpConnectorFuture::new(async move {
            let router = router
                .ok_or_else(|| ConnectorError::io("the local gateway is not serving yet".into()))?;
            let request = to_http(request)?;
            let Ok(response) = router.oneshot(request).await;
            from_http(response).await
        })
    }
}

fn to_http(request: HttpRequest) -> Result<http::Request<axum::body::Body>, ConnectorError> {
    let uri: http::Uri = request
        .uri()
        .parse()
        .map_err(|e: http::uri::InvalidUri| ConnectorError::user(e.into()))?;
    let mut builder = http::Request::builder()
        .method(request.method())
        .uri(uri.clone());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    // An HTTP client sets Host from the URL when the request has none.
    if !request.headers().contains_key("host") {
        if let Some(authority) = uri.authority() {
            builder = builder.header(http::header::HOST, authority.as_str());
        }
    }
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming body cannot be posted in process".into()))?
        .to_vec();
    builder
        .body(axum::body::Body::from(body))
        .map_err(|e| ConnectorError::user(e.into()))
}

async fn from_http(response: axum::response::Response) -> Result<HttpResponse, ConnectorError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ConnectorError::io(e.into()))?;
    let status = parts.status.as_u16().try_into().map_err(
        |e: aws_smithy_runtime_api::http::HttpError| ConnectorError::other(e.into(), None),
    )?;
    let mut response = HttpResponse::new(status, SdkBody::from(bytes));
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            response
                .headers_mut()
                .append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(response)
}
