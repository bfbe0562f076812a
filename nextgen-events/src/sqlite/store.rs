//! The SQLite idempotency store: claims and done markers in the `nextgen_handlers` table.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Clock, Database, Durability, millis};
use crate::idempotency::{
    Claim, DEFAULT_RETENTION, IdempotencyStore, OwnerToken, StoreError, StoreFuture,
};

/// Claims and done markers in a SQLite file: done markers survive a restart, so a partly
/// failed event redelivered after one does not run its successful handlers again.
///
/// One process uses a file (its writer thread is the only writer); for replicas use Redis.
/// Clones share the file. Expired rows are deleted as new claims come in.
///
/// ```no_run
/// use nextgen_events::sqlite::SqliteStore;
/// use nextgen_events::WebhookConfig;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::open("webhooks.sqlite3")?;
/// let config = WebhookConfig::from_env()?.idempotency_store(store);
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    database: Arc<Database>,
    retention: Duration,
}

/// How many claims pass between two sweeps of expired rows.
const SWEEP_EVERY: u64 = 1024;

impl SqliteStore {
    /// Opens (or creates) the file at `path` with `synchronous=FULL`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (or creates) the file at `path` with the given durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Ok(Self::on(Database::open(path.as_ref(), durability, None)?))
    }

    /// Opens the file with a clock in milliseconds since the Unix epoch, e.g. to let leases
    /// and retention pass in tests without sleeping.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<Self, StoreError> {
        let clock: Clock = Arc::new(clock);
        Ok(Self::on(Database::open(
            path.as_ref(),
            Durability::Full,
            Some(clock),
        )?))
    }

    pub(crate) fn on(database: Arc<Database>) -> Self {
        SqliteStore {
            database,
            retention: DEFAULT_RETENTION,
        }
    }

    /// How long done markers are kept (default 72 h, as long as NextGen retries an event).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Updates the row of a claim `token` owns live; whether there was one.
    fn if_owner<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        sql: &'static str,
        until: Option<Duration>,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let (event_id, handler, token) =
            (event_id.to_owned(), handler.to_owned(), token.to_string());
        let until = until.map(|duration| now.saturating_add(millis(duration)));
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let changed = match until {
                        Some(until) => connection
                            .execute(sql, params![event_id, handler, token, now, until])?,
                        None => connection.execute(sql, params![event_id, handler, token, now])?,
                    };
                    Ok(changed == 1)
                })
                .await
        })
    }
}

impl IdempotencyStore for SqliteStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let sweep = CLAIMS
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY);
        let now = self.database.now_ms();
        let until = now.saturating_add(millis(lease));
        let token = OwnerToken::new();
        let (event_id, handler) = (event_id.to_owned(), handler.to_owned());
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    if sweep {
                        connection.execute("DELETE FROM nextgen_handlers WHERE until_ms <= ?1", [now])?;
                    }
                    let current: Option<(String, i64)> = connection
                        .prepare_cached(
                            "SELECT state, until_ms FROM nextgen_handlers WHERE event_id = ?1 AND handler = ?2",
                        )?
                        .query_row(params![event_id, handler], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()?;
                    match current {
                        Some((state, live_until)) if live_until > now => {
                            return Ok(if state == "done" { Claim::AlreadyDone } else { Claim::InProgress });
                        }
                        _ => {}
                    }
                    connection
                        .prepare_cached("INSERT OR REPLACE INTO nextgen_handlers (event_id, handler, state, owner, until_ms) VALUES (?1, ?2, 'claimed', ?3, ?4)")?
                        .execute(params![event_id, handler, token.to_string(), until])?;
                    Ok(Claim::Claimed(token))
                })
                .await
        })
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.if_owner(
            event_id,
            handler,
            token,
            "UPDATE nextgen_handlers SET until_ms = ?5 WHERE event_id = ?1 AND handler = ?2 AND state = 'claimed' AND owner = ?3 AND until_ms > ?4",
            Some(lease),
        )
    }

    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        self.if_owner(
            event_id,
            handler,
            token,
            "UPDATE nextgen_handlers SET state = 'done', owner = NULL, until_ms = ?5 WHERE event_id = ?1 AND handler = ?2 AND state = 'claimed' AND owner = ?3 AND until_ms > ?4",
            Some(self.retention),
        )
    }

    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        self.if_owner(
            event_id,
            handler,
            token,
            "DELETE FROM nextgen_handlers WHERE event_id = ?1 AND handler = ?2 AND state = 'claimed' AND owner = ?3 AND until_ms > ?4",
            None,
        )
    }
}
