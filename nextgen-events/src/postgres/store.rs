//! `PgStore`: claims and done markers in `nextgen_handlers`, the object claims and watermarks of
//! `latest_only` handlers in `nextgen_objects`; each operation one statement.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Row as _;
use sqlx::postgres::PgPool;

mod transaction;

use super::database::{Clock, Database, millis};
use crate::idempotency::{
    Claim, DEFAULT_RETENTION, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken,
    PgTransactions, StoreError, StoreFuture, Watermark, check_duration,
};
use transaction::PreparedClaim;

/// The statements, with the schema filled in once.
#[derive(Debug)]
struct Statements {
    claim: String,
    claim_in: String,
    renew: String,
    complete: String,
    complete_again: String,
    release: String,
    sweep_handlers: String,
    claim_object: String,
    renew_object: String,
    release_object: String,
    advance_object: String,
    sweep_objects: String,
}

/// How many expired rows one sweep deletes at most: a bound on the work and the locks of the
/// claim that runs it.
const SWEEP_BATCH: i64 = 1000;

/// One claim in this many also deletes expired rows (a store in inline mode has no workers to
/// prune it).
const SWEEP_EVERY: u64 = 1024;

impl Statements {
    fn new(database: &Database) -> Self {
        // An existing row is taken over only when it expired: the `CASE`s keep a live one as it
        // is, and `RETURNING` tells which it was, in one statement (a second one could see a
        // row that changed in between).
        let claim = database.sql(
            "INSERT INTO {schema}.nextgen_handlers AS h (event_id, handler, state, owner, until_ms)
             VALUES ($1, $2, 'claimed', $3, $4)
             ON CONFLICT (event_id, handler) DO UPDATE SET
                 state = CASE WHEN h.until_ms <= $5 THEN 'claimed' ELSE h.state END,
                 owner = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.owner ELSE h.owner END,
                 until_ms = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.until_ms ELSE h.until_ms END
             RETURNING state, owner",
        );
        const OWNED: &str =
            "event_id = $1 AND handler = $2 AND state = 'claimed' AND owner = $3 AND until_ms > $4";
        const OBJECT_OWNED: &str =
            "handler = $1 AND object_id = $2 AND owner = $3 AND lease_until_ms > $4";
        // The watermark moves only forward: a kept one that is newer stays.
        const NEWER: &str = "(created IS NULL OR event_id IS NULL OR newest_until_ms <= $4 OR $5 > created OR ($5 = created AND $6 > event_id))";
        // A transactional handler's claim, in its own transaction, in one statement: the lock
        // timeout is set in it (`settings` is read before the insert can wait for another
        // delivery's transaction), and its row is written done at once, with the retention's
        // lease. No one else sees the row before the commit, and the commit is what makes the
        // handler done; a rollback takes the row back with the handler's writes. So there is no
        // marker to write afterwards (`complete_in` sends nothing).
        let claim_in = database.sql(
            "INSERT INTO {schema}.nextgen_handlers AS h (event_id, handler, state, owner, until_ms)
             SELECT $1::text, $2::text, 'done', $3::text, $4::bigint
             FROM (SELECT set_config('lock_timeout', $6::text, true)) AS settings WHERE true
             ON CONFLICT (event_id, handler) DO UPDATE SET
                 state = CASE WHEN h.until_ms <= $5 THEN 'done' ELSE h.state END,
                 owner = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.owner ELSE h.owner END,
                 until_ms = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.until_ms ELSE h.until_ms END
             RETURNING state, owner",
        );
        Statements {
            claim,
            claim_in,
            renew: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_handlers SET until_ms = $5 WHERE {OWNED}"
            )),
            // The owner stays on the done marker: a completion sent again after a lost answer
            // finds its own marker and says so (`complete_again`); any other finds none.
            complete: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_handlers SET state = 'done', until_ms = $5 WHERE {OWNED}"
            )),
            complete_again: database.sql(
                "UPDATE {schema}.nextgen_handlers SET state = 'done', until_ms = $5
                 WHERE event_id = $1 AND handler = $2 AND owner = $3
                   AND (state = 'done' OR until_ms > $4)",
            ),
            release: database.sql(&format!(
                "DELETE FROM {{schema}}.nextgen_handlers WHERE {OWNED}"
            )),
            sweep_handlers: database.sql(
                "DELETE FROM {schema}.nextgen_handlers WHERE ctid IN
                 (SELECT ctid FROM {schema}.nextgen_handlers WHERE until_ms <= $1 LIMIT $2)",
            ),
            claim_object: database.sql(
                "INSERT INTO {schema}.nextgen_objects AS o (handler, object_id, owner, lease_until_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (handler, object_id) DO UPDATE SET
                     owner = CASE WHEN o.owner IS NULL OR o.lease_until_ms <= $5 THEN EXCLUDED.owner ELSE o.owner END,
                     lease_until_ms = CASE WHEN o.owner IS NULL OR o.lease_until_ms <= $5 THEN EXCLUDED.lease_until_ms ELSE o.lease_until_ms END
                 RETURNING owner, created, event_id, newest_until_ms",
            ),
            renew_object: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_objects SET lease_until_ms = $5 WHERE {OBJECT_OWNED}"
            )),
            // A row without a live watermark has nothing left to keep: it goes with the claim.
            // (Two disjoint conditions: one statement must not change a row twice.)
            release_object: database.sql(&format!(
                "WITH gone AS (
                     DELETE FROM {{schema}}.nextgen_objects
                     WHERE {OBJECT_OWNED} AND newest_until_ms <= $4 RETURNING 1
                 ), kept AS (
                     UPDATE {{schema}}.nextgen_objects SET owner = NULL, lease_until_ms = 0
                     WHERE {OBJECT_OWNED} AND newest_until_ms > $4 RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM kept)"
            )),
            advance_object: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_objects SET
                     owner = NULL, lease_until_ms = 0, newest_until_ms = $7,
                     event_id = CASE WHEN {NEWER} THEN $6 ELSE event_id END,
                     created = CASE WHEN {NEWER} THEN $5 ELSE created END
                 WHERE {OBJECT_OWNED}"
            )),
            sweep_objects: database.sql(
                "DELETE FROM {schema}.nextgen_objects WHERE ctid IN
                 (SELECT ctid FROM {schema}.nextgen_objects
                  WHERE newest_until_ms <= $1 AND lease_until_ms <= $1 LIMIT $2)",
            ),
        }
    }
}

/// Claims and done markers in PostgreSQL, shared by every replica using the same database and
/// schema. Clones share the pool. See the [module documentation](super) for the tables.
#[derive(Clone)]
pub struct PgStore {
    database: Arc<Database>,
    statements: Arc<Statements>,
    /// A transactional handler's claim, prepared on the connections that take it.
    prepared_claim: Arc<PreparedClaim>,
    retention: Duration,
    /// The setter that gave `retention`, for the check's error: the inbox's own when the
    /// store belongs to a `PgInbox`.
    retention_setter: &'static str,
    claims: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.database.schema())
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

const RETENTION_SETTER: &str = "PgStore::with_retention";

impl PgStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`,
    /// with sqlx's parameters such as `sslmode`), creates or upgrades the tables in `schema`
    /// ([`DEFAULT_SCHEMA`](super::DEFAULT_SCHEMA) is `nextgen`), and checks that it answers.
    ///
    /// The pool it makes holds up to 20 connections and gives up on one after 2 s, so a
    /// delivery arriving while the server is down is answered 500 rather than held. For other
    /// settings, build a [`PgPool`] yourself and use [`new`](Self::new).
    ///
    /// The error never contains the URL's password.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        let database = Database::connect(url, schema).await?;
        database.migrate().await?;
        Ok(Self::on(Arc::new(database)))
    }

    /// A store on your own pool (the one your app's queries use, say), with its tables in
    /// `schema`, created or upgraded now.
    pub async fn new(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        let database = Database::on(pool, schema, None)?;
        database.migrate().await?;
        Ok(Self::on(Arc::new(database)))
    }

    pub(crate) fn on(database: Arc<Database>) -> Self {
        let statements = Statements::new(&database);
        PgStore {
            prepared_claim: Arc::new(PreparedClaim::new(&database, &statements.claim_in)),
            statements: Arc::new(statements),
            database,
            retention: DEFAULT_RETENTION,
            retention_setter: RETENTION_SETTER,
            claims: Arc::default(),
        }
    }

    /// The store on the same database with a clock in Unix milliseconds, e.g. to let leases
    /// and retentions lapse in tests without waiting.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        let clock: Clock = Arc::new(clock);
        self.database = Arc::new(self.database.with_clock(clock));
        self
    }

    /// How long done markers and watermarks are kept (default 72 h, as long as NextGen retries
    /// an event). Zero, or more than 10 years, is refused when the route is mounted
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

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.database.pool
    }

    /// The claim a claim statement's `RETURNING state, owner` row says: this delivery's when
    /// the row holds `owner`, its token.
    fn claim_from(
        &self,
        row: &sqlx::postgres::PgRow,
        token: OwnerToken,
        owner: &str,
    ) -> Result<Claim, StoreError> {
        let read = |error: sqlx::Error| self.database.failed("claim", &error);
        let state: String = row.try_get(0).map_err(read)?;
        let holder: Option<String> = row.try_get(1).map_err(read)?;
        // The owner first: a claim taken in a transaction is written done at once.
        Ok(match state.as_str() {
            _ if holder.as_deref() == Some(owner) => Claim::Claimed(token),
            "done" => Claim::AlreadyDone,
            _ => Claim::InProgress,
        })
    }

    /// Deletes expired claims, done markers and watermarks, at most [`SWEEP_BATCH`] of each.
    async fn sweep(&self, now: i64) -> Result<(), StoreError> {
        let statements = &self.statements;
        self.database
            .run("sweep of expired claims", async move {
                for sql in [&statements.sweep_handlers, &statements.sweep_objects] {
                    sqlx::query(sql)
                        .bind(now)
                        .bind(SWEEP_BATCH)
                        .execute(&self.database.pool)
                        .await?;
                }
                Ok(())
            })
            .await
    }

    /// Runs the owner-checked statement `sql` for `(first, second)` (`again`, when given, if
    /// it is sent again after a broken connection); whether it changed a row. `until`, when
    /// given, is bound as `$5`.
    async fn if_owner(
        &self,
        operation: &str,
        (sql, again): (&str, Option<&str>),
        (first, second): (&str, &str),
        token: OwnerToken,
        until: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.database.now_ms();
        let token = &token.to_string();
        self.database
            .run_again(operation, move |sent_again| async move {
                let sql = match again {
                    Some(again) if sent_again => again,
                    _ => sql,
                };
                let mut query = sqlx::query(sql)
                    .bind(first)
                    .bind(second)
                    .bind(token)
                    .bind(now);
                if let Some(until) = until {
                    query = query.bind(until);
                }
                Ok(query.execute(&self.database.pool).await?.rows_affected() == 1)
            })
            .await
    }
}

impl IdempotencyStore for PgStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let now = self.database.now_ms();
            if self.claims.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                // The claim does not depend on it: a failed sweep is tried again later.
                if let Err(error) = self.sweep(now).await {
                    tracing::warn!(%error, "could not delete expired claims");
                }
            }
            let token = OwnerToken::new();
            let owner = token.to_string();
            let sql = &self.statements.claim;
            let row = self
                .database
                .run_again("claim", |_| {
                    sqlx::query(sql)
                        .bind(event_id)
                        .bind(handler)
                        .bind(&owner)
                        .bind(now.saturating_add(millis(lease)))
                        .bind(now)
                        .fetch_one(&self.database.pool)
                })
                .await?;
            self.claim_from(&row, token, &owner)
        })
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let until = self.database.now_ms().saturating_add(millis(lease));
        Box::pin(self.if_owner(
            "renewal",
            (&self.statements.renew, None),
            (event_id, handler),
            token,
            Some(until),
        ))
    }

    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        let until = self
            .database
            .now_ms()
            .saturating_add(millis(self.retention));
        Box::pin(self.if_owner(
            "done marker",
            (
                &self.statements.complete,
                Some(&self.statements.complete_again),
            ),
            (event_id, handler),
            token,
            Some(until),
        ))
    }

    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.if_owner(
            "release",
            (&self.statements.release, None),
            (event_id, handler),
            token,
            None,
        ))
    }

    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        Some(self)
    }

    fn pg_transactions(&self) -> Option<&dyn PgTransactions> {
        Some(self)
    }

    fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(self.retention_setter, self.retention, false)
    }
}

impl ObjectClaims for PgStore {
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim> {
        Box::pin(async move {
            let now = self.database.now_ms();
            let token = OwnerToken::new();
            let owner = token.to_string();
            let sql = &self.statements.claim_object;
            let row = self
                .database
                .run_again("object claim", |_| {
                    sqlx::query(sql)
                        .bind(handler)
                        .bind(object_id)
                        .bind(&owner)
                        .bind(now.saturating_add(millis(lease)))
                        .bind(now)
                        .fetch_one(&self.database.pool)
                })
                .await?;
            let read = |error: sqlx::Error| self.database.failed("object claim", &error);
            let holder: Option<String> = row.try_get(0).map_err(read)?;
            if holder.as_deref() != Some(owner.as_str()) {
                return Ok(ObjectClaim::InProgress);
            }
            let created: Option<i64> = row.try_get(1).map_err(read)?;
            let event_id: Option<String> = row.try_get(2).map_err(read)?;
            let newest_until: i64 = row.try_get(3).map_err(read)?;
            let newest = match (created, event_id) {
                (Some(created), Some(event_id)) if newest_until > now => {
                    Some(Watermark::new(created, event_id))
                }
                _ => None,
            };
            Ok(ObjectClaim::Claimed { token, newest })
        })
    }

    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let until = self.database.now_ms().saturating_add(millis(lease));
        Box::pin(self.if_owner(
            "object claim renewal",
            (&self.statements.renew_object, None),
            (handler, object_id),
            token,
            Some(until),
        ))
    }

    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.database.now_ms();
            let owner = token.to_string();
            let sql = &self.statements.release_object;
            let released: i64 = self
                .database
                .run_again("object claim release", |_| {
                    sqlx::query_scalar(sql)
                        .bind(handler)
                        .bind(object_id)
                        .bind(&owner)
                        .bind(now)
                        .fetch_one(&self.database.pool)
                })
                .await?;
            Ok(released == 1)
        })
    }

    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.database.now_ms();
            let until = now.saturating_add(millis(self.retention));
            let owner = token.to_string();
            let sql = &self.statements.advance_object;
            let changed = self
                .database
                .run_again("watermark", |_| {
                    sqlx::query(sql)
                        .bind(handler)
                        .bind(object_id)
                        .bind(&owner)
                        .bind(now)
                        .bind(handled.created)
                        .bind(handled.event_id.as_str())
                        .bind(until)
                        .execute(&self.database.pool)
                })
                .await?;
            Ok(changed.rows_affected() == 1)
        })
    }
}
