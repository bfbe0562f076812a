//! The SQLite idempotency store: claims and done markers in the `nextgen_handlers` table; the
//! object claims and watermarks of `latest_only` handlers in `nextgen_objects`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Clock, Database, Durability, millis};
use crate::idempotency::sqlite_tx::SqliteTx;
use crate::idempotency::{
    Claim, DEFAULT_RETENTION, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken,
    SqliteTransactions, StoreError, StoreFuture, Watermark, check_duration,
};

/// Claims and done markers in a SQLite file: done markers survive a restart, so a partly
/// failed event redelivered after one does not run its successful handlers again.
///
/// One process uses a file (its writer thread is the only writer); for replicas use Redis.
/// Clones share the file. Expired rows are deleted as new claims come in.
///
/// `latest_only` handlers keep a row per `(handler, object id)` in `nextgen_objects`: the
/// object claim (`owner`, `lease_until_ms`) and the newest event handled (`created`,
/// `event_id`, kept until `newest_until_ms`, the retention after the last success).
///
/// ```no_run
/// use nextgen_events::sqlite::SqliteStore;
/// use nextgen_events::WebhookConfig;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::open("webhooks.sqlite3")?;
/// let config = WebhookConfig::from_env()?.with_idempotency_store(store);
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    database: Arc<Database>,
    retention: Duration,
    /// The setter that gave `retention`, for the check's error: the inbox's own when the
    /// store belongs to a `SqliteInbox`.
    retention_setter: &'static str,
    /// Event claims made through this store and its clones: every `SWEEP_EVERY`th sweeps.
    event_claims: Arc<AtomicU64>,
    /// The same for object claims.
    object_claims: Arc<AtomicU64>,
}

/// How many claims pass between two sweeps of expired rows.
const SWEEP_EVERY: u64 = 1024;

/// Counts a claim on `claims`; whether this one sweeps expired rows first.
fn sweep_due(claims: &AtomicU64) -> bool {
    claims
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(SWEEP_EVERY)
}

/// Updates the object row of a claim `token` owns live; whether there was one. `?1` handler,
/// `?2` object id, `?3` token, `?4` now, then `extra`.
const OBJECT_OWNED: &str = "handler = ?1 AND object_id = ?2 AND owner = ?3 AND lease_until_ms > ?4";

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
            retention_setter: RETENTION_SETTER,
            event_claims: Arc::default(),
            object_claims: Arc::default(),
        }
    }

    /// How long done markers are kept (default 72 h, as long as NextGen retries an event).
    /// Zero, or more than 10 years, is refused when the route is mounted
    /// ([`IdempotencyStore::check_settings`]).
    pub fn with_retention(self, retention: Duration) -> Self {
        self.with_retention_by(retention, RETENTION_SETTER)
    }

    /// `with_retention`, naming `setter` in the check's error.
    pub(crate) fn with_retention_by(mut self, retention: Duration, setter: &'static str) -> Self {
        self.retention = retention;
        self.retention_setter = setter;
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

/// The setter of a store's retention, as the check names it.
const RETENTION_SETTER: &str = "SqliteStore::with_retention";

/// The done marker, by the owner of a live claim: `?1` the event id, `?2` the handler, `?3` the
/// owner's token, `?4` now, `?5` the marker's end.
const COMPLETE: &str = "UPDATE nextgen_handlers SET state = 'done', owner = NULL, until_ms = ?5 WHERE event_id = ?1 AND handler = ?2 AND state = 'claimed' AND owner = ?3 AND until_ms > ?4";

impl IdempotencyStore for SqliteStore {
    fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(self.retention_setter, self.retention, false)
    }

    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        let sweep = sweep_due(&self.event_claims);
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
        self.if_owner(event_id, handler, token, COMPLETE, Some(self.retention))
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

    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        Some(self)
    }

    fn sqlite_transactions(&self) -> Option<&dyn SqliteTransactions> {
        Some(self)
    }
}

impl SqliteTransactions for SqliteStore {
    fn complete_with<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        writes: SqliteTx,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let until = now.saturating_add(millis(self.retention));
        let (event_id, handler, token) =
            (event_id.to_owned(), handler.to_owned(), token.to_string());
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    // A savepoint of its own inside the writer's group transaction: the marker
                    // and the writes stand or fall together, whatever the batch's other jobs do.
                    connection.execute_batch("SAVEPOINT nextgen_handler")?;
                    let applied = connection
                        .prepare_cached(COMPLETE)
                        .and_then(|mut statement| {
                            statement.execute(params![event_id, handler, token, now, until])
                        })
                        .and_then(|marked| match marked {
                            1 => writes.apply(connection).map(|()| true),
                            _ => Ok(false),
                        });
                    match applied {
                        Ok(true) => {
                            connection.execute_batch("RELEASE nextgen_handler")?;
                            Ok(true)
                        }
                        other => {
                            connection.execute_batch(
                                "ROLLBACK TO nextgen_handler; RELEASE nextgen_handler",
                            )?;
                            other
                        }
                    }
                })
                .await
        })
    }
}

impl ObjectClaims for SqliteStore {
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim> {
        let sweep = sweep_due(&self.object_claims);
        let now = self.database.now_ms();
        let until = now.saturating_add(millis(lease));
        let token = OwnerToken::new();
        let (handler, object_id) = (handler.to_owned(), object_id.to_owned());
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    if sweep {
                        connection.execute(
                            "DELETE FROM nextgen_objects WHERE lease_until_ms <= ?1 AND newest_until_ms <= ?1",
                            [now],
                        )?;
                    }
                    type Row = (Option<String>, i64, Option<i64>, Option<String>, i64);
                    let current: Option<Row> = connection
                        .prepare_cached(
                            "SELECT owner, lease_until_ms, created, event_id, newest_until_ms FROM nextgen_objects WHERE handler = ?1 AND object_id = ?2",
                        )?
                        .query_row(params![handler, object_id], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                        })
                        .optional()?;
                    let mut newest = None;
                    if let Some((owner, lease_until, created, event_id, newest_until)) = current {
                        if owner.is_some() && lease_until > now {
                            return Ok(ObjectClaim::InProgress);
                        }
                        if let (Some(created), Some(event_id)) = (created, event_id)
                            && newest_until > now
                        {
                            newest = Some(Watermark::new(created, event_id));
                        }
                    }
                    connection
                        .prepare_cached(
                            "INSERT INTO nextgen_objects (handler, object_id, owner, lease_until_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (handler, object_id) DO UPDATE SET owner = ?3, lease_until_ms = ?4",
                        )?
                        .execute(params![handler, object_id, token.to_string(), until])?;
                    Ok(ObjectClaim::Claimed { token, newest })
                })
                .await
        })
    }
    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let until = now.saturating_add(millis(lease));
        let (handler, object_id, token) =
            (handler.to_owned(), object_id.to_owned(), token.to_string());
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let changed = connection
                        .prepare_cached(&format!(
                            "UPDATE nextgen_objects SET lease_until_ms = ?5 WHERE {OBJECT_OWNED}"
                        ))?
                        .execute(params![handler, object_id, token, now, until])?;
                    Ok(changed == 1)
                })
                .await
        })
    }
    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let (handler, object_id, token) =
            (handler.to_owned(), object_id.to_owned(), token.to_string());
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let changed = connection
                        .prepare_cached(&format!(
                            "UPDATE nextgen_objects SET owner = NULL, lease_until_ms = 0 WHERE {OBJECT_OWNED}"
                        ))?
                        .execute(params![handler, object_id, token, now])?;
                    // A row without a watermark has nothing left to keep.
                    connection
                        .prepare_cached(
                            "DELETE FROM nextgen_objects WHERE handler = ?1 AND object_id = ?2 AND owner IS NULL AND newest_until_ms <= ?3",
                        )?
                        .execute(params![handler, object_id, now])?;
                    Ok(changed == 1)
                })
                .await
        })
    }
    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let until = now.saturating_add(millis(self.retention));
        let (handler, object_id, token) =
            (handler.to_owned(), object_id.to_owned(), token.to_string());
        let handled = handled.clone();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    // One statement: the watermark moves only forward (a kept one that is newer
                    // stays), and the claim ends with it.
                    let changed = connection
                        .prepare_cached(&format!(
                            "UPDATE nextgen_objects SET
                                 owner = NULL, lease_until_ms = 0, newest_until_ms = ?7,
                                 event_id = CASE WHEN {NEWER} THEN ?6 ELSE event_id END,
                                 created = CASE WHEN {NEWER} THEN ?5 ELSE created END
                             WHERE {OBJECT_OWNED}"
                        ))?
                        .execute(params![
                            handler,
                            object_id,
                            token,
                            now,
                            handled.created,
                            handled.event_id,
                            until
                        ])?;
                    Ok(changed == 1)
                })
                .await
        })
    }
}

/// Whether the handled event (`?5` created, `?6` event id) is newer than the row's kept
/// watermark, or the row keeps none (`?4` now). SQLite compares text bytewise (BINARY).
const NEWER: &str = "(created IS NULL OR event_id IS NULL OR newest_until_ms <= ?4 OR ?5 > created OR (?5 = created AND ?6 > event_id))";
