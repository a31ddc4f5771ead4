//! How the local gateway behaves, read from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::connection::is_stage;
use crate::env::{count, flag, seconds, var};
use crate::error::Error;
use crate::limits::{
    IDLE_TIMEOUT, INTEGRATION_TIMEOUT, MAX_CONNECTION_DURATION, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES,
};

/// Invocations in flight at once unless configured. Lambda's account default
/// is 1,000; a laptop's sockets and DynamoDB Local are the bound here.
const CONCURRENCY: usize = 100;

/// A client that has not completed its HTTP handshake in this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client whose socket takes no data for this long (it stopped reading, or
/// vanished without closing) is dropped with 1006. AWS documents nothing of
/// the kind; without a bound, such a client would be served, and stored,
/// until TCP gives up, a quarter of an hour later.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes posted to one connection and not yet written to its socket, above
/// which a post answers 429 (eight messages of the largest size).
const SEND_BUFFER: usize = 8 * MAX_MESSAGE_BYTES;

/// Settings of the local gateway. [`Settings::from_env`] reads them from the
/// variables below; the defaults are API Gateway's own limits.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `LAWCKET_LOCAL_ADDR` | `127.0.0.1:3001` | address to listen on |
/// | `LAWCKET_LOCAL_STAGE` | `local` | `requestContext.stage` |
/// | `LAWCKET_LOCAL_ROUTE_SELECTION` | `$request.body.action` | route selection expression |
/// | `LAWCKET_LOCAL_ROUTES` | (none) | comma-separated custom route keys, `*` for any; others go to `$default` |
/// | `LAWCKET_LOCAL_IDLE_TIMEOUT` | `600` | seconds without data either way before closing |
/// | `LAWCKET_LOCAL_MAX_DURATION` | `7200` | seconds before any connection is closed |
/// | `LAWCKET_LOCAL_REGISTRY` | `memory` | `memory`, or `dynamodb` for the configured table |
/// | `LAWCKET_LOCAL_CONCURRENCY` | `100` | invocations in flight; later events wait their turn, `$connect` and `$disconnect` first |
/// | `LAWCKET_LOCAL_INTEGRATION_TIMEOUT` | `29` | seconds an invocation may run before its client gets API Gateway's timeout answer |
/// | `LAWCKET_LOCAL_HANDSHAKE_TIMEOUT` | `10` | seconds a client has to complete its HTTP handshake |
/// | `LAWCKET_LOCAL_WRITE_TIMEOUT` | `10` | seconds a write to a client may stall before it is dropped with 1006 |
/// | `LAWCKET_LOCAL_ORIGINS` | (none) | comma-separated origins whose pages may connect, besides the gateway's own |
/// | `LAWCKET_LOCAL_ACCEPT_BINARY` | `false` | `true` passes binary frames on as base64 messages instead of closing with 1003 |
/// | `LAWCKET_LOCAL_SEND_BUFFER` | `1048576` | bytes queued for one client before posts to it answer 429 |
/// | `LAWCKET_LOCAL_ROUTE_RESPONSES` | `$default` | comma-separated route keys with a route response (the handler's reply goes to the client), `*` for all, empty for none |
/// | `LAWCKET_LOCAL_IDENTITY_SOURCES` | (none) | the authorizer's identity sources, e.g. `route.request.querystring.token`: a `$connect` without one gets 401 and the authorizer is not run |
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
    /// Close after this long without data either way (API Gateway: 10 minutes).
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
    /// Invocations in flight at once; events beyond wait for a slot.
    pub concurrency: usize,
    /// How long API Gateway waits for an invocation (at most 29 s there).
    pub integration_timeout: Duration,
    /// How long a client has to complete its HTTP request.
    pub handshake_timeout: Duration,
    /// How long a write to a client may stall before it is dropped.
    pub write_timeout: Duration,
    /// Origins, besides the gateway's own, whose pages may open a WebSocket.
    pub origins: Vec<String>,
    /// Pass binary frames on as base64 messages (API Gateway closes with 1003).
    pub accept_binary: bool,
    /// Bytes queued for one client before posts to it answer 429.
    pub send_buffer: usize,
    /// Route keys with a route response; `None` means every route. deploy/
    /// gives `$default` one.
    pub route_responses: Option<Vec<String>>,
    /// The authorizer's identity sources (`route.request.header.Name`,
    /// `route.request.querystring.name`), all required before it runs.
    pub identity_sources: Vec<String>,
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
            concurrency: CONCURRENCY,
            integration_timeout: INTEGRATION_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            origins: Vec::new(),
            accept_binary: false,
            send_buffer: SEND_BUFFER,
            route_responses: Some(vec!["$default".into()]),
            identity_sources: Vec::new(),
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
                list => Some(list_of(list)),
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
        if let Some(n) = count("LAWCKET_LOCAL_CONCURRENCY", 1, 100_000)? {
            settings.concurrency = n;
        }
        if let Some(timeout) = seconds("LAWCKET_LOCAL_INTEGRATION_TIMEOUT")? {
            // API Gateway's range ("Integration timeout: 50 milliseconds - 29
            // seconds", WebSocket API quotas); a longer one would hide a
            // handler that fails there.
            if !(Duration::from_millis(50)..=INTEGRATION_TIMEOUT).contains(&timeout) {
                return Err(Error::Env {
                    var: "LAWCKET_LOCAL_INTEGRATION_TIMEOUT".into(),
                    problem: format!("{timeout:?}: API Gateway allows 0.05 to 29 seconds"),
                });
            }
            settings.integration_timeout = timeout;
        }
        if let Some(timeout) = seconds("LAWCKET_LOCAL_HANDSHAKE_TIMEOUT")? {
            settings.handshake_timeout = timeout;
        }
        if let Some(timeout) = seconds("LAWCKET_LOCAL_WRITE_TIMEOUT")? {
            settings.write_timeout = timeout;
        }
        if let Some(origins) = var("LAWCKET_LOCAL_ORIGINS") {
            settings.origins = origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(accept) = flag("LAWCKET_LOCAL_ACCEPT_BINARY")? {
            settings.accept_binary = accept;
        }
        if let Some(bytes) = count("LAWCKET_LOCAL_SEND_BUFFER", MAX_MESSAGE_BYTES, 1 << 30)? {
            settings.send_buffer = bytes;
        }
        // Set but empty means no route has a route response.
        if let Ok(routes) = std::env::var("LAWCKET_LOCAL_ROUTE_RESPONSES") {
            settings.route_responses = match routes.trim() {
                "*" => None,
                list => Some(list_of(list)),
            };
        }
        if let Some(sources) = var("LAWCKET_LOCAL_IDENTITY_SOURCES") {
            settings.identity_sources = list_of(&sources);
            if let Some(bad) = settings
                .identity_sources
                .iter()
                .find(|s| identity_source(s).is_none())
            {
                return Err(Error::Env {
                    var: "LAWCKET_LOCAL_IDENTITY_SOURCES".into(),
                    problem: format!(
                        "{bad:?}: expected `route.request.header.<name>` or \
                         `route.request.querystring.<name>`"
                    ),
                });
            }
        }
        Ok(settings)
    }

    /// Whether the route has a route response: its reply goes to the client.
    pub(crate) fn route_response(&self, route: &str) -> bool {
        self.route_responses
            .as_ref()
            .is_none_or(|routes| routes.iter().any(|r| r == route))
    }
}

/// An identity source as (`header` | `querystring`, name).
pub(crate) fn identity_source(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix("route.request.")?;
    let (origin, name) = rest.split_once('.')?;
    matches!(origin, "header" | "querystring")
        .then_some((origin, name))
        .filter(|(_, name)| !name.is_empty())
}

fn list_of(list: &str) -> Vec<String> {
    list.split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
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
