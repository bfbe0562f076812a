//! Opening a store or an inbox from its [`BackendUrl`].

use std::sync::Arc;

use super::url::{BackendUrl, OpenError, SqliteDurability};
use crate::idempotency::IdempotencyStore;
use crate::inbox::{Inbox, InboxOperator};

/// What the inbox is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// For the app that takes deliveries in and handles them: created when it is not there.
    Serve,
    /// For a tool that only looks (stats, lists, entries): it must be there already, and
    /// nothing is created or written (a SQLite file is opened read-only).
    Inspect,
    /// For a tool that replays: it must be there already.
    Operate,
}

/// An inbox opened from a URL: the queue an endpoint runs ([`inbox`](Self::inbox)) and the
/// operator view tools read and replay ([`operator`](Self::operator)), one inbox.
#[derive(Clone)]
pub struct OpenedInbox {
    inbox: Arc<dyn Inbox>,
    operator: Arc<dyn InboxOperator>,
    url: BackendUrl,
}

impl OpenedInbox {
    #[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
    fn new<I: Inbox + InboxOperator>(inbox: I, url: &BackendUrl) -> Self {
        let inbox = Arc::new(inbox);
        OpenedInbox {
            operator: Arc::clone(&inbox) as Arc<dyn InboxOperator>,
            inbox,
            url: url.clone(),
        }
    }

    /// The inbox, for [`WebhookConfig::with_inbox`](crate::WebhookConfig::with_inbox).
    pub fn inbox(&self) -> Arc<dyn Inbox> {
        Arc::clone(&self.inbox)
    }

    /// Its operator view: stats, lists, entries, replays.
    pub fn operator(&self) -> Arc<dyn InboxOperator> {
        Arc::clone(&self.operator)
    }

    /// The URL it was opened from (its `Display` shows no password).
    pub fn url(&self) -> &BackendUrl {
        &self.url
    }
}

impl std::fmt::Debug for OpenedInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedInbox")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Opens the inbox `url` names, for `access`. A Redis inbox needs its key prefix
/// (`?prefix=P`); a PostgreSQL one is in the schema `?schema=S` (`nextgen` when not given),
/// created with its tables for [`Access::Serve`]. For [`Access::Inspect`] and
/// [`Access::Operate`] the inbox must be there already: a mistyped path, prefix or schema is
/// [`OpenError::NoInbox`], not an empty inbox.
///
/// # Errors
///
/// Every [`OpenError`] but `UnknownScheme` and `Empty` (those come from
/// [`BackendUrl::parse`]).
pub async fn open_inbox(url: &BackendUrl, access: Access) -> Result<OpenedInbox, OpenError> {
    match url {
        BackendUrl::Sqlite { path, durability } => sqlite_inbox(url, path, *durability, access),
        BackendUrl::Redis {
            url: server,
            prefix,
        } => {
            let prefix = prefix.as_deref().ok_or_else(|| OpenError::MissingPrefix {
                url: url.to_string(),
            })?;
            redis_inbox(url, server, prefix, access).await
        }
        BackendUrl::Postgres {
            url: server,
            schema,
        } => postgres_inbox(url, server, schema.as_deref(), access).await,
    }
}

/// Opens the idempotency store `url` names, for inline mode (created when it is not there).
/// A Redis store needs its key prefix (`?prefix=P`).
///
/// # Errors
///
/// As [`open_inbox`].
pub async fn open_store(url: &BackendUrl) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    match url {
        BackendUrl::Sqlite { path, durability } => sqlite_store(url, path, *durability),
        BackendUrl::Redis {
            url: server,
            prefix,
        } => {
            let prefix = prefix.as_deref().ok_or_else(|| OpenError::MissingPrefix {
                url: url.to_string(),
            })?;
            redis_store(url, server, prefix).await
        }
        BackendUrl::Postgres {
            url: server,
            schema,
        } => postgres_store(url, server, schema.as_deref()).await,
    }
}

/// The opener's error for `url`'s backend failing.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
fn failed(url: &BackendUrl) -> impl FnOnce(crate::idempotency::StoreError) -> OpenError + '_ {
    move |source| OpenError::Store {
        url: url.to_string(),
        source,
    }
}

/// The SQLite module's durability for `durability`.
#[cfg(feature = "sqlite")]
fn sqlite_durability(durability: SqliteDurability) -> crate::sqlite::Durability {
    match durability {
        SqliteDurability::Full => crate::sqlite::Durability::Full,
        SqliteDurability::Normal => crate::sqlite::Durability::Normal,
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_inbox(
    url: &BackendUrl,
    path: &std::path::Path,
    durability: SqliteDurability,
    access: Access,
) -> Result<OpenedInbox, OpenError> {
    use crate::sqlite::SqliteInbox;

    if access != Access::Serve {
        // Opening creates a missing file: look first, so a mistyped path is not an empty inbox.
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::NoInbox {
                    url: url.to_string(),
                    why: "the file does not exist".to_owned(),
                });
            }
            Err(error) => {
                return Err(OpenError::Store {
                    url: url.to_string(),
                    source: crate::idempotency::StoreError::Unavailable(error.to_string()),
                });
            }
        }
        // Read-only first: a file that is not an inbox is refused, not turned into one.
        let inbox = SqliteInbox::open_read_only(path).map_err(failed(url))?;
        if access == Access::Inspect {
            return Ok(OpenedInbox::new(inbox, url));
        }
    }
    let inbox = SqliteInbox::open_with(path, sqlite_durability(durability)).map_err(failed(url))?;
    Ok(OpenedInbox::new(inbox, url))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_inbox(
    _: &BackendUrl,
    _: &std::path::Path,
    _: SqliteDurability,
    _: Access,
) -> Result<OpenedInbox, OpenError> {
    Err(not_built("SQLite", "sqlite"))
}

#[cfg(feature = "sqlite")]
fn sqlite_store(
    url: &BackendUrl,
    path: &std::path::Path,
    durability: SqliteDurability,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    let store = crate::sqlite::SqliteStore::open_with(path, sqlite_durability(durability))
        .map_err(failed(url))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_store(
    _: &BackendUrl,
    _: &std::path::Path,
    _: SqliteDurability,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    Err(not_built("SQLite", "sqlite"))
}

#[cfg(feature = "redis")]
async fn redis_inbox(
    url: &BackendUrl,
    server: &str,
    prefix: &str,
    access: Access,
) -> Result<OpenedInbox, OpenError> {
    use crate::redis::RedisInbox;

    if access == Access::Serve {
        let inbox = RedisInbox::connect(server, prefix)
            .await
            .map_err(failed(url))?;
        return Ok(OpenedInbox::new(inbox, url));
    }
    match RedisInbox::connect_existing(server, prefix)
        .await
        .map_err(failed(url))?
    {
        Some(inbox) => Ok(OpenedInbox::new(inbox, url)),
        None => Err(OpenError::NoInbox {
            url: url.to_string(),
            why: format!(
                "Redis has no inbox under the prefix `{prefix}` (its key `{prefix}:inbox:stream` does not exist)"
            ),
        }),
    }
}

#[cfg(not(feature = "redis"))]
async fn redis_inbox(
    _: &BackendUrl,
    _: &str,
    _: &str,
    _: Access,
) -> Result<OpenedInbox, OpenError> {
    Err(not_built("Redis", "redis"))
}

#[cfg(feature = "redis")]
async fn redis_store(
    url: &BackendUrl,
    server: &str,
    prefix: &str,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    let store = crate::redis::RedisIdempotencyStore::connect(server, prefix)
        .await
        .map_err(failed(url))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(
    _: &BackendUrl,
    _: &str,
    _: &str,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    Err(not_built("Redis", "redis"))
}

#[cfg(feature = "postgres")]
async fn postgres_inbox(
    url: &BackendUrl,
    server: &str,
    schema: Option<&str>,
    access: Access,
) -> Result<OpenedInbox, OpenError> {
    use crate::postgres::{DEFAULT_SCHEMA, PgInbox};

    let schema = schema.unwrap_or(DEFAULT_SCHEMA);
    postgres_schema(url, schema)?;
    if access == Access::Serve {
        let inbox = PgInbox::connect(server, schema)
            .await
            .map_err(failed(url))?;
        return Ok(OpenedInbox::new(inbox, url));
    }
    match PgInbox::connect_existing(server, schema)
        .await
        .map_err(failed(url))?
    {
        Some(inbox) => Ok(OpenedInbox::new(inbox, url)),
        None => Err(OpenError::NoInbox {
            url: url.to_string(),
            why: format!(
                "the database has no inbox in the schema `{schema}` (no table `{schema}.nextgen_inbox`); name the app's schema with `?schema=S`"
            ),
        }),
    }
}

/// Refuses a `schema` parameter that is not a schema name, as a parameter of the URL (before
/// anything connects).
#[cfg(feature = "postgres")]
fn postgres_schema(url: &BackendUrl, schema: &str) -> Result<(), OpenError> {
    crate::postgres::check_schema(schema).map_err(|_| OpenError::BadParameter {
        url: url.to_string(),
        parameter: format!("schema={schema}"),
        known: "`schema=S` where S is a letter or `_`, then letters, digits, `_` or `$`, at most 63 bytes",
    })
}

#[cfg(not(feature = "postgres"))]
async fn postgres_inbox(
    _: &BackendUrl,
    _: &str,
    _: Option<&str>,
    _: Access,
) -> Result<OpenedInbox, OpenError> {
    Err(not_built("PostgreSQL", "postgres"))
}

#[cfg(feature = "postgres")]
async fn postgres_store(
    url: &BackendUrl,
    server: &str,
    schema: Option<&str>,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    let schema = schema.unwrap_or(crate::postgres::DEFAULT_SCHEMA);
    postgres_schema(url, schema)?;
    let store = crate::postgres::PgStore::connect(server, schema)
        .await
        .map_err(failed(url))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_store(
    _: &BackendUrl,
    _: &str,
    _: Option<&str>,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    Err(not_built("PostgreSQL", "postgres"))
}

#[cfg(not(all(feature = "sqlite", feature = "redis", feature = "postgres")))]
fn not_built(backend: &'static str, feature: &'static str) -> OpenError {
    OpenError::NotBuilt { backend, feature }
}
