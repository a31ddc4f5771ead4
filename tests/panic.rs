//! A handler that panics is reported as an error invocation, and the same
//! process serves the next event: the pipeline served through the real
//! lambda_runtime client, in this process, against a Runtime API served here.

mod support;

use std::sync::Arc;

use lawcket_runtime::test_util::{offline_sdk_config, serve_lambda, Memory, Pipeline, Registry};
use lawcket_runtime::{BoxError, Config, Invocation};
use support::fixture;
use support::function::{error_type, status};
use support::runtime_api::{Outcome, RuntimeApi};

#[tokio::test]
async fn a_panicking_handler_is_an_error_report_and_the_process_serves_on() {
    let runtime = RuntimeApi::start().await;
    // lambda_runtime reads its configuration from the environment; this test
    // binary holds this one test, so nothing else reads it meanwhile.
    for (name, value) in runtime.env() {
        std::env::set_var(name, value);
    }
    let handler = |invocation: Invocation| async move {
        if invocation
            .event()
            .text()
            .is_some_and(|t| t.contains("boom"))
        {
            panic!("the handler fell over");
        }
        Ok::<(), BoxError>(())
    };
    let registry = Registry::Memory(Arc::new(Memory::new()));
    let sdk = offline_sdk_config().await;
    let pipeline = Pipeline::new(Config::new("t"), registry, sdk, None, handler);
    let serving = tokio::spawn(serve_lambda(Arc::new(pipeline)));

    let mut boom = fixture("message-json.json");
    boom["body"] = serde_json::json!("boom");
    let outcome = runtime.invoke(boom).await;
    assert_eq!(error_type(&outcome), "lawcket::Error::Handler");
    let Outcome::Error(report) = &outcome else {
        unreachable!()
    };
    let message = report["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("panicked: the handler fell over"),
        "{message}"
    );

    // The same process, the next events.
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert_eq!(
        status(&runtime.invoke(fixture("disconnect.json")).await),
        200
    );
    assert!(!serving.is_finished(), "the runtime stopped serving");
    serving.abort();
}
