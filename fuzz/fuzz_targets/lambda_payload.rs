//! Any bytes as a Lambda invocation payload, read exactly as the Lambda entry
//! reads one, through a pipeline on the in-memory registry with a handler that
//! uses the event as a user would (see `src/lib.rs`).
//!
//! The property: every input returns (no panic, no hang); any `Result` is fine.
//! Under libFuzzer a panic aborts even where lawcket's panic guard around user
//! code would have caught it.

#![no_main]

use std::sync::{LazyLock, Mutex};

use lawcket_fuzz::Harness;
use libfuzzer_sys::fuzz_target;

/// One current-thread runtime for every input.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// Built once; rebuilt by the harness itself when it has grown.
static HARNESS: LazyLock<Mutex<Harness>> =
    LazyLock::new(|| Mutex::new(RUNTIME.block_on(Harness::new())));

fuzz_target!(|data: &[u8]| {
    let mut harness = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let _ = RUNTIME.block_on(harness.run(data));
});
