//! The process entry the generated `main` calls: cold-start work once (tracing,
//! tokio, the host), then serve Lambda invocations, or run the local gateway
//! outside Lambda.

use std::sync::Arc;

use crate::config::Config;
use crate::endpoint::override_from_env;
use crate::error::{chain, Error};
use crate::host::{Host, Sdk};
use crate::invocation::Handler;
use crate::pipeline::Pipeline;

/// Runs the process: on Lambda (`AWS_LAMBDA_RUNTIME_API` set) serves invocations
/// through lambda_runtime; elsewhere starts the local gateway. Exits the process
/// with status 1 and a logged reason if it cannot start.
pub fn main(config: Config, handler: impl Handler) {
    // Everything past this point is compiled once, here, not in the user's crate.
    run(config, Box::new(handler))
}

fn run(config: Config, handler: Box<dyn Handler>) {
    // trybuild builds its cases with `--cfg trybuild` and runs the pass cases:
    // they check that the generated `main` compiles, so it returns at once. A
    // compile-time switch: no shipped binary reads anything for it.
    if cfg!(trybuild) {
        return;
    }
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_tracing(on_lambda);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "could not start tokio".into(),
            source,
        })
        .and_then(|runtime| {
            runtime.block_on(async {
                if on_lambda {
                    serve_lambda(config, handler).await
                } else {
                    serve_local(config, handler).await
                }
            })
        });
    if let Err(error) = result {
        tracing::error!(error = %chain(&error), "lawcket stopped");
        std::process::exit(1);
    }
}

async fn serve_lambda(config: Config, handler: Box<dyn Handler>) -> Result<(), Error> {
    let host = Host::build(config.dynamo_store()?, Sdk::Environment).await?;
    let pipeline = Pipeline::assemble(config, host, override_from_env(), handler)?;
    // Boxed: lambda_runtime's service stack is a deep type; boxing keeps its
    // layout out of every enclosing future.
    Box::pin(crate::lambda::serve(Arc::new(pipeline))).await
}

#[cfg(feature = "local")]
async fn serve_local(config: Config, handler: Box<dyn Handler>) -> Result<(), Error> {
    crate::local::serve(config, handler).await
}

#[cfg(not(feature = "local"))]
async fn serve_local(_: Config, _: Box<dyn Handler>) -> Result<(), Error> {
    Err(Error::Config(
        "AWS_LAMBDA_RUNTIME_API is not set, so this is not Lambda, and this binary was built \
         without lawcket's `local` feature (the local gateway)"
            .into(),
    ))
}

/// Targets kept at `info` whatever level is asked for: the SDK's signing and
/// HTTP layers print canonical requests and headers (`Authorization`,
/// `X-Amz-Security-Token`) at debug and trace, and lambda_runtime stops serving
/// on a payload that is not UTF-8 while its trace logging is on.
const CAPPED: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "lambda_runtime::layers::api_response",
];

fn init_tracing(on_lambda: bool) {
    use tracing_subscriber::EnvFilter;
    // Lambda's advanced logging controls set AWS_LAMBDA_LOG_LEVEL; RUST_LOG otherwise.
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = CAPPED.iter().fold(
        EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
        |filter, target| match format!("{target}=info").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        },
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // CloudWatch stamps every line and shows no colours.
    let result = if on_lambda {
        builder.without_time().with_ansi(false).try_init()
    } else {
        builder.try_init()
    };
    drop(result); // A subscriber installed by the user first wins.
}
