//! Serving invocations from the Lambda Runtime API through lambda_runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

use crate::pipeline::Pipeline;
use crate::Error;

/// Variables the Lambda service always sets; lambda_runtime panics without them,
/// so their absence is reported as a configuration error first.
const REQUIRED: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

pub(crate) async fn serve(pipeline: Arc<Pipeline>) -> Result<(), Error> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|var| std::env::var_os(var).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "AWS_LAMBDA_RUNTIME_API is set but {} not; the Lambda service sets all of them",
            missing.join(", ")
        )));
    }
    let service = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let pipeline = Arc::clone(&pipeline);
        async move {
            pipeline.run_json(event.payload).await.map_err(|error| {
                tracing::error!(%error, "invocation failed");
                diagnostic(&error)
            })
        }
    });
    lambda_runtime::run(service)
        .await
        .map_err(|e| Error::Config(format!("the Lambda runtime client stopped: {e}")))
}

fn diagnostic(error: &Error) -> Diagnostic {
    let kind = match error {
        Error::MalformedEvent(_) => "MalformedEvent",
        Error::Base64(_) => "Base64",
        Error::TooLarge { .. } => "TooLarge",
        Error::Body { .. } => "Body",
        Error::Serialize(_) => "Serialize",
        Error::Registry { .. } => "Registry",
        Error::Gone { .. } => "Gone",
        Error::Released { .. } => "Released",
        Error::Post { .. } => "Post",
        Error::Rejected { .. } => "Rejected",
        Error::Config(_) => "Config",
        Error::Handler { .. } => "Handler",
    };
    Diagnostic {
        error_type: format!("lawcket::Error::{kind}"),
        error_message: error.to_string(),
    }
}
