//! The chat example in headless Chromium (Debian's package, driven by
//! playwright-core): two pages exchange a message through the local gateway.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn chat_page_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install Debian's package (`apt-get install chromium`; \
         scripts/test.sh does it when run as root) or set CHROMIUM to its path"
    );
    let driver = root.join("tests/browser/node_modules/playwright-core");
    assert!(
        driver.exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test.sh does it)"
    );

    let port = support::free_port();
    let log = std::env::temp_dir().join(format!("lawcket-chat-{port}.log"));
    let mut gateway = Command::new(support::example("chat"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the chat example did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let screenshot = root.join("target/chat-browser-test.png");
    let output = Command::new("node")
        .arg(root.join("tests/browser/chat.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is needed for the browser test");
    let _ = gateway.kill();
    let _ = gateway.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("browser chat: ok"),
        "browser test failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
