//! Which management API (`@connections`) endpoint reaches a connection.

use crate::connection::Connection;
use crate::error::Error;

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
///
/// The event's fields were checked when the [`Connection`] was read (a host
/// name, an API id, one path segment); the region is checked here, so no URL
/// is built from anything else.
pub(crate) fn management_endpoint(
    connection: &Connection,
    override_endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<String, Error> {
    if let Some(endpoint) = override_endpoint {
        return Ok(endpoint.trim_end_matches('/').to_owned());
    }
    let domain = connection.domain_name();
    let stage = connection.stage();
    let execute_api = domain.contains(".execute-api.") && domain.ends_with(".amazonaws.com");
    Ok(match (execute_api, connection.api_id(), region) {
        (false, Some(api_id), Some(region)) => {
            let valid = !region.is_empty()
                && region.len() <= 32
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(Error::Env {
                    var: "AWS_REGION".into(),
                    problem: format!("{region:?} is not a region name like us-east-1"),
                });
            }
            format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}")
        }
        _ => format!("https://{domain}/{stage}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(domain: &str) -> Connection {
        let mut request: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
            serde_json::from_str(include_str!("../../tests/fixtures/message-json.json")).unwrap();
        request.request_context.domain_name = Some(domain.into());
        Connection::from_request(&request).unwrap()
    }

    #[test]
    fn endpoints_are_built_from_checked_parts_only() {
        let custom = connection("ws.example.com");
        assert_eq!(
            management_endpoint(&custom, None, Some("eu-west-1")).unwrap(),
            "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"
        );
        for region in ["evil.com#", "us-east-1/x", "", "US-EAST-1"] {
            let err = management_endpoint(&custom, None, Some(region)).unwrap_err();
            assert!(matches!(err, Error::Env { .. }), "{region}: {err}");
        }
        let execute_api = connection("abc123defg.execute-api.us-east-1.amazonaws.com");
        assert_eq!(
            management_endpoint(&execute_api, None, Some("bad region")).unwrap(),
            "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(
            management_endpoint(&custom, Some("http://127.0.0.1:3001/"), None).unwrap(),
            "http://127.0.0.1:3001"
        );
    }
}
