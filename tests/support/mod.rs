//! Real components the integration tests start: moto's DynamoDB server, a Lambda
//! Runtime API, and a `@connections` endpoint that records posts.
#![allow(dead_code)] // each test binary uses a different part

pub mod connections;
pub mod gateway;
pub mod moto;
pub mod runtime_api;

/// The shared event fixtures (../shared/fixtures), as Lambda delivers them.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
