//! Cold start: exec → the first CONNECT answered, with a Lambda Runtime API
//! served here and DynamoDB (moto) on loopback, for lawcket's `echo` example
//! and the hand-written floor (`src/bin/floor.rs`), both built Lambda-only with
//! the profile README recommends (`--profile lambda`). Runs alternate between
//! the two; the table gives medians and the ratio.
//!
//! The floor reads the system's trust store at its first call (142 files on
//! this Debian host; one bundle on Lambda's Amazon Linux), where lawcket uses
//! its compiled-in roots: that is most of the difference between the two.
//!
//! `cargo bench -p lawcket-benchmarks --bench cold_start` (RUNS=n, default 25)

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::runtime_api::{Outcome, RuntimeApi};

const TABLE: &str = "lawcket-connections";

fn main() {
    let runs: usize = std::env::var("RUNS").map_or(25, |n| n.parse().expect("RUNS: a count"));
    let target = target_dir();
    // The `echo` example as a Lambda-only binary (see benchmarks/Cargo.toml).
    build(&[
        "-p",
        "lawcket-benchmarks",
        "--bin",
        "echo",
        "--bin",
        "floor",
    ]);
    let echo = stripped(&target.join("lambda/echo"));
    let floor = stripped(&target.join("lambda/floor"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = support::moto::start();
    runtime.block_on(async {
        let client = moto.client().await;
        support::moto::create_table(&client, TABLE).await;
    });

    let (mut lawcket, mut hand) = (Vec::new(), Vec::new());
    for run in 0..runs + 1 {
        let a = runtime.block_on(cold_start(&echo, &moto.endpoint));
        let b = runtime.block_on(cold_start(&floor, &moto.endpoint));
        // The first pair warms the page cache and moto.
        if run > 0 {
            lawcket.push(a);
            hand.push(b);
        }
    }
    // What of it is moto's: one PutItem on a new connection, as a cold
    // process makes it (moto is Python; DynamoDB answers in single-digit ms).
    let mut put: Vec<f64> = (0..runs)
        .map(|_| runtime.block_on(put_item(&moto)))
        .collect();
    put.sort_by(f64::total_cmp);
    let put = put[put.len() / 2];
    let (time, rss) = (median(&lawcket, |s| s.time), median(&lawcket, |s| s.rss));
    let (floor_time, floor_rss) = (median(&hand, |s| s.time), median(&hand, |s| s.rss));
    println!("\ncold start, exec → first CONNECT answered, median of {runs} runs each\n");
    println!("| row | lawcket `echo` | hand-written floor | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| time | {:.2} ms | {:.2} ms | {:.2}× | ≤ 1.0×, ≤ 6 ms |",
        time * 1e3,
        floor_time * 1e3,
        time / floor_time
    );
    println!(
        "| time without moto's PutItem ({:.2} ms) | {:.2} ms | {:.2} ms | {:.2}× | |",
        put * 1e3,
        (time - put) * 1e3,
        (floor_time - put) * 1e3,
        (time - put) / (floor_time - put)
    );
    println!(
        "| peak RSS | {:.1} MB | {:.1} MB | {:.2}× | ≤ 8 MB |",
        rss / 1024.0,
        floor_rss / 1024.0,
        rss / floor_rss
    );
    println!(
        "| size, stripped (`{}`) | {:.2} MB | {:.2} MB | {:.2}× | ≤ 5 MB (≤ 6) |",
        echo.display(),
        mb(&echo),
        mb(&floor),
        mb(&echo) / mb(&floor)
    );
}

struct Sample {
    /// Seconds from spawn to the answer.
    time: f64,
    /// Peak resident set (VmHWM), KiB.
    rss: f64,
}

/// One cold start: a fresh process and a fresh Runtime API with one CONNECT queued.
async fn cold_start(binary: &Path, dynamodb: &str) -> Sample {
    let api = RuntimeApi::start().await;
    let mut connect = support::fixture("connect.json");
    connect["requestContext"]["connectionId"] = format!("cold-{}", api.addr.port()).into();
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(api.env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
        .env("CONNECTIONS_TABLE", TABLE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let outcome = api.invoke(connect).await;
    let time = start.elapsed().as_secs_f64();
    let rss = peak_rss(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    match outcome {
        Outcome::Response(response) if response["statusCode"] == 200 => {}
        other => panic!("{} did not accept the CONNECT: {other:?}", binary.display()),
    }
    // Each run's process is gone before the next starts.
    std::thread::sleep(Duration::from_millis(20));
    Sample { time, rss }
}

/// Seconds for one PutItem to moto from a new client (a new connection).
async fn put_item(moto: &support::moto::Moto) -> f64 {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = moto.client().await;
    let start = Instant::now();
    client
        .put_item()
        .table_name(TABLE)
        .item("connectionId", AttributeValue::S("put-item-probe".into()))
        .send()
        .await
        .unwrap();
    start.elapsed().as_secs_f64()
}

fn peak_rss(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn median(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(value).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn mb(path: &Path) -> f64 {
    std::fs::metadata(path).unwrap().len() as f64 / 1e6
}

/// Builds with the profile README recommends for Lambda. It strips; here the
/// binary keeps its symbols (so benchmarks/size.sh's cargo-bloat shares the
/// build) and [`stripped`] strips a copy.
fn build(args: &[&str]) {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--profile", "lambda"])
        .env("CARGO_PROFILE_LAMBDA_STRIP", "false")
        .args(args)
        .current_dir(support::repo())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build {args:?} failed");
}

/// A stripped copy of `binary` (as `strip = true` builds it), in `stripped/`
/// beside it.
fn stripped(binary: &Path) -> PathBuf {
    let dir = binary.parent().unwrap().join("stripped");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(binary.file_name().unwrap());
    let status = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .expect("strip (binutils) is needed");
    assert!(status.success(), "strip {} failed", binary.display());
    copy
}

/// target/ of this build (this bench runs from target/release/deps).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}
