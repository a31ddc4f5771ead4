//! Local gateway load (issue 11, item 5): the chat example's local gateway
//! against a minimal tokio-tungstenite broadcast server (`src/bin/broadcast.rs`)
//! in the same run, both release binaries in child processes, both driven by
//! the same real WebSocket clients.
//!
//! For each server: `LOAD_CLIENTS` receivers (1,000 by default) join one
//! channel (`?channel=%23load`); four senders, in `#general`, send chat
//! messages into it at a fixed offered rate, each carrying its send time.
//! Every receiver records each message's latency (send to receipt) and counts
//! every copy, so losses and duplicates are seen per receiver. A send that
//! falls behind its schedule (the server not reading its sender) is measured
//! too, as the senders' lag.
//!
//! - Latency: `LOAD_LATENCY_MESSAGES` (8) messages at `LOAD_RATE`
//!   deliveries/s (1,000/s: one message a second to 1,000 receivers; with
//!   more receivers, one message a second); p50 and p99 over all deliveries.
//! - Capacity: the highest offered rate, in deliveries/s, at which a step of
//!   `LOAD_STEP_SECS` seconds (and at least `LOAD_STEP_MESSAGES`, 10,
//!   messages) delivers every message to every receiver exactly once, with
//!   p99 and the senders' lag at most `LOAD_P99_BOUND_MS`, and nothing sent
//!   back to the senders (an error answer). The bound is 250 ms up to 1,000
//!   receivers, proportionally more beyond (a fan-out takes longer); a step
//!   lasts 2 s or four bounds. The rate doubles from `LOAD_START` (4,000/s;
//!   later repetitions: the capacity found so far) until a step fails, then
//!   `LOAD_BISECT` (3) bisections narrow it. Before a step, traffic must have
//!   stopped, receivers the server dropped are connected again (and counted),
//!   and after a failed step a probe must reach every receiver.
//! - Also: the server's CPU time per delivery (from /proc), the fastest
//!   drain seen in any step, the time to connect the clients, peak RSS.
//!
//! Each figure is the median of `LOAD_REPS` (3) repetitions; each starts each
//! server afresh, the order alternating. The bench raises its open-files
//! limit to the hard limit (the servers inherit it), builds both binaries
//! (`cargo build --release`; `LOAD_CHAT_EXE` / `LOAD_BASELINE_EXE` name
//! prebuilt ones instead, e.g. builds with debug info for a profiler), prints
//! one line per step on stderr, then a markdown table of ratios. Run it:
//!
//! ```sh
//! cargo bench -p lawcket-benchmarks --bench local_load            # about 3 min after the builds
//! LOAD_CLIENTS=10000 LOAD_REPS=1 cargo bench -p lawcket-benchmarks --bench local_load
//! LOAD_SERVERS=lawcket cargo bench ...                            # one server only (said in the table)
//! ```
//!
//! The chat example runs with the local gateway's defaults (in-memory
//! registry, 100 invocations at once, 1 MiB send buffer per client, log level
//! info); `LAWCKET_LOCAL_*` and `RUST_LOG` set for the bench are passed on to
//! it, and only to it, and printed. Both servers and the clients share the
//! machine's cores: the figures are those of the whole system, each server's
//! own cost shows in its ratio and in its CPU per delivery. Linux only.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Client, Message>;

const CHANNEL: &str = "#load";
const SENDERS: usize = 4;
/// Handshakes in flight while connecting, well under the listen backlog.
const CONNECTING: usize = 64;
/// Bound on a handshake, and on a probe message reaching every receiver.
const PATIENCE: Duration = Duration::from_secs(30);
/// Clock ticks per second in /proc/{pid}/stat (Linux's USER_HZ).
const CLOCK_TICKS: f64 = 100.0;
/// The issue's target: at most this many times the baseline.
const TARGET: f64 = 1.5;

fn main() {
    let options = Options::from_env();
    let limit = raise_open_files_limit();
    let needed = options.clients as u64 + SENDERS as u64 + 256;
    assert!(
        limit >= needed,
        "the open-files limit is {limit} (hard limit included); {} clients need at least \
         {needed}: raise the hard limit (`ulimit -Hn`) or lower LOAD_CLIENTS",
        options.clients
    );
    let chat = prebuilt("LOAD_CHAT_EXE")
        .unwrap_or_else(|| build(&["-p", "lawcket", "--example", "chat"], "chat"));
    let broadcast = prebuilt("LOAD_BASELINE_EXE").unwrap_or_else(|| {
        build(
            &["-p", "lawcket-benchmarks", "--bin", "broadcast"],
            "broadcast",
        )
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(options, limit, chat, broadcast));
}

/// What the bench does, from the `LOAD_*` variables.
#[derive(Debug)]
struct Options {
    clients: usize,
    reps: usize,
    /// Offered deliveries/s for the latency figures.
    rate: f64,
    latency_messages: usize,
    step: Duration,
    /// A capacity step sends at least this many messages.
    step_messages: usize,
    p99_bound: Duration,
    bisect: usize,
    /// First capacity step, in deliveries/s.
    start: f64,
    servers: Vec<Kind>,
}

impl Options {
    fn from_env() -> Options {
        let clients: usize = env_or("LOAD_CLIENTS", 1000);
        assert!(clients > 0, "LOAD_CLIENTS must be at least 1");
        let servers = match std::env::var("LOAD_SERVERS") {
            Err(_) => vec![Kind::Lawcket, Kind::Baseline],
            Ok(list) => list
                .split(',')
                .map(|name| match name.trim() {
                    "lawcket" => Kind::Lawcket,
                    "baseline" => Kind::Baseline,
                    other => panic!("LOAD_SERVERS: {other:?} is neither lawcket nor baseline"),
                })
                .collect(),
        };
        // One message's fan-out takes longer the more receivers it has: the
        // bound on p99 scales with them (250 ms up to 1,000 receivers), and
        // the steps too (2 s, or 4 bounds: a queue growing past the bound
        // by the end of a step is a rate not sustained).
        let bound_ms = env_or(
            "LOAD_P99_BOUND_MS",
            250.0 * (clients as f64 / 1000.0).max(1.0),
        );
        let options = Options {
            clients,
            reps: env_or("LOAD_REPS", 3usize).max(1),
            rate: env_or("LOAD_RATE", 1000f64.max(clients as f64)),
            latency_messages: env_or("LOAD_LATENCY_MESSAGES", 8usize).max(1),
            step: Duration::from_secs_f64(env_or(
                "LOAD_STEP_SECS",
                (4.0 * bound_ms / 1000.0).max(2.0),
            )),
            step_messages: env_or("LOAD_STEP_MESSAGES", 10usize).max(1),
            p99_bound: Duration::from_secs_f64(bound_ms / 1000.0),
            bisect: env_or("LOAD_BISECT", 3),
            start: env_or("LOAD_START", 4000.0),
            servers,
        };
        assert!(
            options.rate > 0.0 && options.start > 0.0,
            "rates must be positive"
        );
        options
    }
}

/// A variable's value, or `default` when unset; a value that does not parse
/// stops the bench rather than being ignored.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a valid number")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lawcket,
    Baseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lawcket => "lawcket",
            Kind::Baseline => "baseline",
        }
    }
}

/// Raises this process's soft open-files limit to its hard limit (children
/// inherit it); answers the limit in force.
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(any(target_arch = "mips64", target_arch = "sparc64"))
))]
fn raise_open_files_limit() -> u64 {
    use std::ffi::c_int;
    #[repr(C)]
    struct Rlimit {
        current: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: c_int, limit: *mut Rlimit) -> c_int;
        fn setrlimit(resource: c_int, limit: *const Rlimit) -> c_int;
    }
    const RLIMIT_NOFILE: c_int = 7;
    let mut limit = Rlimit { current: 0, max: 0 };
    // SAFETY: plain libc calls on a struct of the kernel's layout (two
    // `rlim_t`: 64-bit on the 64-bit Linux targets this is compiled for).
    unsafe {
        assert_eq!(getrlimit(RLIMIT_NOFILE, &mut limit), 0, "getrlimit failed");
        if limit.current < limit.max {
            let raised = Rlimit {
                current: limit.max,
                max: limit.max,
            };
            if setrlimit(RLIMIT_NOFILE, &raised) == 0 {
                limit.current = limit.max;
            }
        }
    }
    limit.current
}

#[cfg(not(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(any(target_arch = "mips64", target_arch = "sparc64"))
)))]
fn raise_open_files_limit() -> u64 {
    panic!("this bench raises its open-files limit and reads /proc: run it on Linux")
}

/// A binary named by `var` instead of the one built here (a build with
/// debug info, for a profiler), said on the output.
fn prebuilt(var: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os(var)?);
    assert!(path.is_file(), "{var}={} is not a file", path.display());
    eprintln!(
        "local_load: {var}: using {} as it is, not building it",
        path.display()
    );
    Some(path)
}

/// Builds a binary in release with the cargo that built the bench; answers
/// its path.
fn build(args: &[&str], name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    eprintln!("local_load: cargo build --release {}", args.join(" "));
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo");
    assert!(
        output.status.success(),
        "cargo build --release {} failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no executable named {name}"))
}

/// A server under test, as a child process with its output in a log file.
struct Server {
    kind: Kind,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(kind: Kind, exe: &Path) -> Server {
        let port = support::free_port();
        let log =
            std::env::temp_dir().join(format!("lawcket-local-load-{}-{port}.log", kind.name()));
        let file = File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create the log {}: {e}", log.display()));
        let mut command = Command::new(exe);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        if kind == Kind::Lawcket {
            command.envs(passed_on());
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        support::wait_listening(port, &mut child, || tail(kind, &log));
        Server {
            kind,
            child,
            port,
            log,
        }
    }

    /// The server's CPU time so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command (in parentheses, which may hold spaces):
        // state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    /// The server's peak resident memory (VmHWM), in kB.
    fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
    }

    /// Whether it still runs.
    fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the {} server exited ({status}) during the run\n{}",
                self.kind.name(),
                self.tail()
            );
        }
    }

    /// The last 40 lines of its log.
    fn tail(&self) -> String {
        tail(self.kind, &self.log)
    }

    /// Lines of its log that say a post was refused (the chat example prints
    /// one per recipient a publish did not reach).
    fn undelivered_lines(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("not delivered to"))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The variables passed on to the chat example: its settings and log level.
fn passed_on() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| {
            (name.starts_with("LAWCKET_LOCAL_") && name != "LAWCKET_LOCAL_ADDR")
                || name == "RUST_LOG"
        })
        .collect()
}

/// The last 40 lines of a server's log, for failure messages.
fn tail(kind: Kind, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- {} log, {} ({} lines) ---\n{}",
        kind.name(),
        log.display(),
        lines.len(),
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// What every client task shares with the bench.
struct Shared {
    /// Send and receive times are counted from here.
    base: Instant,
    /// Frames received by receivers, of any kind (to see when traffic stops).
    received: AtomicU64,
    /// First copies of the current step's messages.
    step_received: AtomicU64,
}

/// What one receiver got in the current step.
#[derive(Default)]
struct Record {
    step: u64,
    /// Copies of each message of the step, by its number.
    counts: Vec<u8>,
    /// Latency of each first copy, in µs.
    latencies_us: Vec<u32>,
    /// When the last first copy came, in ns since `Shared::base`.
    last_ns: u64,
    /// Messages of an earlier step.
    late: u64,
    /// Frames that are not chat messages of the channel.
    other: u64,
    first_other: Option<String>,
    /// Why the connection ended, once it has.
    ended: Option<String>,
}

struct Receiver {
    record: Arc<Mutex<Record>>,
    alive: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

struct Sender {
    sink: Option<Sink>,
    alive: Arc<AtomicBool>,
    /// Frames the server sent to this sender (it should send none).
    frames: Arc<AtomicU64>,
    first_frame: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

/// One step's outcome.
#[derive(Clone, Debug, Default)]
struct Step {
    /// Offered deliveries/s.
    offered: f64,
    messages: usize,
    expected: usize,
    delivered: usize,
    /// Deliveries not made by the end of the step's wait (its patience after
    /// the last scheduled send): lost, or so late that it comes to the same.
    /// Copies that come later still are counted as `late` in the next step.
    lost: usize,
    duplicates: usize,
    late: u64,
    other: u64,
    first_other: Option<String>,
    /// Frames sent back to the senders (error answers).
    to_senders: u64,
    first_to_senders: Option<String>,
    send_errors: Vec<String>,
    /// The most a send was behind its schedule (the server not reading).
    sender_lag: Duration,
    /// Receivers whose connection ended during the step, and why the first did.
    dropped: usize,
    first_ended: Option<String>,
    p50_us: u32,
    p99_us: u32,
    max_us: u32,
    /// Deliveries/s from the first scheduled send to the last delivery.
    achieved: f64,
}

impl Step {
    /// Why the step fails the capacity criteria, if it does.
    fn failure(&self, bound: Duration) -> Option<String> {
        let mut why = Vec::new();
        if self.lost > 0 {
            why.push(format!("{} not delivered in time", self.lost));
        }
        if self.duplicates > 0 {
            why.push(format!("{} duplicates", self.duplicates));
        }
        if self.p99_us as u128 > bound.as_micros() {
            why.push(format!(
                "p99 {} > {} ms",
                ms(self.p99_us),
                bound.as_millis()
            ));
        }
        if self.sender_lag > bound {
            why.push(format!(
                "senders held back {} ms",
                self.sender_lag.as_millis()
            ));
        }
        if self.to_senders > 0 {
            why.push(format!(
                "{} frames to senders (first: {})",
                self.to_senders,
                self.first_to_senders.as_deref().unwrap_or("?")
            ));
        }
        if self.dropped > 0 {
            why.push(format!(
                "{} receivers dropped (first: {})",
                self.dropped,
                self.first_ended.as_deref().unwrap_or("?")
            ));
        }
        if !self.send_errors.is_empty() {
            why.push(format!("send failed: {}", self.send_errors[0]));
        }
        if self.other > 0 {
            why.push(format!(
                "{} other frames to receivers (first: {})",
                self.other,
                self.first_other.as_deref().unwrap_or("?")
            ));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    fn line(&self) -> String {
        format!(
            "{:>9.0}/s offered, {:>4} msgs: delivered {}/{}, lost {}, dup {}, p50 {} ms, \
             p99 {} ms, max {} ms, achieved {:.0}/s, sender lag {} ms, late from earlier \
             steps {}",
            self.offered,
            self.messages,
            self.delivered,
            self.expected,
            self.lost,
            self.duplicates,
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.achieved,
            self.sender_lag.as_millis(),
            self.late
        )
    }
}

fn ms(us: u32) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// The clients connected to one server.
struct Pool {
    url: String,
    clients: usize,
    shared: Arc<Shared>,
    receivers: Vec<Receiver>,
    senders: Vec<Sender>,
    step: u64,
    /// Receivers and senders connected again after the server dropped them.
    reconnected: usize,
    /// A probe must go through before the next step (after a failed step or
    /// a reconnection, when something may still be in flight).
    needs_probe: bool,
}

impl Pool {
    async fn connect(port: u16, clients: usize) -> Result<Pool, String> {
        let mut pool = Pool {
            url: format!("ws://127.0.0.1:{port}/"),
            clients,
            shared: Arc::new(Shared {
                base: Instant::now(),
                received: AtomicU64::new(0),
                step_received: AtomicU64::new(0),
            }),
            receivers: Vec::new(),
            senders: Vec::new(),
            step: 0,
            reconnected: 0,
            needs_probe: true,
        };
        pool.fill().await?;
        pool.reconnected = 0;
        Ok(pool)
    }

    /// Connects senders and receivers until there are as many live ones as
    /// asked (replacing those the server dropped).
    async fn fill(&mut self) -> Result<(), String> {
        let dead_receivers: Vec<usize> = (0..self.receivers.len())
            .filter(|&i| !self.receivers[i].alive.load(Ordering::Acquire))
            .collect();
        let missing = self.clients - self.receivers.len() + dead_receivers.len();
        let dead_senders: Vec<usize> = (0..self.senders.len())
            .filter(|&i| !self.senders[i].alive.load(Ordering::Acquire))
            .collect();
        for &i in &dead_senders {
            let fresh = self.connect_sender().await?;
            self.senders[i] = fresh;
            self.reconnected += 1;
        }
        while self.senders.len() < SENDERS {
            let sender = self.connect_sender().await?;
            self.senders.push(sender);
        }
        if missing == 0 {
            return Ok(());
        }
        let query = format!("{}?channel=%23load", self.url);
        let connected: Vec<Result<Client, String>> = futures_util::stream::iter(0..missing)
            .map(|_| connect(query.clone()))
            .buffer_unordered(CONNECTING)
            .collect()
            .await;
        let mut fresh = Vec::with_capacity(missing);
        for ws in connected {
            let ws = ws.map_err(|e| format!("a receiver: {e}"))?;
            let record = Arc::new(Mutex::new(Record {
                step: self.step,
                ..Record::default()
            }));
            let alive = Arc::new(AtomicBool::new(true));
            let task = tokio::spawn(receive(
                ws,
                Arc::clone(&self.shared),
                Arc::clone(&record),
                Arc::clone(&alive),
            ));
            fresh.push(Receiver {
                record,
                alive,
                task,
            });
        }
        for i in dead_receivers {
            self.receivers[i].task.abort();
            self.receivers[i] = fresh.pop().unwrap();
            self.reconnected += 1;
        }
        self.receivers.append(&mut fresh);
        self.needs_probe = true;
        Ok(())
    }

    async fn connect_sender(&self) -> Result<Sender, String> {
        let ws = connect(self.url.clone())
            .await
            .map_err(|e| format!("a sender: {e}"))?;
        let (sink, mut stream) = ws.split();
        let alive = Arc::new(AtomicBool::new(true));
        let frames = Arc::new(AtomicU64::new(0));
        let first_frame = Arc::new(Mutex::new(None));
        let task = {
            let (alive, frames, first_frame) = (
                Arc::clone(&alive),
                Arc::clone(&frames),
                Arc::clone(&first_frame),
            );
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        frames.fetch_add(1, Ordering::Relaxed);
                        first_frame
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| text.as_str().chars().take(200).collect());
                    }
                }
                alive.store(false, Ordering::Release);
            })
        };
        Ok(Sender {
            sink: Some(sink),
            alive,
            frames,
            first_frame,
            task,
        })
    }

    /// Waits until no frame has come for 300 ms (at most `PATIENCE`).
    async fn quiesce(&self) {
        let start = Instant::now();
        let mut last = self.shared.received.load(Ordering::Relaxed);
        let mut quiet = 0;
        while quiet < 3 && start.elapsed() < PATIENCE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.shared.received.load(Ordering::Relaxed);
            if now == last {
                quiet += 1;
            } else {
                (quiet, last) = (0, now);
            }
        }
    }

    /// Settles the clients before a measured step: waits for traffic to
    /// stop, reconnects whatever the server dropped, and when something may
    /// still be in flight, sends a probe that every receiver must get.
    async fn prepare(&mut self) -> Result<(), String> {
        self.quiesce().await;
        self.fill().await?;
        if self.needs_probe {
            let probe = self.run(1.0, 1, PATIENCE).await;
            if probe.delivered < probe.expected {
                return Err(format!(
                    "a probe reached {}/{} receivers within {PATIENCE:?}",
                    probe.delivered, probe.expected
                ));
            }
            self.quiesce().await;
            self.needs_probe = false;
        }
        Ok(())
    }

    /// Sends `messages` messages at `rate` messages/s, spread over the
    /// senders, then waits for every delivery or for `patience` after the
    /// last scheduled send; answers what the receivers got.
    async fn run(&mut self, rate: f64, messages: usize, patience: Duration) -> Step {
        self.step += 1;
        let step = self.step;
        let mut alive = 0;
        for receiver in &self.receivers {
            let mut record = receiver.record.lock().unwrap();
            record.step = step;
            record.counts.clear();
            record.counts.resize(messages, 0);
            record.latencies_us.clear();
            record.last_ns = 0;
            if receiver.alive.load(Ordering::Acquire) {
                alive += 1;
            }
        }
        self.shared.step_received.store(0, Ordering::Release);
        let expected = messages * alive;
        let to_senders_before: u64 = self
            .senders
            .iter()
            .map(|s| s.frames.load(Ordering::Relaxed))
            .sum();
        let interval = Duration::from_secs_f64(1.0 / rate);
        let t0 = Instant::now() + Duration::from_millis(20);
        let base = self.shared.base;
        let mut tasks = Vec::new();
        for (index, sender) in self.senders.iter_mut().enumerate() {
            let mut sink = sender
                .sink
                .take()
                .expect("a sender's sink is back after each step");
            tasks.push(tokio::spawn(async move {
                let (mut error, mut lag) = (None, Duration::ZERO);
                for k in (index..messages).step_by(SENDERS) {
                    let at = t0 + interval.mul_f64(k as f64);
                    tokio::time::sleep_until(at.into()).await;
                    // The send time is when it is sent; how far behind its
                    // schedule (a server not reading its senders) is `lag`.
                    let now = Instant::now();
                    lag = lag.max(now - at);
                    let sent_ns = (now - base).as_nanos() as u64;
                    let text = format!("ld {step} {k} {sent_ns}");
                    let message = json!({ "action": "send", "channel": CHANNEL, "text": text });
                    if let Err(e) = sink.send(Message::text(message.to_string())).await {
                        error = Some(format!("sender {index}, message {k}: {e}"));
                        break;
                    }
                }
                (sink, error, lag)
            }));
        }
        let (mut send_errors, mut sender_lag) = (Vec::new(), Duration::ZERO);
        for (sender, task) in self.senders.iter_mut().zip(tasks) {
            let (sink, error, lag) = task.await.expect("a sender task panicked");
            sender.sink = Some(sink);
            send_errors.extend(error);
            sender_lag = sender_lag.max(lag);
        }
        let last_scheduled = t0 + interval.mul_f64(messages.saturating_sub(1) as f64);
        let deadline = last_scheduled.max(Instant::now()) + patience;
        while (self.shared.step_received.load(Ordering::Acquire) as usize) < expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let mut latencies = Vec::with_capacity(expected);
        let mut result = Step {
            offered: rate * alive as f64,
            messages,
            expected,
            send_errors,
            sender_lag,
            ..Step::default()
        };
        let mut last_ns = 0;
        for receiver in &self.receivers {
            let mut record = receiver.record.lock().unwrap();
            for &copies in &record.counts {
                result.delivered += usize::from(copies > 0);
                result.duplicates += usize::from(copies.saturating_sub(1));
            }
            latencies.append(&mut record.latencies_us);
            last_ns = last_ns.max(record.last_ns);
            result.late += std::mem::take(&mut record.late);
            result.other += std::mem::take(&mut record.other);
            if let Some(first) = record.first_other.take() {
                result.first_other.get_or_insert(first);
            }
            if !receiver.alive.load(Ordering::Acquire) {
                result.dropped += 1;
                if let Some(ended) = &record.ended {
                    result.first_ended.get_or_insert_with(|| ended.clone());
                }
            }
        }
        result.dropped = result.dropped.saturating_sub(self.receivers.len() - alive);
        result.lost = expected.saturating_sub(result.delivered);
        if !latencies.is_empty() {
            latencies.sort_unstable();
            let at = |q: f64| {
                latencies
                    [((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
            };
            result.p50_us = at(0.50);
            result.p99_us = at(0.99);
            result.max_us = *latencies.last().unwrap();
            let span = Duration::from_nanos(last_ns).saturating_sub(t0 - base);
            result.achieved = result.delivered as f64 / span.as_secs_f64().max(1e-3);
        }
        let to_senders_after: u64 = self
            .senders
            .iter()
            .map(|s| s.frames.load(Ordering::Relaxed))
            .sum();
        result.to_senders = to_senders_after - to_senders_before;
        if result.to_senders > 0 {
            result.first_to_senders = self
                .senders
                .iter()
                .find_map(|s| s.first_frame.lock().unwrap().clone());
        }
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for receiver in &self.receivers {
            receiver.task.abort();
        }
        for sender in &self.senders {
            sender.task.abort();
        }
    }
}

async fn connect(url: String) -> Result<Client, String> {
    // Small buffers: the clients read small frames, and 10,000 of them at
    // tungstenite's default 128 KiB read buffer would be over a gigabyte.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let handshake = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(PATIENCE, handshake).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("handshake failed: {e}")),
        Err(_) => Err(format!("no handshake within {PATIENCE:?}")),
    }
}

/// A receiver: files each frame in its record until the connection ends.
async fn receive(
    mut ws: Client,
    shared: Arc<Shared>,
    record: Arc<Mutex<Record>>,
    alive: Arc<AtomicBool>,
) {
    let ended = loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => break format!("closed by the server: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => break format!("connection failed: {e}"),
            None => break "connection ended".to_owned(),
        };
        let now_ns = shared.base.elapsed().as_nanos() as u64;
        shared.received.fetch_add(1, Ordering::Relaxed);
        let mut record = record.lock().unwrap();
        match chat_text(text.as_str()).and_then(parse_payload) {
            Some((step, k, sent_ns)) if step == record.step && k < record.counts.len() => {
                let copies = &mut record.counts[k];
                *copies = copies.saturating_add(1);
                if *copies == 1 {
                    let us = now_ns.saturating_sub(sent_ns) / 1000;
                    record.latencies_us.push(us.min(u32::MAX as u64) as u32);
                    record.last_ns = record.last_ns.max(now_ns);
                    shared.step_received.fetch_add(1, Ordering::Release);
                }
            }
            Some(_) => record.late += 1,
            None => {
                record.other += 1;
                if record.first_other.is_none() {
                    record.first_other = Some(text.as_str().chars().take(200).collect());
                }
            }
        }
    };
    record.lock().unwrap().ended = Some(ended);
    alive.store(false, Ordering::Release);
}

/// The `text` of a chat message of the load channel, as both servers send it:
/// `{"channel":"#load","from":"...","text":"...","type":"message"}`.
fn chat_text(frame: &str) -> Option<&str> {
    if !frame.contains(r#""type":"message""#) || !frame.contains(r##""channel":"#load""##) {
        return None;
    }
    let start = frame.find(r#""text":""#)? + r#""text":""#.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// `ld {step} {message} {send time in ns since `Shared::base`}`.
fn parse_payload(text: &str) -> Option<(u64, usize, u64)> {
    let mut fields = text.strip_prefix("ld ")?.split(' ');
    let step = fields.next()?.parse().ok()?;
    let k = fields.next()?.parse().ok()?;
    let sent = fields.next()?.parse().ok()?;
    Some((step, k, sent))
}

/// One repetition against one server.
struct Rep {
    connect: Duration,
    latency: Step,
    /// Highest passing offered rate, deliveries/s; `None`: not even the lowest.
    capacity: Option<f64>,
    /// The lowest failing rate and why it failed.
    failed: Option<(f64, String)>,
    /// The server's CPU time (user and system) per frame its receivers got,
    /// over the latency and capacity steps.
    cpu_us_per_delivery: Option<f64>,
    /// The most deliveries/s any capacity step achieved, passing or not
    /// (past capacity: how fast the server drains its backlog).
    peak: f64,
    rss_kb: Option<u64>,
    reconnected: usize,
    undelivered_lines: usize,
}

async fn repetition(
    kind: Kind,
    exe: &Path,
    options: &Options,
    rep: usize,
    estimate: Option<f64>,
) -> Rep {
    let mut server = Server::start(kind, exe);
    let who = format!("{} rep {}", kind.name(), rep + 1);
    eprintln!(
        "local_load: {who}: server pid {}, port {}",
        server.child.id(),
        server.port
    );
    let started = Instant::now();
    let mut pool = Pool::connect(server.port, options.clients)
        .await
        .unwrap_or_else(|e| panic!("{who}: connecting: {e}\n{}", server.tail()));
    let connect = started.elapsed();
    eprintln!(
        "local_load: {who}: {} receivers + {SENDERS} senders connected in {:.2} s",
        options.clients,
        connect.as_secs_f64()
    );

    // Server CPU per frame delivered, from here on (handshakes excluded).
    let cpu_before = server.cpu_ticks();
    let frames_before = pool.shared.received.load(Ordering::Relaxed);

    // Latency at a moderate rate.
    server.check_running();
    pool.prepare()
        .await
        .unwrap_or_else(|e| panic!("{who}: before the latency step: {e}\n{}", server.tail()));
    let rate = options.rate / options.clients as f64;
    let latency = pool
        .run(rate, options.latency_messages, patience(options))
        .await;
    eprintln!("local_load: {who}: latency  {}", latency.line());
    if let Some(why) = latency.failure(Duration::MAX) {
        eprintln!("local_load: {who}: latency step: {why}");
        pool.needs_probe = true;
    }

    // Capacity: double until a step fails, then bisect.
    let per_message = options.clients as f64;
    let mut peak = 0.0;
    let (mut lo, mut hi): (Option<f64>, Option<(f64, String)>) = (None, None);
    let mut rate = estimate.unwrap_or(options.start) / per_message;
    for _ in 0..16 {
        match capacity_step(&mut pool, &mut server, options, &who, rate, &mut peak).await {
            Ok(()) => {
                lo = Some(rate);
                if hi.is_some() {
                    break;
                }
                rate *= 2.0;
            }
            Err(why) => {
                hi = Some((rate, why));
                if lo.is_some() || rate * per_message < options.start / 64.0 {
                    break;
                }
                rate /= 2.0;
            }
        }
    }
    if let (Some(mut low), Some((mut high, _))) = (lo, hi.clone()) {
        for _ in 0..options.bisect {
            let mid = (low * high).sqrt();
            match capacity_step(&mut pool, &mut server, options, &who, mid, &mut peak).await {
                Ok(()) => low = mid,
                Err(why) => {
                    high = mid;
                    hi = Some((mid, why));
                }
            }
        }
        lo = Some(low);
    }
    server.check_running();
    let frames = pool.shared.received.load(Ordering::Relaxed) - frames_before;
    let cpu_us_per_delivery = match (cpu_before, server.cpu_ticks()) {
        (Some(before), Some(after)) if frames > 0 => {
            Some((after - before) as f64 * 1e6 / CLOCK_TICKS / frames as f64)
        }
        _ => None,
    };
    let rep = Rep {
        connect,
        cpu_us_per_delivery,
        latency,
        capacity: lo.map(|r| r * per_message),
        failed: hi.map(|(r, why)| (r * per_message, why)),
        peak,
        rss_kb: server.peak_rss_kb(),
        reconnected: pool.reconnected,
        undelivered_lines: server.undelivered_lines(),
    };
    drop(server); // the server first: the clients then see it close
    drop(pool);
    rep
}

/// How long a step waits for deliveries after its last scheduled send.
fn patience(options: &Options) -> Duration {
    options.p99_bound.max(Duration::from_secs(2))
}

/// One capacity step at `rate` messages/s: passes, or says why not.
async fn capacity_step(
    pool: &mut Pool,
    server: &mut Server,
    options: &Options,
    who: &str,
    rate: f64,
    peak: &mut f64,
) -> Result<(), String> {
    server.check_running();
    if let Err(e) = pool.prepare().await {
        let why = format!("could not settle before the step: {e}");
        eprintln!("local_load: {who}: {why}");
        return Err(why);
    }
    let messages = options
        .step_messages
        .max((rate * options.step.as_secs_f64()).ceil() as usize);
    let step = pool.run(rate, messages, patience(options)).await;
    *peak = peak.max(step.achieved);
    let failure = step.failure(options.p99_bound);
    eprintln!(
        "local_load: {who}: capacity {} {}",
        step.line(),
        failure
            .as_deref()
            .map_or("PASS".to_owned(), |why| format!("FAIL: {why}"))
    );
    match failure {
        None => Ok(()),
        Some(why) => {
            pool.needs_probe = true;
            Err(why)
        }
    }
}

async fn bench(options: Options, limit: u64, chat: PathBuf, broadcast: PathBuf) {
    let started = Instant::now();
    eprintln!("local_load: {options:?}");
    let settings = passed_on();
    let settings = if settings.is_empty() {
        "the local gateway's defaults (LAWCKET_LOCAL_CONCURRENCY 100, send buffer 1 MiB, \
         RUST_LOG unset: info)"
            .to_owned()
    } else {
        format!("the local gateway's defaults but {settings:?}")
    };
    let mut reps: Vec<(Kind, Rep)> = Vec::new();
    for rep in 0..options.reps {
        let mut order = options.servers.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        for kind in order {
            let exe = match kind {
                Kind::Lawcket => &chat,
                Kind::Baseline => &broadcast,
            };
            let known: Vec<f64> = reps
                .iter()
                .filter(|(k, _)| *k == kind)
                .filter_map(|(_, r)| r.capacity)
                .collect();
            let estimate = (!known.is_empty()).then(|| median(&known));
            let result = repetition(kind, exe, &options, rep, estimate).await;
            reps.push((kind, result));
        }
    }
    report(&options, limit, &settings, &reps, started.elapsed());
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median of `figure` over a server's repetitions (`None` if it has none).
fn med(reps: &[(Kind, Rep)], kind: Kind, figure: impl Fn(&Rep) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = reps
        .iter()
        .filter(|(k, _)| *k == kind)
        .filter_map(|(_, r)| figure(r))
        .collect();
    (!values.is_empty()).then(|| median(&values))
}

fn report(options: &Options, limit: u64, settings: &str, reps: &[(Kind, Rep)], elapsed: Duration) {
    let clients = options.clients;
    println!();
    println!(
        "## Local gateway load: {clients} clients in one channel, {SENDERS} senders, median of {} \
         repetitions",
        options.reps
    );
    println!();
    println!("- lawcket: the chat example (release) with {settings}");
    println!("- baseline: benchmarks/src/bin/broadcast.rs (release), tokio-tungstenite");
    println!(
        "- latency: {} messages at {:.0} deliveries/s; capacity: highest offered rate where a \
         step of >= {:.0} s (>= {} messages) delivers everything exactly once, p99 and the \
         senders' lag <= {} ms, no error answer",
        options.latency_messages,
        options.rate,
        options.step.as_secs_f64(),
        options.step_messages,
        options.p99_bound.as_millis()
    );
    println!(
        "- open-files limit {limit}; {} cores shared by both servers and the clients; {:.0} s in all",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        elapsed.as_secs_f64()
    );
    println!();
    for (kind, rep) in reps {
        println!(
            "- {} rep: cpu {} us/delivery, connect {:.2} s, latency p50 {} ms p99 {} ms (lost {}, dup {}), capacity {}, \
             first failing {}, peak RSS {}, reconnected {}, 'not delivered' log lines {}",
            kind.name(),
            rep.cpu_us_per_delivery.map_or("?".to_owned(), |us| format!("{us:.1}")),
            rep.connect.as_secs_f64(),
            ms(rep.latency.p50_us),
            ms(rep.latency.p99_us),
            rep.latency.lost,
            rep.latency.duplicates,
            rep.capacity.map_or("none".to_owned(), |c| format!("{c:.0}/s")),
            rep.failed
                .as_ref()
                .map_or("none".to_owned(), |(r, why)| format!("{r:.0}/s ({why})")),
            rep.rss_kb.map_or("?".to_owned(), |kb| format!("{:.0} MB", kb as f64 / 1024.0)),
            rep.reconnected,
            rep.undelivered_lines
        );
    }
    println!();
    println!("| metric | lawcket | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    let both = |figure: &dyn Fn(&Rep) -> Option<f64>| {
        (
            med(reps, Kind::Lawcket, figure),
            med(reps, Kind::Baseline, figure),
        )
    };
    let show =
        |v: Option<f64>, digits: usize| v.map_or("not run".to_owned(), |v| format!("{v:.digits$}"));
    let mut verdicts = Vec::new();
    let mut row = |metric: String,
                   (l, b): (Option<f64>, Option<f64>),
                   digits: usize,
                   ratio: Option<f64>,
                   target: &str| {
        let ratio_text = ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        let verdict = match (target, ratio) {
            ("", _) => "-".to_owned(),
            (_, Some(r)) if r <= TARGET => format!("{target}: met"),
            (_, Some(_)) => format!("{target}: MISSED"),
            (_, None) => format!("{target}: not measured"),
        };
        if !target.is_empty() {
            verdicts.push(format!("{metric}: {verdict}"));
        }
        println!(
            "| {metric} | {} | {} | {ratio_text} | {verdict} |",
            show(l, digits),
            show(b, digits)
        );
    };
    let ratio = |(l, b): (Option<f64>, Option<f64>)| match (l, b) {
        (Some(l), Some(b)) if b > 0.0 => Some(l / b),
        _ => None,
    };
    let inverse = |(l, b): (Option<f64>, Option<f64>)| match (l, b) {
        (Some(l), Some(b)) if l > 0.0 => Some(b / l),
        _ => None,
    };
    let rate = options.rate;
    let p50 = both(&|r| Some(r.latency.p50_us as f64 / 1000.0));
    row(
        format!("p50 latency at {rate:.0} deliveries/s, ms"),
        p50,
        1,
        ratio(p50),
        "",
    );
    let p99 = both(&|r| Some(r.latency.p99_us as f64 / 1000.0));
    row(
        format!("p99 latency at {rate:.0} deliveries/s, ms"),
        p99,
        1,
        ratio(p99),
        "<= 1.5x",
    );
    let capacity = both(&|r| Some(r.capacity.unwrap_or(0.0)));
    row(
        "capacity, deliveries/s (ratio: baseline / lawcket)".to_owned(),
        capacity,
        0,
        inverse(capacity),
        "<= 1.5x",
    );
    let lost = |kind: Kind| -> Option<f64> {
        let mine: Vec<&Rep> = reps
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r)
            .collect();
        (!mine.is_empty()).then(|| {
            mine.iter()
                .map(|r| (r.latency.lost + r.latency.duplicates) as f64)
                .sum()
        })
    };
    let lost = (lost(Kind::Lawcket), lost(Kind::Baseline));
    row(
        format!("lost + duplicated at {rate:.0}/s, all repetitions"),
        lost,
        0,
        None,
        "",
    );
    let peak = both(&|r| Some(r.peak));
    row(
        "highest achieved deliveries/s in any step (ratio: baseline / lawcket)".to_owned(),
        peak,
        0,
        inverse(peak),
        "",
    );
    let cpu = both(&|r| r.cpu_us_per_delivery);
    row(
        "server CPU per delivery, us (user + system)".to_owned(),
        cpu,
        1,
        ratio(cpu),
        "",
    );
    let connect = both(&|r| Some(r.connect.as_secs_f64()));
    row(
        format!("connect {clients} clients, s"),
        connect,
        2,
        ratio(connect),
        "",
    );
    let rss = both(&|r| r.rss_kb.map(|kb| kb as f64 / 1024.0));
    row("server peak RSS, MB".to_owned(), rss, 0, ratio(rss), "");
    println!();
    let lost_any = lost.0.unwrap_or(0.0) > 0.0 || lost.1.unwrap_or(0.0) > 0.0;
    println!(
        "nothing lost at {rate:.0}/s: {}; capacity steps pass only with nothing lost",
        if lost_any { "MISSED" } else { "met" }
    );
    for verdict in verdicts {
        println!("{verdict}");
    }
}
