//! The chat example in headless Chromium (Debian's package, driven by
//! playwright-core): pages with names in two channels chat through the local
//! gateway; they survive a restart of the server; and pages of other origins
//! cannot use the gateway a developer runs.
//!
//! The scripts in tests/browser/ hold the page's side of the contract between
//! the page and the chat example (frames, close codes, limits); they print
//! their steps, shown with `-- --nocapture` or when a test fails.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Names, channels, a join by the page's control, a reload, the frame limit
/// and the page's error lines: tests/browser/chat.mjs, which says what it
/// checks step by step.
#[tokio::test]
async fn chat_page_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let port = support::free_port();
    let chat = Chat::start(port, &[]);
    let screenshot = root.join("target/chat-browser-test.png");
    let url = format!("http://127.0.0.1:{port}/");
    let stdout = run_script(
        "chat.mjs",
        &[url.as_ref(), screenshot.as_os_str()],
        300,
        &chat,
    )
    .await;
    eprintln!("{stdout}"); // shown with `-- --nocapture`: the steps and their times
}

/// Subprotocols as Chromium negotiates them with the graphql_ws example:
/// `new WebSocket(url, ["graphql-transport-ws"])` opens with that protocol
/// and its handshake is answered by a reply; a socket offering only an
/// unsupported protocol fails as a refused handshake
/// (tests/browser/subprotocols.mjs).
#[tokio::test]
async fn subprotocols_in_chromium() {
    let port = support::free_port();
    let server = Chat::start_example("graphql_ws", port, &[]);
    let url = format!("http://127.0.0.1:{port}/");
    run_script("subprotocols.mjs", &[url.as_ref()], 120, &server).await;
}

/// Runs tests/browser/`script` with `args` in node, within `limit_secs`; it
/// must succeed and print the line `<name>: ok` (`browser chat: ok` for
/// chat.mjs). Answers its stdout.
async fn run_script(
    script: &str,
    args: &[&std::ffi::OsStr],
    limit_secs: u64,
    server: &Chat,
) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::time::timeout(
        Duration::from_secs(limit_secs),
        tokio::process::Command::new("node")
            .arg(root.join("tests/browser").join(script))
            .args(args)
            .env("CHROMIUM", chromium())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{script} ran over {limit_secs} s\n--- gateway log ---\n{}",
            server.log()
        )
    })
    .expect("node is needed for the browser test");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let ok = match script {
        "chat.mjs" => "browser chat: ok".to_owned(),
        other => format!("{}: ok", other.trim_end_matches(".mjs")),
    };
    assert!(
        output.status.success() && stdout.lines().any(|line| line == ok),
        "{script} failed ({}):\n{stdout}\n{}\n--- gateway log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    stdout
}

/// The chat example restarts (a crash, a redeploy) while two chat pages stay
/// open: the pages back off, come back by themselves, re-join #general, and a
/// message typed during the outage is delivered once. tests/browser/reconnect.mjs
/// drives the pages and asks for each step on its stdout (`restart`, `start`);
/// this test answers on its stdin (`stopped`, `started`).
#[tokio::test]
async fn chat_pages_reconnect_after_a_server_restart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = chromium();
    let port = support::free_port();
    let mut chat = Chat::start(port, &[]);
    let mut node = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/reconnect.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the browser test");
    let mut to_node = node.stdin.take().unwrap();
    let mut from_node = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut stderr = node.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut said = Vec::new();
    // What the test's own client in #general receives after the restart.
    let observed = Arc::new(Mutex::new(Vec::<String>::new()));

    let outcome = async {
        // Opening two pages includes Chromium's start.
        next_word(
            &mut from_node,
            &mut said,
            "restart",
            Duration::from_secs(180),
        )
        .await?;
        chat.stop();
        tell(&mut to_node, "stopped").await?;
        next_word(&mut from_node, &mut said, "start", Duration::from_secs(120)).await?;
        chat.start_again();
        // In #general before any page can have come back (they retry after
        // 0.35 s at the soonest; this tries every 10 ms), so it receives what
        // alice sends once she has re-joined.
        let observer = observer(&mut chat, port).await?;
        let reader = {
            let observed = Arc::clone(&observed);
            tokio::spawn(async move {
                let (_keep_open, mut frames) = observer.split();
                while let Some(Ok(frame)) = frames.next().await {
                    if let Message::Text(text) = frame {
                        observed.lock().unwrap().push(text.as_str().to_owned());
                    }
                }
            })
        };
        tell(&mut to_node, "started").await?;
        next_word(
            &mut from_node,
            &mut said,
            "reconnect: ok",
            Duration::from_secs(240),
        )
        .await?;
        // Everything alice sent after the restart reaches the observer too.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !observed_text(&observed, "alice after restart") {
            if tokio::time::Instant::now() > deadline {
                return Err(
                    "the observer did not receive \"alice after restart\" within 20 s".to_owned(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await; // a duplicate would be here by now
        reader.abort();
        Ok::<(), String>(())
    }
    .await;

    // On a failure node may be waiting for a word: end its stdin so it stops.
    drop(to_node);
    let status = match tokio::time::timeout(Duration::from_secs(30), node.wait()).await {
        Ok(status) => format!("{:?}", status.map(|s| s.code())),
        Err(_) => {
            let _ = node.kill().await;
            "still running after 30 s: killed".to_owned()
        }
    };
    let errors = tokio::time::timeout(Duration::from_secs(10), errors)
        .await
        .map(|text| text.unwrap_or_default())
        .unwrap_or_else(|_| "(node's stderr did not end)".to_owned());
    let observed = observed.lock().unwrap().clone();
    // Shown with `-- --nocapture`: the steps and how long each took.
    eprintln!("{}", said.join("\n"));

    let mut problems = Vec::new();
    if let Err(problem) = outcome {
        problems.push(problem);
    }
    // Exactly once: not lost in the outage, not sent twice after it.
    let outage: Vec<&String> = observed
        .iter()
        .filter(|frame| is_message(frame, "typed during the outage"))
        .collect();
    match outage.as_slice() {
        [one] if serde_json::from_str::<Value>(one).unwrap()["name"] == "alice" => {}
        _ => problems.push(format!(
            "the observer received the message typed during the outage {} times (expected once, from alice): {outage:?}",
            outage.len()
        )),
    }
    assert!(
        problems.is_empty(),
        "the chat pages did not recover from a server restart:\n  - {}\n\
         --- node said (exit: {status}) ---\n{}\n--- node's errors ---\n{errors}\n\
         --- the observer received after the restart ---\n{}\n--- gateway log ---\n{}",
        problems.join("\n  - "),
        said.join("\n"),
        observed.join("\n"),
        chat.log()
    );
}

/// Reads node's stdout up to the line `word`, keeping every line in `said`.
async fn next_word(
    from_node: &mut Lines<BufReader<ChildStdout>>,
    said: &mut Vec<String>,
    word: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, from_node.next_line()).await {
            Err(_) => {
                return Err(format!(
                    "node did not say `{word}` within {} s",
                    within.as_secs()
                ))
            }
            Ok(Err(error)) => return Err(format!("reading node's output: {error}")),
            Ok(Ok(None)) => return Err(format!("node ended before saying `{word}`")),
            Ok(Ok(Some(line))) => {
                let found = line == word;
                said.push(line);
                if found {
                    return Ok(());
                }
            }
        }
    }
}

async fn tell(to_node: &mut ChildStdin, word: &str) -> Result<(), String> {
    to_node
        .write_all(format!("{word}\n").as_bytes())
        .await
        .map_err(|e| format!("telling node `{word}`: {e}"))?;
    to_node
        .flush()
        .await
        .map_err(|e| format!("telling node `{word}`: {e}"))
}

/// A client without Origin in #general, connected as soon as the restarted
/// chat example accepts one (tried every 10 ms, for 30 s at most).
async fn observer(
    chat: &mut Chat,
    port: u16,
) -> Result<WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>, String> {
    let url = format!("ws://127.0.0.1:{port}/?channel=%23general&token=observer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((socket, _)) => return Ok(socket),
            Err(error) => {
                if let Some(status) = chat.exited() {
                    return Err(format!(
                        "the chat example exited ({status}) after its restart"
                    ));
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!(
                        "the restarted chat example accepted no WebSocket within 30 s: {error}"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Whether `frame` is a chat message with this text.
fn is_message(frame: &str, text: &str) -> bool {
    serde_json::from_str::<Value>(frame)
        .is_ok_and(|frame| frame["type"] == "message" && frame["text"] == text)
}

fn observed_text(observed: &Mutex<Vec<String>>, text: &str) -> bool {
    observed
        .lock()
        .unwrap()
        .iter()
        .any(|frame| is_message(frame, text))
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

    // The victim: a client without Origin (allowed) in #general (the default
    // channel), as the chat page's own socket would be. Its own message tells
    // its connection id.
    let (victim, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/?token=victim"))
            .await
            .unwrap_or_else(|e| panic!("the victim could not connect: {e}\n{}", chat.log()));
    let (mut victim_tx, mut victim_rx) = victim.split();
    let mut reference = 0;
    let mut say = |text: &str| {
        reference += 1;
        Message::text(
            json!({ "action": "send", "channel": "#general", "text": text, "ref": reference })
                .to_string(),
        )
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
            if message["type"] == "message" && message["text"] == "victim: hello" {
                match message["connection"].as_str() {
                    Some(id) => break id.to_owned(),
                    None => panic!("the victim's own message names no connection: {message}"),
                }
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
/// An example binary running its local gateway (the chat example unless
/// said otherwise), its output in a log file.
struct Chat {
    child: Child,
    example: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Chat {
    fn start(port: u16, env: &[(&str, &str)]) -> Chat {
        Chat::start_example("chat", port, env)
    }

    fn start_example(example: &'static str, port: u16, env: &[(&str, &str)]) -> Chat {
        let log = std::env::temp_dir().join(format!("lawcket-{example}-{port}.log"));
        std::fs::File::create(&log).unwrap(); // a fresh log; spawn appends
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = Chat::spawn(example, port, &env, &log);
        let mut chat = Chat {
            child,
            example,
            port,
            env,
            log,
        };
        let log = chat.log.clone();
        support::wait_listening(port, &mut chat.child, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        chat
    }

    fn spawn(example: &str, port: u16, env: &[(String, String)], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        Command::new(support::example(example))
            // Only what the test sets: a developer's LAWCKET_LOCAL_ORIGINS
            // must not change what the test sees.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1") // a readable log in failure messages
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap()
    }

    /// Kills the process (as a crash or a redeploy would: no close frames),
    /// then starts a new one on the same port, writing to the same log. Does
    /// not wait for it to listen.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.note("--- killed by the test ---");
    }

    fn start_again(&mut self) {
        self.note("--- started again by the test ---");
        self.child = Chat::spawn(self.example, self.port, &self.env, &self.log);
    }

    /// Whether the process has exited, and how.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    fn note(&self, line: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        let _ = writeln!(file, "{line}");
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
