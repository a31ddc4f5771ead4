//! What the attribute configures, as the runtime reads it: the table, the
//! sync fields and their lifetime, middleware, plugins, subprotocols, the
//! authorizer and publish settings.
//! It describes; building clients and registries from it is `host`'s job.

use std::time::Duration;

use crate::authorizer::{Authorizer, IntoAuthorizer};
use crate::error::Error;
use crate::host::Store;
use crate::invocation::{Handler, IntoMiddleware, IntoPlugin, Middleware};
use crate::limits::{DEFAULT_CONCURRENCY, DEFAULT_TTL};
use crate::sync::{Dynamic, Schema, Source, SyncField, SyncValue};

/// Where the table name comes from.
#[derive(Clone, Debug)]
pub enum Table {
    /// Fixed when the binary was built (`table = env!("CONNECTIONS_TABLE")` or a literal).
    Named(String),
    /// Read from an environment variable when the process starts
    /// (`table = lawcket::table_from_env("CONNECTIONS_TABLE")`).
    FromEnv(&'static str),
}

impl<S: Into<String>> From<S> for Table {
    fn from(name: S) -> Self {
        Table::Named(name.into())
    }
}

/// What `table = ...` accepts: a string (a literal or `env!("VAR")`) or a
/// [`Table`] (such as [`table_from_env`]).
#[diagnostic::on_unimplemented(
    message = "`table` must be a string or `lawcket::table_from_env(\"VAR\")`, not `{Self}`",
    label = "not a table name",
    note = "write `table = env!(\"CONNECTIONS_TABLE\")` (read when building) or `table = lawcket::table_from_env(\"CONNECTIONS_TABLE\")` (read when the process starts)"
)]
pub trait IntoTable {
    /// The table source.
    fn into_table(self) -> Table;
}

#[diagnostic::do_not_recommend]
impl<T: Into<Table>> IntoTable for T {
    fn into_table(self) -> Table {
        self.into()
    }
}

/// The table name is read from the environment variable `var` once, when the
/// process starts, instead of at compile time.
///
/// ```no_run
/// #[lawcket::handler(table = lawcket::table_from_env("CONNECTIONS_TABLE"))]
/// async fn handler() {}
/// ```
pub fn table_from_env(var: &'static str) -> Table {
    Table::FromEnv(var)
}

impl Table {
    /// The table name, reading the environment for [`Table::FromEnv`].
    pub fn resolve(&self) -> Result<String, Error> {
        let name = match self {
            Table::Named(name) => name.clone(),
            Table::FromEnv(var) => std::env::var(var).map_err(|_| Error::Env {
                var: (*var).to_owned(),
                problem: "the connections table name is read from it, and it is not set".into(),
            })?,
        };
        if name.trim().is_empty() {
            return Err(Error::Config("the connections table name is empty".into()));
        }
        Ok(name)
    }
}

/// Everything the attribute says, as the runtime reads it.
pub struct Config {
    pub(crate) table: Table,
    pub(crate) schema: Schema,
    pub(crate) auto_sync: bool,
    pub(crate) middleware: Vec<(String, Box<dyn Middleware>)>,
    pub(crate) plugins: Vec<(String, Box<dyn Handler>)>,
    pub(crate) local_page: Option<&'static str>,
    pub(crate) indexes: Vec<(String, String)>,
    pub(crate) concurrency: usize,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) authorizer: Option<Box<dyn Authorizer>>,
}

impl Config {
    /// A configuration for `table` with no sync fields and the default TTL.
    pub fn new(table: impl IntoTable) -> Self {
        Config {
            table: table.into_table(),
            schema: Schema {
                fields: Vec::new(),
                ttl: DEFAULT_TTL,
            },
            auto_sync: true,
            middleware: Vec::new(),
            plugins: Vec::new(),
            local_page: None,
            indexes: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            subprotocols: Vec::new(),
            authorizer: None,
        }
    }

    /// Adds a fixed sync field written with every connection.
    pub fn sync_field(self, name: &str, value: impl Into<SyncValue>) -> Self {
        self.field(name, Source::Fixed(value.into()))
    }

    /// Adds a sync field whose value comes from the `$connect` request.
    pub fn sync_dynamic(self, name: &str, dynamic: Dynamic) -> Self {
        self.field(name, Source::Dynamic(dynamic))
    }

    fn field(mut self, name: &str, source: Source) -> Self {
        self.schema.fields.push(SyncField {
            name: name.to_owned(),
            source,
        });
        self
    }

    /// Turns automatic sync off: the handler stores and releases connections
    /// itself through [`Registration`](crate::Registration).
    pub fn manual_sync(mut self) -> Self {
        self.auto_sync = false;
        self
    }

    /// Adds a middleware, run in order before the handler on every event.
    pub fn middleware(mut self, name: &str, middleware: impl IntoMiddleware) -> Self {
        self.middleware
            .push((name.to_owned(), middleware.into_middleware()));
        self
    }

    /// Adds a plugin, run concurrently with the handler with the same arguments.
    pub fn plugin<Args>(mut self, name: &str, plugin: impl IntoPlugin<Args>) -> Self {
        self.plugins.push((name.to_owned(), plugin.into_plugin()));
        self
    }

    /// Sets how long a registry item lives after `$connect` (DynamoDB TTL).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.schema.ttl = ttl;
        self
    }

    /// Declares a global secondary index on the sync field `field`: mass
    /// publishes matching that field Query it instead of scanning the table.
    pub fn index(mut self, field: &str, index: &str) -> Self {
        self.indexes.push((field.to_owned(), index.to_owned()));
        self
    }

    /// Posts in flight at once during a mass publish.
    pub fn concurrency(mut self, posts: usize) -> Self {
        self.concurrency = posts.max(1);
        self
    }

    /// The WebSocket subprotocols the handler speaks: `$connect` answers with
    /// the first of the client's offers that is one of them (the client's
    /// order decides), and refuses (400) a client that offered only others.
    pub fn subprotocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.subprotocols
            .extend(protocols.into_iter().map(Into::into));
        self
    }

    /// The REQUEST authorizer the same binary answers with, which the local
    /// gateway runs before `$connect`.
    pub fn authorizer(mut self, authorizer: impl IntoAuthorizer) -> Self {
        self.authorizer = Some(authorizer.into_authorizer());
        self
    }

    /// The HTML page the local gateway serves at `/` (never used on Lambda).
    pub fn local_page(mut self, html: &'static str) -> Self {
        self.local_page = Some(html);
        self
    }

    /// This configuration's DynamoDB table as a store (a table named by
    /// `table_from_env` is read from the environment now).
    pub(crate) fn dynamo_store(&self) -> Result<Store<'_>, Error> {
        Ok(Store::Dynamo {
            table: self.table.resolve()?,
            indexes: &self.indexes,
            page_size: None,
        })
    }

    /// Refuses what `#[lawcket::handler]` refuses at compile time (reserved or
    /// repeated sync fields, bad value rules), for configurations built by hand.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.schema.validate()?;
        for (i, protocol) in self.subprotocols.iter().enumerate() {
            lawcket_rules::check_subprotocol(protocol).map_err(Error::Config)?;
            if self.subprotocols[..i].contains(protocol) {
                return Err(Error::Config(format!(
                    "subprotocol {protocol:?} is listed twice"
                )));
            }
        }
        if self.authorizer.is_none() {
            if let Some(field) = self
                .schema
                .fields
                .iter()
                .find(|f| matches!(&f.source, Source::Dynamic(d) if d.needs_authorizer()))
            {
                return Err(Error::Config(format!(
                    "sync field `{}` comes from the authorizer, and there is none: add \
                     `authorizer = ..`",
                    field.name
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn names<T: ?Sized>(list: &[(String, Box<T>)]) -> Vec<&str> {
            list.iter().map(|(n, _)| n.as_str()).collect()
        }
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("schema", &self.schema)
            .field("auto_sync", &self.auto_sync)
            .field("middleware", &names(&self.middleware))
            .field("plugins", &names(&self.plugins))
            .field("indexes", &self.indexes)
            .field("concurrency", &self.concurrency)
            .field("subprotocols", &self.subprotocols)
            .field("authorizer", &self.authorizer.is_some())
            .finish_non_exhaustive()
    }
}
