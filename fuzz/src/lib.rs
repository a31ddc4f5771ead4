//! The harness the `lambda_payload` fuzz target runs each input through, shared
//! with `tests/fuzz_corpus.rs` (which includes this file by path) so the seed
//! corpus is replayed on stable through exactly the same pipeline and handler.
//!
//! A pipeline on the in-memory registry, with offline SDK settings and a
//! handler that reads the event as a user's would. Nothing here touches the
//! network: the handler never publishes, and the memory registry is the only
//! store.

use std::sync::Arc;

use lawcket_runtime::test_util::{
    offline_sdk_config, run_lambda_payload, Memory, Pipeline, Registry,
};
use lawcket_runtime::{BoxError, Config, Dynamic, Invocation, Kind};

/// The pipeline is rebuilt after this many runs: its per-stage publisher cache
/// keeps one entry per (domain name, stage) a message named, which inputs
/// invent without end.
pub const REBUILD_EVERY: u64 = 10_000;

/// ... or as soon as the registry holds more items than this (each accepted
/// `$connect` with a new connection id stores one).
pub const MAX_ITEMS: usize = 1_000;

/// The configuration the fuzzed pipeline runs with: one dynamic sync field.
pub fn config() -> Config {
    Config::new("t").sync_dynamic("channel", Dynamic::query("channel").default("#general"))
}

/// A handler that uses the event as a user would, without publishing.
///
/// It fails (refusing a `$connect`, failing a message) when the body says
/// `"fail"`, so the pipeline's clean-up paths run too.
pub async fn handler(invocation: Invocation) -> Result<(), BoxError> {
    let event = invocation.event();
    let connection = invocation.connection();
    let registration = invocation.registration();

    let json = event.json::<serde_json::Value>();
    let text = event.text().map(|t| t.len());
    let described = (
        connection.id().len(),
        connection.stage().len(),
        connection.domain_name().len(),
        connection.route_key().len(),
        connection.api_id().map(str::len),
        connection.connected_at(),
        registration.connection_id().len(),
        event.query("channel").map(str::len),
        event.header("Host").map(str::len),
        invocation.publish().is_some(),
    );
    std::hint::black_box((&json, text, described));

    match connection.kind() {
        // Automatic sync already stored the item; storing it by hand again is
        // what a `manual_sync` handler does.
        Kind::Connect => registration.register().await?,
        // A chat's "join": move this connection to another channel. Refused
        // values (too long, bad characters) and released connections are
        // errors, as a user would see them.
        Kind::Message => {
            let channel = json
                .as_ref()
                .ok()
                .and_then(|body| body.get("channel"))
                .and_then(serde_json::Value::as_str);
            if let Some(channel) = channel {
                registration.set("channel", channel).await?;
            }
        }
        Kind::Close => registration.release().await?,
    }
    match json {
        Ok(serde_json::Value::String(s)) if s == "fail" => Err("asked to fail".into()),
        _ => Ok(()),
    }
}

/// A pipeline with its registry, rebuilt when it has grown (see
/// [`REBUILD_EVERY`] and [`MAX_ITEMS`]) so memory stays flat across runs.
pub struct Harness {
    pipeline: Pipeline,
    memory: Arc<Memory>,
    runs: u64,
    rebuilds: u64,
}

impl Harness {
    /// A fresh pipeline on an empty memory registry.
    pub async fn new() -> Self {
        let memory = Arc::new(Memory::new());
        let pipeline = Pipeline::new(
            config(),
            Registry::Memory(Arc::clone(&memory)),
            offline_sdk_config().await,
            None,
            handler,
        );
        Harness {
            pipeline,
            memory,
            runs: 0,
            rebuilds: 0,
        }
    }

    /// Runs one input exactly as the Lambda entry reads an invocation
    /// payload, answering the response's status. Any result is fine;
    /// returning at all is the property.
    pub async fn run(&mut self, bytes: &[u8]) -> Result<i64, lawcket_runtime::Error> {
        if self.runs >= REBUILD_EVERY || self.memory.len() > MAX_ITEMS {
            let rebuilds = self.rebuilds + 1;
            *self = Harness::new().await;
            self.rebuilds = rebuilds;
        }
        self.runs += 1;
        // This pipeline has no authorizer, so an authorizer invocation is an
        // error and every answer is an event's response, with a status.
        run_lambda_payload(&self.pipeline, bytes)
            .await
            .map(|output| output.status_code().unwrap_or_default())
    }

    /// How many items the registry holds now.
    pub fn items(&self) -> usize {
        self.memory.len()
    }

    /// How many times the pipeline was rebuilt.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }
}
