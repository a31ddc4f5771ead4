//! How the local gateway behaves, read from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::connection::is_stage;
use crate::env::{seconds, var};
use crate::error::Error;
use crate::limits::{IDLE_TIMEOUT, MAX_CONNECTION_DURATION, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES};

/// Settings of the local gateway. [`Settings::from_env`] reads them from the
/// variables below; the defaults are API Gateway's own limits.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `LAWCKET_LOCAL_ADDR` | `127.0.0.1:3001` | address to listen on |
/// | `LAWCKET_LOCAL_STAGE` | `local` | `requestContext.stage` |
/// | `LAWCKET_LOCAL_ROUTE_SELECTION` | `$request.body.action` | route selection expression |
/// | `LAWCKET_LOCAL_ROUTES` | (none) | comma-separated custom route keys, `*` for any; others go to `$default` |
/// | `LAWCKET_LOCAL_IDLE_TIMEOUT` | `600` | seconds without a client message before closing |
/// | `LAWCKET_LOCAL_MAX_DURATION` | `7200` | seconds before any connection is closed |
/// | `LAWCKET_LOCAL_REGISTRY` | `memory` | `memory`, or `dynamodb` for the configured table |
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Stage name in events.
    pub stage: String,
    /// Path into a JSON body for route selection (`$request.body.action` → `["action"]`).
    pub route_selection: Vec<String>,
    /// Custom route keys; `None` means every selected value is a route.
    pub routes: Option<Vec<String>>,
    /// Close after this long without a client message (API Gateway: 10 minutes).
    pub idle_timeout: Duration,
    /// Close every connection after this long (API Gateway: 2 hours).
    pub max_duration: Duration,
    /// Largest frame accepted (API Gateway: 32 KiB).
    pub max_frame_bytes: usize,
    /// Largest message accepted (API Gateway: 128 KiB).
    pub max_message_bytes: usize,
    /// Page served at `/` to plain HTTP requests.
    pub page: Option<&'static str>,
    /// Where connections are kept.
    pub registry: LocalRegistry,
}

/// Where the local gateway keeps connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalRegistry {
    /// In memory (the default).
    #[default]
    Memory,
    /// In the configured DynamoDB table, through the SDK's usual settings.
    Dynamo,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 3001)),
            stage: "local".into(),
            route_selection: vec!["action".into()],
            routes: Some(Vec::new()),
            idle_timeout: IDLE_TIMEOUT,
            max_duration: MAX_CONNECTION_DURATION,
            max_frame_bytes: MAX_FRAME_BYTES,
            max_message_bytes: MAX_MESSAGE_BYTES,
            page: None,
            registry: LocalRegistry::Memory,
        }
    }
}

impl Settings {
    /// Defaults overridden by the `LAWCKET_LOCAL_*` variables.
    pub fn from_env() -> Result<Self, Error> {
        let mut settings = Settings::default();
        if let Some(addr) = var("LAWCKET_LOCAL_ADDR") {
            settings.addr = addr.parse().map_err(|e| Error::Env {
                var: "LAWCKET_LOCAL_ADDR".into(),
                problem: format!("{addr:?} is not an address like 127.0.0.1:3001: {e}"),
            })?;
        }
        if let Some(stage) = var("LAWCKET_LOCAL_STAGE") {
            // API Gateway's rule for stage names, which lawcket checks in events.
            if !is_stage(&stage) {
                return Err(Error::Env {
                    var: "LAWCKET_LOCAL_STAGE".into(),
                    problem: format!(
                        "{stage:?}: a stage name holds letters, digits, - and _ (at most 128)"
                    ),
                });
            }
            settings.stage = stage;
        }
        if let Some(expression) = var("LAWCKET_LOCAL_ROUTE_SELECTION") {
            settings.route_selection = route_selection(&expression)?;
        }
        if let Some(routes) = var("LAWCKET_LOCAL_ROUTES") {
            settings.routes = match routes.trim() {
                "*" => None,
                list => Some(
                    list.split(',')
                        .map(|r| r.trim().to_owned())
                        .filter(|r| !r.is_empty())
                        .collect(),
                ),
            };
        }
        settings.registry = match var("LAWCKET_LOCAL_REGISTRY").as_deref() {
            None | Some("memory") => LocalRegistry::Memory,
            Some("dynamodb") => LocalRegistry::Dynamo,
            Some(other) => {
                return Err(Error::Env {
                    var: "LAWCKET_LOCAL_REGISTRY".into(),
                    problem: format!("{other:?}: expected `memory` or `dynamodb`"),
                })
            }
        };
        if let Some(idle) = seconds("LAWCKET_LOCAL_IDLE_TIMEOUT")? {
            settings.idle_timeout = idle;
        }
        if let Some(max) = seconds("LAWCKET_LOCAL_MAX_DURATION")? {
            settings.max_duration = max;
        }
        Ok(settings)
    }
}

/// `$request.body.a.b` → `["a", "b"]`.
fn route_selection(expression: &str) -> Result<Vec<String>, Error> {
    let path = expression
        .strip_prefix("$request.body.")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::Env {
            var: "LAWCKET_LOCAL_ROUTE_SELECTION".into(),
            problem: format!(
                "route selection expression {expression:?} is not supported; use `$request.body.<field>`"
            ),
        })?;
    Ok(path.split('.').map(str::to_owned).collect())
}
