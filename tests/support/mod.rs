//! Real components the integration tests start: moto's DynamoDB server, a Lambda
//! Runtime API, and a `@connections` endpoint that records posts.
#![allow(dead_code)] // each test binary uses a different part

pub mod connections;
pub mod function;
pub mod gateway;
pub mod logs;
pub mod moto;
pub mod proxy;
pub mod runtime_api;

/// The repository's root: this module is also included by the benchmarks
/// crate, one directory down.
pub fn repo() -> &'static std::path::Path {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.join("tests/support").is_dir() {
        true => manifest,
        false => manifest.parent().unwrap(),
    }
}

/// The repository's event fixtures (tests/fixtures), as Lambda delivers them.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = repo().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// An error and its sources, `outer: inner: innermost`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port` (30 s at most); panics
/// with `log()` if `child` exits first or the time runs out.
pub fn wait_listening(port: u16, child: &mut std::process::Child, log: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the example exited ({status}) before listening on {port}\n{}",
                log()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the example did not listen on {port}\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The example binary, freshly built: `cargo build --example` is a no-op after
/// `cargo test` built the examples, and rebuilds a stale one when a single test
/// target was asked for (cargo releases its build lock while tests run).
pub fn example(name: &str) -> std::path::PathBuf {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let mut built = BUILT.lock().unwrap();
    if built
        .get_or_insert_with(HashSet::new)
        .insert(name.to_owned())
    {
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "lawcket", "--example", name]);
        // Cargo sets these for the test (the package's), not for its own
        // builds: a build script that reruns when one changes (ring's reads
        // CARGO_MANIFEST_DIR and CARGO_PKG_*) would rebuild the dependency
        // tree here, and again at the next `cargo build` in a shell.
        for (var, _) in std::env::vars_os() {
            let name = var.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || name == "CARGO_CRATE_NAME"
                || name == "CARGO_PRIMARY_PACKAGE"
            {
                build.env_remove(&var);
            }
        }
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
    }
    dir.join("examples").join(name)
}
