//! What keeps a web page from using the gateway. It runs on a developer's
//! machine, where any page their browser opens can reach 127.0.0.1: a page of
//! another origin must not open a WebSocket (it could read a channel), post
//! through `@connections`, or reach the gateway under a rebound DNS name.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

/// Whether `host` (a `Host` header) names this gateway: `localhost` or a
/// `*.localhost` name, a loopback address, or the address it listens on. A
/// DNS-rebinding page reaches 127.0.0.1 under its own name, which fails here;
/// an address cannot be rebound, so when the gateway listens on every
/// interface (`0.0.0.0`) any address is its own.
pub(crate) fn host_allowed(host: Option<&str>, bound: SocketAddr) -> bool {
    let Some(name) = host.and_then(host_name) else {
        return false;
    };
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == bound.ip() || bound.ip().is_unspecified(),
        Err(_) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// The name or address in a `Host` value, without port or brackets.
pub(crate) fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return (after.is_empty() || is_port(after.strip_prefix(':')?)).then_some(ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => Some(name),
        Some(_) => None,
        None => Some(host),
    }
    .filter(|name| !name.is_empty())
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a WebSocket handshake may proceed. Browsers always send `Origin`
/// on one (RFC 6455, 4.1); the gateway's own page has `http://{Host}`, and
/// `allowed` lists the others (`LAWCKET_LOCAL_ORIGINS`). A client that is no
/// browser sends none and is let through, as API Gateway lets it.
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("http://{host}"));
    let matches = |candidate: &str| candidate.eq_ignore_ascii_case(origin);
    if own.as_deref().is_some_and(matches) || allowed.iter().any(|a| matches(a)) {
        Ok(())
    } else {
        Err(origin.to_owned())
    }
}

/// Why the management API refused a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    /// A browser sent it (a page's `fetch`, a form): never the SDK or curl.
    BrowserOrigin,
    /// No SigV4 `Authorization` header.
    Unsigned,
}

/// The management API takes signed requests only, as API Gateway does (its
/// `@connections` API uses IAM authorization). The SDK and
/// `curl --aws-sigv4` sign; a web page cannot without CORS, which the
/// gateway never grants. Any credentials are accepted: the gateway has no
/// account to check them against, and the signature keeps browsers out.
pub(crate) fn management_allowed(headers: &HeaderMap) -> Result<(), Unauthorized> {
    if headers.contains_key(header::ORIGIN) {
        return Err(Unauthorized::BrowserOrigin);
    }
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if signed {
        Ok(())
    } else {
        Err(Unauthorized::Unsigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let loopback: SocketAddr = "127.0.0.1:3001".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:3001".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:3001".parse().unwrap();
        for ok in [
            "localhost",
            "localhost:3001",
            "LOCALHOST:1",
            "app.localhost:3001",
            "127.0.0.1:3001",
            "127.0.0.2",
            "[::1]:3001",
            "[::1]",
        ] {
            assert!(host_allowed(Some(ok), loopback), "{ok}");
        }
        for refused in [
            "rebind.test:3001",
            "evil.com",
            "localhost.evil.com",
            "192.168.1.5:3001",
            "",
            ":3001",
            "[::1",
            "[::1]x",
            "localhost:port",
        ] {
            assert!(!host_allowed(Some(refused), loopback), "{refused}");
        }
        assert!(!host_allowed(None, loopback));
        assert!(host_allowed(Some("192.168.1.5:3001"), lan));
        assert!(host_allowed(Some("10.0.0.7:3001"), any));
        assert!(!host_allowed(Some("rebind.test:3001"), any));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn origins() {
        let allowed = vec!["http://localhost:5173".to_owned()];
        let host = ("host", "127.0.0.1:3001");
        assert!(origin_allowed(&headers(&[host]), &allowed).is_ok());
        assert!(origin_allowed(
            &headers(&[host, ("origin", "http://127.0.0.1:3001")]),
            &allowed
        )
        .is_ok());
        assert!(origin_allowed(
            &headers(&[host, ("origin", "http://localhost:5173/")]),
            &allowed
        )
        .is_ok());
        for refused in [
            "http://127.0.0.1:3002",
            "https://127.0.0.1:3001",
            "null",
            "http://evil.com",
        ] {
            assert_eq!(
                origin_allowed(&headers(&[host, ("origin", refused)]), &allowed),
                Err(refused.to_owned())
            );
        }
    }

    #[test]
    fn management() {
        let signed = ("authorization", "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0");
        assert_eq!(management_allowed(&headers(&[signed])), Ok(()));
        assert_eq!(
            management_allowed(&headers(&[])),
            Err(Unauthorized::Unsigned)
        );
        assert_eq!(
            management_allowed(&headers(&[("authorization", "Bearer x")])),
            Err(Unauthorized::Unsigned)
        );
        assert_eq!(
            management_allowed(&headers(&[signed, ("origin", "http://127.0.0.1:3001")])),
            Err(Unauthorized::BrowserOrigin)
        );
    }
}
