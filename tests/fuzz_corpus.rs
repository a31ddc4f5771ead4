//! Replays the fuzz target's seed corpus (fuzz/corpus-seed/lambda_payload) and
//! any committed crash reproducers (fuzz/artifacts/lambda_payload/crash-*)
//! through the same harness the `lambda_payload` fuzz target runs, on stable
//! and without cargo-fuzz: every input must return, whatever it answers.

// The fuzz crate's harness, by path: same pipeline, same handler.
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::Harness;

/// The files of `dir` whose names start with `prefix`, sorted; none if the
/// directory does not exist.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "current_thread")]
async fn every_seed_and_crash_input_returns() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&fuzz.join("corpus-seed/lambda_payload"), "");
    assert!(
        seeds.len() >= 30,
        "the seed corpus holds {} files, expected at least 30",
        seeds.len()
    );
    let crashes = files(&fuzz.join("artifacts/lambda_payload"), "crash-");

    let mut harness = Harness::new().await;
    let mut table = Vec::new();
    for path in seeds.iter().chain(&crashes) {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        // A panic fails the test naming no input: say which one first.
        eprintln!("replaying {name} ({} bytes)", bytes.len());
        let outcome = match harness.run(&bytes).await {
            Ok(status) => format!("status {status}"),
            Err(error) => {
                let text = error.to_string();
                format!("error: {}", text.chars().take(90).collect::<String>())
            }
        };
        table.push(format!("{name}: {outcome}"));
    }
    println!("{}", table.join("\n"));
    println!(
        "{} seeds and {} crash reproducers replayed; {} items left in the registry",
        seeds.len(),
        crashes.len(),
        harness.items()
    );
}

/// The harness keeps the registry bounded however many connections open.
#[tokio::test(flavor = "current_thread")]
async fn the_registry_stays_bounded() {
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/connect.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut harness = Harness::new().await;
    for i in 0..(harness::MAX_ITEMS + 10) {
        let mut event = template.clone();
        event["requestContext"]["connectionId"] = format!("id{i:08}=").into();
        let status = harness
            .run(&serde_json::to_vec(&event).unwrap())
            .await
            .unwrap();
        assert_eq!(status, 200, "connect {i}");
        assert!(harness.items() <= harness::MAX_ITEMS + 1);
    }
    assert_eq!(harness.rebuilds(), 1);
}
