//! The connection's entry in the registry, as the handler sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::clock;
use crate::connection::{Connection, Kind};
use crate::error::{chain, Error};
use crate::event::Event;
use crate::registry::{Item, Registry};
use crate::sync::{Schema, SyncValue};

/// The connection's registration in the connections table: store it by hand
/// (with `manual_sync`), release it, or change a sync field of a live connection.
///
/// ```
/// # async fn demo(registration: lawcket::Registration) -> Result<(), lawcket::Error> {
/// // Join another channel. The write is conditional: a connection that has
/// // already been released is never written back.
/// registration.set("channel", "#random").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Registration {
    connection: Connection,
    event: Event,
    registry: Registry,
    schema: Arc<Schema>,
    /// Set by `register`, so a failing `$connect` removes what it stored.
    registered: Arc<AtomicBool>,
    /// Set when `register` could not store: the `$connect` must then be
    /// refused even if the handler goes on, or the connection is untracked.
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("connection_id", &self.connection.id())
            .field("registry", &self.registry.describe())
            .finish_non_exhaustive()
    }
}

impl Registration {
    pub(crate) fn new(
        connection: Connection,
        event: Event,
        registry: Registry,
        schema: Arc<Schema>,
    ) -> Self {
        Registration {
            connection,
            event,
            registry,
            schema,
            registered: Arc::default(),
            failed: Arc::default(),
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }

    pub(crate) fn register_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The connection this registration is for.
    pub fn connection_id(&self) -> &str {
        self.connection.id()
    }

    /// Stores the connection with its sync fields, as automatic sync does on
    /// `$connect` (for handlers declared with `manual_sync`). A dynamic field
    /// that is missing or invalid is a 400 rejection naming it.
    ///
    /// Only on `$connect`: the dynamic fields come from its request. If the
    /// handler then fails, the item is removed again.
    pub async fn register(&self) -> Result<(), Error> {
        if self.connection.kind() != Kind::Connect {
            return Err(Error::Config(format!(
                "Registration::register() is for $connect (the request that carries the \
                 sync fields), not {:?}",
                self.connection.kind()
            )));
        }
        let item = item(&self.schema, &self.connection, &self.event)?;
        if let Err(error) = store(&self.registry, &item).await {
            self.failed.store(true, Ordering::SeqCst);
            return Err(error);
        }
        self.registered.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Removes the connection from the table.
    pub async fn release(&self) -> Result<(), Error> {
        self.registry.release(self.connection.id()).await
    }

    /// Sets the declared sync field `field` of this live connection. Only
    /// declared fields can be written, with values that pass their rules; a
    /// connection no longer in the table is not written back
    /// ([`Error::Released`]).
    pub async fn set(&self, field: &str, value: impl Into<SyncValue>) -> Result<(), Error> {
        let value = value.into();
        self.schema.field(field)?.check(&value)?;
        if self
            .registry
            .update(self.connection.id(), field, &value)
            .await?
        {
            Ok(())
        } else {
            Err(Error::Released {
                connection_id: self.connection.id().to_owned(),
            })
        }
    }
}

/// Stores a `$connect`'s item. If the store fails it may still land later (a
/// request that timed out can reach DynamoDB after lawcket gave up on it), and
/// the connection is about to be refused: it is marked refused in its place,
/// which a late store cannot overwrite. If even that fails, the item's TTL is
/// the last net.
pub(crate) async fn store(registry: &Registry, item: &Item) -> Result<(), Error> {
    let Err(error) = registry.store(item).await else {
        return Ok(());
    };
    match registry.refuse(&item.connection_id, item.ttl).await {
        Ok(()) => tracing::warn!(
            error = %chain(&error),
            "storing the connection failed; marked it refused"
        ),
        Err(undo) => tracing::error!(
            error = %chain(&error), undo = %chain(&undo),
            "storing the connection failed and marking it refused failed too; its TTL will reap it"
        ),
    }
    Err(error)
}

/// The registry item for a `$connect`: the sync fields' values (dynamic ones
/// checked), when it opened, and when its TTL expires.
pub(crate) fn item(schema: &Schema, connection: &Connection, event: &Event) -> Result<Item, Error> {
    let now = clock::now();
    let fields = schema
        .fields
        .iter()
        .map(|field| Ok((field.name.clone(), field.value(event)?)))
        .collect::<Result<_, Error>>()?;
    Ok(Item {
        connection_id: connection.id().to_owned(),
        domain_name: connection.domain_name().to_owned(),
        stage: connection.stage().to_owned(),
        fields,
        connected_at: if connection.connected_at() > 0 {
            connection.connected_at()
        } else {
            now.as_millis() as i64
        },
        ttl: (now + schema.ttl).as_secs() as i64,
    })
}
