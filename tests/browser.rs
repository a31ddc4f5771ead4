//! The chat example in headless Chromium (Debian's package, driven by
//! playwright-core): two pages exchange a message through the local gateway;
//! and pages of other origins cannot use the gateway a developer runs.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn chat_page_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = chromium();
    let port = support::free_port();
    let chat = Chat::start(port, &[]);

    let screenshot = root.join("target/chat-browser-test.png");
    let output = Command::new("node")
        .arg(root.join("tests/browser/chat.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is needed for the browser test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("browser chat: ok"),
        "browser test failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        chat.log()
    );
}

/// A developer runs the chat example while browsing: pages of other origins
/// (another port on 127.0.0.1; a DNS-rebinding name) must neither open a
/// WebSocket to it nor post to a connection through its `@connections` API,
/// while the gateway's own page and an allowlisted origin still connect.
#[tokio::test]
async fn cross_origin_pages_cannot_use_the_local_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = chromium();
    let attacker_port = attacker_site();
    let port = support::free_port();
    // An allowlisted origin on the attacker's server under another name: it
    // connects while the same server as http://127.0.0.1:PORT stays refused, so
    // the allowlist matches whole origins.
    let allowed = format!("http://friend.test:{attacker_port}");
    let chat = Chat::start(port, &[("LAWCKET_LOCAL_ORIGINS", &allowed)]);

    // The victim: a client without Origin (allowed) in #general, as the chat
    // page's own socket would be. Its own message tells its connection id.
    let (victim, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .unwrap_or_else(|e| panic!("the victim could not connect: {e}\n{}", chat.log()));
    let (mut victim_tx, mut victim_rx) = victim.split();
    let say = |text: &str| {
        Message::text(json!({ "action": "send", "channel": "#general", "text": text }).to_string())
    };
    victim_tx.send(say("victim: hello")).await.unwrap();
    let victim_id = loop {
        let message = tokio::time::timeout(Duration::from_secs(5), victim_rx.next())
            .await
            .unwrap_or_else(|_| panic!("the victim got no echo in 5 s\n{}", chat.log()))
            .expect("the victim's stream ended")
            .expect("the victim's websocket failed");
        if let Message::Text(text) = message {
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["text"] == "victim: hello" {
                break message["from"].as_str().unwrap().to_owned();
            }
        }
    };
    // Everything the victim gets from now on, and how its socket ends if it does.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(message) = victim_rx.next().await {
                let entry = match message {
                    Ok(Message::Text(text)) => text.as_str().to_owned(),
                    Ok(Message::Binary(bytes)) => format!("(binary {bytes:?})"),
                    Ok(Message::Close(frame)) => format!("(closed: {frame:?})"),
                    Ok(_) => continue,
                    Err(error) => format!("(error: {error})"),
                };
                received.lock().unwrap().push(entry);
            }
            received.lock().unwrap().push("(stream ended)".into());
        })
    };

    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg(root.join("tests/browser/cross_origin.mjs"))
            .arg(port.to_string())
            .arg(attacker_port.to_string())
            .arg(&victim_id)
            .env("CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser script ran over 2 minutes")
    .expect("node is needed for the browser test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("cross-origin: "))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(Value::Null);
    // What else node said (its errors); the report line is shown parsed.
    let node_output: String = stdout
        .lines()
        .filter(|line| report.is_null() || !line.starts_with("cross-origin: "))
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        + &String::from_utf8_lossy(&output.stderr);

    // The script has waited for every request's answer, so an injection would
    // already be queued ahead of anything the victim says now: its own message
    // coming back shows it is still connected and that the queue has drained.
    // The grace covers the WebSocket attempts, whose publish runs concurrently.
    let grace = tokio::time::Instant::now() + Duration::from_secs(2);
    let sent_again = victim_tx.send(say("victim: still here")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut still_connected = false;
    while tokio::time::Instant::now() < deadline && sent_again.is_ok() {
        let seen = received.lock().unwrap().clone();
        if seen.iter().any(|m| m.contains("victim: still here")) {
            still_connected = true;
            break;
        }
        if seen.iter().any(|m| m.starts_with('(')) {
            break; // the reader's own entries: closed, failed or ended
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep_until(grace).await;
    reader.abort();
    let received = received.lock().unwrap().clone();

    let mut problems = Vec::new();
    if report.is_null() {
        problems.push("the browser script reported nothing (see its output)".to_owned());
    }
    // Positive controls: without them "nothing opened" could be a broken setup.
    for (page, what) in [
        ("ownPage", "the gateway's own page"),
        ("ownPageLocalhost", "the gateway's own page as localhost"),
    ] {
        if report[page]["state"] != "open" {
            problems.push(format!("{what} did not connect: {}", report[page]));
        }
    }
    if report["allowedOrigin"]["opened"] != true {
        problems.push(format!(
            "the allowlisted origin {allowed} did not connect: {}",
            report["allowedOrigin"]
        ));
    }
    if report["rebindingNavigation"]["status"] != 403 {
        problems.push(format!(
            "the DNS-rebinding name got the gateway's page instead of 403: {}",
            report["rebindingNavigation"]
        ));
    }
    for (attempt, whose) in [
        ("crossOrigin", "a cross-origin page's"),
        ("rebindingPage", "a DNS-rebinding page's"),
    ] {
        let socket = &report[attempt]["socket"];
        if socket["opened"] != false {
            problems.push(format!("{whose} WebSocket was not refused: {socket}"));
        } else if !refused_with_403(&report, socket["url"].as_str().unwrap_or("?")) {
            problems.push(format!(
                "{whose} WebSocket did not open, but Chromium's console shows no 403 from the gateway \
                 (did the browser block it instead?): {socket}"
            ));
        }
    }
    for request in ["post", "get"] {
        if report["rebindingPage"][request]["status"] != 403 {
            problems.push(format!(
                "a DNS-rebinding page's same-origin @connections request was not refused with 403: {}",
                report["rebindingPage"][request]
            ));
        }
    }
    for message in received.iter().filter(|m| m.contains("injected")) {
        problems.push(format!("the victim received {message}"));
    }
    if !still_connected {
        problems.push(format!(
            "the victim is no longer connected or its own message did not come back (send: {sent_again:?})"
        ));
    }
    assert!(
        problems.is_empty(),
        "other origins could use the local gateway, or the controls failed:\n  - {}\n\
         --- browser report ---\n{}\n--- victim {victim_id} received ---\n{}\n\
         --- node output ---\n{node_output}\n--- gateway log ---\n{}",
        problems.join("\n  - "),
        serde_json::to_string_pretty(&report).unwrap(),
        received.join("\n"),
        chat.log()
    );
}

/// Whether Chromium logged the gateway's 403 to the WebSocket handshake to
/// `url`. A page sees only close code 1006, whoever stopped the socket; a socket
/// the browser itself blocked must not count as one the gateway refused.
fn refused_with_403(report: &Value, url: &str) -> bool {
    let quoted = format!("'{url}'");
    report["console"].as_array().is_some_and(|lines| {
        lines
            .iter()
            .filter_map(Value::as_str)
            .any(|line| line.contains(&quoted) && line.contains("Unexpected response code: 403"))
    })
}

/// Chromium's path (`CHROMIUM` or Debian's), or a failure saying how to install
/// it and playwright-core.
fn chromium() -> String {
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
    chromium
}

/// The chat example serving on 127.0.0.1:`port`, its output in a log file;
/// killed when dropped, so a failing test leaves no gateway behind.
struct Chat {
    child: Child,
    log: PathBuf,
}

impl Chat {
    fn start(port: u16, env: &[(&str, &str)]) -> Chat {
        let log = std::env::temp_dir().join(format!("lawcket-chat-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(support::example("chat"))
            // Only what the test sets: a developer's LAWCKET_LOCAL_ORIGINS
            // must not change what the test sees.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1") // a readable log in failure messages
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let mut chat = Chat { child, log };
        let log = chat.log.clone();
        support::wait_listening(port, &mut chat.child, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        chat
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Another origin: a web server on another port of 127.0.0.1 answering any GET
/// with a plain page, in which the browser script runs its attempts (as the
/// page's own script would). Answers its port.
fn attacker_site() -> u16 {
    const PAGE: &str = "<!doctype html><meta charset=\"utf-8\"><title>another site</title>\
                        <p>A page of another origin.";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A thread each: Chromium may open a connection it never uses.
            std::thread::spawn(move || answer(stream, PAGE));
        }
    });
    port
}

fn answer(mut stream: TcpStream, page: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buffer = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{page}",
        page.len()
    );
}
