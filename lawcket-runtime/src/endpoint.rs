//! Which management API (`@connections`) endpoint reaches a connection.

use crate::connection::Connection;

/// Environment variable that, when set, is the management endpoint for every
/// post (e.g. `http://127.0.0.1:3001` for a local gateway). It wins over
/// everything else.
pub const ENDPOINT_ENV: &str = "LAWCKET_MANAGEMENT_ENDPOINT";

/// The endpoint set in [`ENDPOINT_ENV`], if any: the one place it is read.
pub(crate) fn override_from_env() -> Option<String> {
    crate::env::var(ENDPOINT_ENV)
}

/// The management endpoint for a connection:
/// - `override_endpoint` when given (from [`ENDPOINT_ENV`] or the local gateway);
/// - `https://{domainName}/{stage}` for an `execute-api` domain;
/// - for a custom domain, `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`
///   (a custom domain's base path mapping may not lead to `@connections`), when the
///   event carries `apiId` and the region is known;
/// - `https://{domainName}/{stage}` otherwise.
pub(crate) fn management_endpoint(
    connection: &Connection,
    override_endpoint: Option<&str>,
    region: Option<&str>,
) -> String {
    if let Some(endpoint) = override_endpoint {
        return endpoint.trim_end_matches('/').to_owned();
    }
    let domain = connection.domain_name();
    let stage = connection.stage();
    let execute_api = domain.contains(".execute-api.") && domain.ends_with(".amazonaws.com");
    match (execute_api, connection.api_id(), region) {
        (false, Some(api_id), Some(region)) => {
            format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}")
        }
        _ => format!("https://{domain}/{stage}"),
    }
}
