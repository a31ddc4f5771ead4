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
         without lawcket's `local` feature, the local gateway: build with \
         `lawcket = { ..., features = [\"local\"] }` to serve WebSocket clients here"
            .into(),
    ))
}

/// Targets never logged below `info`, whatever filter is asked for: the SDK's
/// signing and HTTP layers print canonical requests and signed headers
/// (`Authorization`, `X-Amz-Security-Token`) at debug and trace, and
/// lambda_runtime stops serving on a payload that is not UTF-8 while its trace
/// logging is on. A prefix covers the target's modules.
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

/// Whether an event or span of `target` at `level` may be logged at all.
fn allowed(target: &str, level: &tracing::Level) -> bool {
    let capped = CAPPED.iter().any(|cap| {
        target
            .strip_prefix(cap)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !capped || *level <= tracing::Level::INFO
}

/// What a log level variable asks for. `Targets` reads `level` and
/// `target=level` lists (`info,lawcket_runtime=debug`), RUST_LOG's common form;
/// EnvFilter's span directives (`[span]=debug`) would bring the regex crates
/// into every binary, so they are skipped (as are empty items and spaces after
/// commas, which EnvFilter also ignored). Levels are read in any case (Lambda's
/// are upper case), and Lambda's `FATAL`, which tracing lacks, is `error`; a
/// list that does not parse is `info`.
fn targets(level: &str) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::Targets;
    let items: Vec<&str> = level
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty() && !item.starts_with('['))
        .map(|item| match item.eq_ignore_ascii_case("fatal") {
            true => "error",
            false => item,
        })
        .collect();
    match items.is_empty() {
        true => Ok(Targets::new().with_default(tracing::Level::INFO)),
        false => items.join(",").parse::<Targets>(),
    }
    .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

fn init_tracing(on_lambda: bool) {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Lambda's advanced logging controls set AWS_LAMBDA_LOG_LEVEL; RUST_LOG otherwise.
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let asked = targets(&level);
    // A second filter the user's cannot widen: no directive, however specific
    // (`aws_smithy_runtime::client::orchestrator=trace`), lets a capped target
    // through below info.
    let filter = asked.and(filter_fn(|meta| allowed(meta.target(), meta.level())));
    // CloudWatch stamps every line and shows no colours (lawcket builds
    // tracing-subscriber without them, but another crate may turn them on).
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    let layer = if on_lambda {
        layer.without_time().with_ansi(false).boxed()
    } else {
        layer.boxed()
    };
    let result = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    drop(result); // A subscriber installed by the user first wins.
}

#[cfg(test)]
mod tests {
    use super::{allowed, targets};
    use tracing::Level;

    #[test]
    fn log_levels_read_as_lambda_and_rust_log_write_them() {
        let lawcket = "lawcket_runtime::pipeline";
        assert!(targets("DEBUG").would_enable(lawcket, &Level::DEBUG));
        assert!(!targets("WARN").would_enable(lawcket, &Level::INFO));
        let listed = targets("warn,lawcket_runtime=debug");
        assert!(listed.would_enable(lawcket, &Level::DEBUG));
        assert!(!listed.would_enable("hyper", &Level::INFO));
        assert!(targets("FATAL").would_enable(lawcket, &Level::ERROR));
        assert!(!targets("FATAL").would_enable(lawcket, &Level::WARN));
        assert!(targets("lawcket=loud").would_enable(lawcket, &Level::INFO));
        assert!(!targets("lawcket=loud").would_enable(lawcket, &Level::DEBUG));
        // EnvFilter's leniency: empty items and spaces after commas.
        assert!(targets("info,").would_enable("lambda_runtime", &Level::INFO));
        let spaced = targets("warn, lawcket_runtime=debug");
        assert!(spaced.would_enable(lawcket, &Level::DEBUG));
        // A span directive is skipped, not read as a target that silences all.
        let span = targets("info,[lawcket]=trace");
        assert!(span.would_enable(lawcket, &Level::INFO));
        assert!(targets("[lawcket]=trace").would_enable(lawcket, &Level::INFO));
    }

    #[test]
    fn capped_targets_never_log_below_info() {
        for target in [
            "aws_sigv4",
            "aws_sigv4::http_request::sign",
            "aws_smithy_runtime::client::orchestrator",
            "hyper_util::client::legacy::pool",
            "lambda_runtime::layers::api_response",
        ] {
            assert!(!allowed(target, &Level::TRACE), "{target}");
            assert!(!allowed(target, &Level::DEBUG), "{target}");
            assert!(allowed(target, &Level::INFO), "{target}");
        }
        assert!(allowed("lawcket_runtime::pipeline", &Level::TRACE));
        assert!(
            allowed("aws_sigv4_extra", &Level::TRACE),
            "a prefix is a module"
        );
    }
}
