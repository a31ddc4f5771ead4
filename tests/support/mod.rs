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

/// The example binary, built by `cargo test` (or built here when a single test
/// target was asked for).
pub fn example(name: &str) -> std::path::PathBuf {
    use std::process::Command;
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
    }
    path
}
