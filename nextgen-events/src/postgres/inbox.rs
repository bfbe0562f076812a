//! `PgInbox`: verified deliveries in `nextgen_inbox` (what changes) and `nextgen_inbox_bodies`
//! (what never does), one entry per event id, taken by any number of replicas' workers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgRow};

use super::database::{Clock, Database, millis};
use super::intake::Intake;
use super::store::PgStore;
use crate::idempotency::{IdempotencyStore, OwnerToken, StoreError, StoreFuture, check_duration};
use crate::inbox::{
    Appended, Arrivals, ArrivalsWatch, DEFAULT_INBOX_RETENTION, DeadReplay, Finish, HourCounts,
    Inbox, InboxEntry, InboxHistory, InboxOperator, InboxRecord, InboxState, InboxStats,
    ListFilter, RecordedRerun, Recovered, Rerun, Taken, UNREADABLE_PER_TAKE, empty_hours,
    errors_from_json, errors_to_json, hour_slot, hours_span, listed_state, log_rerun,
    reruns_from_json, reruns_to_json, unreadable,
};

/// The setter of an inbox's retention, as the check names it.
const RETENTION_SETTER: &str = "PgInbox::with_retention";

/// How many handled entries one prune statement deletes: a bound on its locks and its WAL.
const PRUNE_BATCH: i64 = 1000;

/// How long a taken entry is held without a renewal: a lease and a half. The handlers' claims
/// of the delivery are taken under the lease itself, a moment after the entry; held a lease
/// and a half, an entry whose worker died is taken again only once those claims lapsed too, so
/// the takeover runs the handler that was running rather than finding it in progress.
fn entry_lease(lease: Duration) -> i64 {
    millis(lease).saturating_mul(3) / 2
}

/// The columns a record is read from, in [`record`]'s order, but for the last: the reruns
/// (see [`Statements::new`]).
const COLUMNS: &str = "event_id, event_type, state, attempts, received_at_ms, due_at_ms, first_failed_at_ms, finished_at_ms, last_errors";

/// The statements, with the schema filled in once.
#[derive(Debug)]
struct Statements {
    take: String,
    bury: String,
    renew: String,
    handled: String,
    retry: String,
    dead: String,
    prune: String,
    stats: String,
    /// By listed state ([`list_index`]), then without and with a cursor.
    list: [[String; 2]; 6],
    hourly: String,
    show: String,
    replay: String,
    replay_dead: String,
    /// Whether the table has its `reruns` column (migration 3).
    has_reruns: bool,
    /// A rerun's statements, in its transaction: the entry locked, the handler's live done
    /// marker removed, the handlers still done (when it had none), the entry replayed.
    rerun_entry: String,
    rerun_marker: String,
    done_handlers: String,
    rerun: String,
}

/// What a replay sets: pending, due now, attempts reset; the last errors stay for the record.
const REPLAYED: &str = "state = 'pending', owner = NULL, due_at_ms = $1, attempts = 0, first_failed_at_ms = NULL, finished_at_ms = NULL";

/// The condition of a listed state.
fn state_condition(state: Option<InboxState>) -> &'static str {
    match state {
        None => "TRUE",
        Some(InboxState::Pending) => "state = 'pending' AND attempts = 0",
        Some(InboxState::Retrying) => "state = 'pending' AND attempts > 0",
        Some(InboxState::Running) => "state = 'running'",
        Some(InboxState::Handled) => "state = 'handled'",
        Some(InboxState::Dead) => "state = 'dead'",
    }
}

/// The index of a listed state's statement in `Statements::list`.
fn list_index(state: Option<InboxState>) -> usize {
    match state {
        None => 0,
        Some(InboxState::Pending) => 1,
        Some(InboxState::Retrying) => 2,
        Some(InboxState::Running) => 3,
        Some(InboxState::Handled) => 4,
        Some(InboxState::Dead) => 5,
    }
}

impl Statements {
    /// The statements on `database`; `has_reruns` says whether its table has the `reruns`
    /// column: one of an app of an earlier version, which a tool does not migrate, lists none.
    fn new(database: &Database, has_reruns: bool) -> Self {
        const OWNED: &str = "event_id = $1 AND owner = $2 AND state = 'running'";
        // The signature's time lives with the body: a list reads it by the body's key for the
        // rows it returns, not a join of the whole body table.
        let columns = format!(
            "{COLUMNS}, {}, (SELECT b.signed_at FROM {{schema}}.nextgen_inbox_bodies b
                             WHERE b.event_id = nextgen_inbox.event_id)",
            if has_reruns { "reruns" } else { "NULL::text" }
        );
        let list = [
            None,
            Some(InboxState::Pending),
            Some(InboxState::Retrying),
            Some(InboxState::Running),
            Some(InboxState::Handled),
            Some(InboxState::Dead),
        ]
        .map(|state| {
            // Event ids compare in byte order (`COLLATE "C"`, the index's), as `ListCursor`
            // does, whatever the database's collation. The cursor is a statement of its own:
            // under `$4 IS NULL OR ...` a generic plan could not start at it in the index.
            let list = |after: &str| {
                database.sql(&format!(
                    "SELECT {columns} FROM {{schema}}.nextgen_inbox
                     WHERE {} AND ($1::text IS NULL OR event_type = $1)
                       AND ($3::text IS NULL OR strpos(last_errors, $3) > 0){after}
                     ORDER BY received_at_ms DESC, event_id COLLATE \"C\" DESC LIMIT $2",
                    state_condition(state)
                ))
            };
            [
                list(""),
                list("\n AND (received_at_ms, event_id COLLATE \"C\") < ($4, $5)"),
            ]
        });
        Statements {
            // The due entry first; one another worker holds is skipped, not waited for. The body
            // is joined, not required: an entry without one is taken, and buried, rather than
            // left to block the head of the queue.
            take: database.sql(
                "WITH next AS (
                     SELECT event_id FROM {schema}.nextgen_inbox
                     WHERE state IN ('pending', 'running') AND due_at_ms <= $1
                     ORDER BY due_at_ms LIMIT 1
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE {schema}.nextgen_inbox i
                 SET state = 'running', owner = $2, due_at_ms = $3, attempts = i.attempts + 1
                 FROM next LEFT JOIN {schema}.nextgen_inbox_bodies b ON b.event_id = next.event_id
                 WHERE i.event_id = next.event_id
                 RETURNING i.event_id, i.event_type, b.body, b.signed_at, i.received_at_ms,
                           i.attempts, i.first_failed_at_ms, b.signature",
            ),
            bury: database.sql(
                "UPDATE {schema}.nextgen_inbox SET state = 'dead', owner = NULL, finished_at_ms = $3,
                     first_failed_at_ms = COALESCE(first_failed_at_ms, $3), last_errors = $4
                 WHERE event_id = $1 AND owner = $2",
            ),
            renew: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET due_at_ms = $3 WHERE {OWNED} AND due_at_ms > $4"
            )),
            handled: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET state = 'handled', owner = NULL, finished_at_ms = $3 WHERE {OWNED}"
            )),
            retry: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET state = 'pending', owner = NULL, due_at_ms = $4,
                     first_failed_at_ms = COALESCE(first_failed_at_ms, $3), last_errors = $5
                 WHERE {OWNED}"
            )),
            dead: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET state = 'dead', owner = NULL, finished_at_ms = $3,
                     first_failed_at_ms = COALESCE(first_failed_at_ms, $3), last_errors = $4
                 WHERE {OWNED}"
            )),
            prune: database.sql(
                "WITH gone AS (
                     DELETE FROM {schema}.nextgen_inbox WHERE event_id IN (
                         SELECT event_id FROM {schema}.nextgen_inbox
                         WHERE state = 'handled' AND finished_at_ms < $1
                         LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING event_id
                 ), bodies AS (
                     DELETE FROM {schema}.nextgen_inbox_bodies b USING gone WHERE b.event_id = gone.event_id
                 )
                 SELECT count(*) FROM gone",
            ),
            // The backlog from the queue's index, the handled and dead entries each from their
            // own: no statement reads the whole table.
            stats: database.sql(
                "SELECT
                     count(*) FILTER (WHERE state = 'pending' AND attempts = 0),
                     count(*) FILTER (WHERE state = 'pending' AND attempts > 0),
                     count(*) FILTER (WHERE state = 'running'),
                     (SELECT count(*) FROM {schema}.nextgen_inbox WHERE state = 'handled'),
                     (SELECT count(*) FROM {schema}.nextgen_inbox WHERE state = 'dead'),
                     min(received_at_ms) FILTER (WHERE state = 'pending' AND attempts = 0)
                 FROM {schema}.nextgen_inbox WHERE state IN ('pending', 'running')",
            ),
            list,
            // Each count on the index of its own time, over the hours asked for ([$1, $2)).
            hourly: database.sql(
                "WITH counted (hour, received, handled, retried, dead) AS (
                     SELECT received_at_ms / 3600000, count(*), 0, 0, 0 FROM {schema}.nextgen_inbox
                     WHERE received_at_ms >= $1 AND received_at_ms < $2 GROUP BY 1
                   UNION ALL
                     SELECT finished_at_ms / 3600000, 0, count(*), 0, 0 FROM {schema}.nextgen_inbox
                     WHERE state = 'handled' AND finished_at_ms >= $1 AND finished_at_ms < $2 GROUP BY 1
                   UNION ALL
                     SELECT first_failed_at_ms / 3600000, 0, 0, count(*), 0 FROM {schema}.nextgen_inbox
                     WHERE first_failed_at_ms >= $1 AND first_failed_at_ms < $2 GROUP BY 1
                   UNION ALL
                     SELECT finished_at_ms / 3600000, 0, 0, 0, count(*) FROM {schema}.nextgen_inbox
                     WHERE state = 'dead' AND finished_at_ms >= $1 AND finished_at_ms < $2 GROUP BY 1
                 )
                 SELECT hour, sum(received)::int8, sum(handled)::int8, sum(retried)::int8,
                        sum(dead)::int8
                 FROM counted GROUP BY hour ORDER BY hour",
            ),
            show: database.sql(&format!(
                "SELECT {columns}, b.body FROM {{schema}}.nextgen_inbox
                 LEFT JOIN {{schema}}.nextgen_inbox_bodies b USING (event_id)
                 WHERE event_id = $1"
            )),
            replay: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET {REPLAYED}
                 WHERE event_id = ANY($2) AND state != 'running' RETURNING event_id"
            )),
            replay_dead: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET {REPLAYED}
                 WHERE state = 'dead' AND ($2::int8 IS NULL OR received_at_ms >= $2) RETURNING event_id"
            )),
            has_reruns,
            // Locked: a worker's take skips it, and a finish waits for the rerun's commit.
            rerun_entry: database.sql(
                "SELECT state, reruns FROM {schema}.nextgen_inbox WHERE event_id = $1 FOR UPDATE",
            ),
            // A marker past its time is no longer one: a claim would take it over and run the
            // handler.
            rerun_marker: database.sql(
                "DELETE FROM {schema}.nextgen_handlers
                 WHERE event_id = $1 AND handler = $2 AND state = 'done' AND until_ms > $3",
            ),
            done_handlers: database.sql(
                "SELECT handler FROM {schema}.nextgen_handlers
                 WHERE event_id = $1 AND state = 'done' AND until_ms > $2 ORDER BY handler",
            ),
            rerun: database.sql(&format!(
                "UPDATE {{schema}}.nextgen_inbox SET {REPLAYED}, reruns = $3 WHERE event_id = $2"
            )),
        }
    }
}

/// An [`Inbox`] in PostgreSQL, shared by every replica using the same database and schema,
/// with its [`PgStore`] in the same schema. See the [module documentation](super) for the
/// tables, what a 200 means and what to watch.
///
/// Clones share the pool and the intake.
#[derive(Clone)]
pub struct PgInbox {
    database: Arc<Database>,
    statements: Arc<Statements>,
    intake: Arc<Intake>,
    store: PgStore,
    retention: Duration,
    listen: bool,
    /// The channel committed deliveries are announced on: the schema's.
    channel: Arc<str>,
}

impl std::fmt::Debug for PgInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgInbox")
            .field("schema", &self.database.schema())
            .field("retention", &self.retention)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl PgInbox {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`,
    /// with sqlx's parameters such as `sslmode`), creates or upgrades the inbox's tables in
    /// `schema` ([`DEFAULT_SCHEMA`](super::DEFAULT_SCHEMA) is `nextgen`) under an advisory
    /// lock, and checks that it answers. Every replica of an endpoint names the same schema.
    ///
    /// The pool it makes holds up to 20 connections and gives up on one after 2 s. For other
    /// settings, build a [`PgPool`] yourself and use [`new`](Self::new).
    ///
    /// The error never contains the URL's password.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        let database = Database::connect(url, schema).await?;
        database.migrate().await?;
        Ok(Self::on(Arc::new(database), true))
    }

    /// An inbox on your own pool, with its tables in `schema`, created or upgraded now.
    pub async fn new(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        let database = Database::on(pool, schema, None)?;
        database.migrate().await?;
        Ok(Self::on(Arc::new(database), true))
    }

    /// Connects to an inbox that is there already, for tools: `None` when `schema` holds no
    /// inbox (a mistyped schema is not an empty inbox). Nothing is created.
    /// Nothing is upgraded either: the inbox of an app of an earlier version (before
    /// migration 3) reads as recording no reruns, and a [rerun](InboxOperator::rerun) through
    /// it is refused until the app of this version has started once.
    pub async fn connect_existing(url: &str, schema: &str) -> Result<Option<Self>, StoreError> {
        let database = Database::connect(url, schema).await?;
        if !database.has_inbox().await? {
            return Ok(None);
        }
        let has_reruns = database.has_reruns().await?;
        Ok(Some(Self::on(Arc::new(database), has_reruns)))
    }

    /// The inbox on `database`, whose table has its `reruns` column when `has_reruns`.
    fn on(database: Arc<Database>, has_reruns: bool) -> Self {
        // NAMEDATALEN: a longer channel name would be cut by the server, not by us.
        let mut channel = format!("nextgen_inbox_{}", database.schema());
        channel.truncate(63);
        let channel: Arc<str> = channel.into();
        PgInbox {
            statements: Arc::new(Statements::new(&database, has_reruns)),
            intake: Arc::new(Intake::start(Arc::clone(&database), Arc::clone(&channel))),
            store: PgStore::on(Arc::clone(&database))
                .with_retention_by(DEFAULT_INBOX_RETENTION, RETENTION_SETTER),
            database,
            retention: DEFAULT_INBOX_RETENTION,
            listen: true,
            channel,
        }
    }

    /// How long handled entries and the handlers' done markers are kept (default 30 days). A
    /// replay within it skips the handlers that had succeeded, and a redelivery of a handled id
    /// is still recognised; it must outlast the retry policy's give-up time (3 days) plus the
    /// time you may take to fix and replay a dead letter.
    ///
    /// Zero, or more than 10 years, is refused when the route is mounted
    /// ([`check_settings`](Self::check_settings)).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.store = self.store.with_retention_by(retention, RETENTION_SETTER);
        self.retention = retention;
        self
    }

    /// Whether idle workers wait on `LISTEN` for other replicas' deliveries (the default) or
    /// only poll. Turn it off behind PgBouncer in transaction mode, which cannot hold a
    /// `LISTEN`: the workers then find other replicas' deliveries at their next poll
    /// ([`WebhookConfig::with_inbox_poll`](crate::WebhookConfig::with_inbox_poll)). Intake
    /// still sends its one `NOTIFY` per committed batch, for replicas that do listen.
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// The inbox on a clock in Unix milliseconds, e.g. to let retries come due in tests without
    /// waiting. Its store takes the same clock.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        let clock: Clock = Arc::new(clock);
        let database = Arc::new(self.database.with_clock(clock));
        let store =
            PgStore::on(Arc::clone(&database)).with_retention_by(self.retention, RETENTION_SETTER);
        self.database = database;
        self.store = store;
        self
    }

    /// Refuses settings the tables cannot hold (a retention of zero or beyond 10 years), with
    /// the setter and the fix named. Mounting the route calls it.
    pub fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(RETENTION_SETTER, self.retention, false)
    }

    /// The idempotency store in the same schema.
    pub fn store(&self) -> PgStore {
        self.store.clone()
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        self.database.schema()
    }

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.database.pool
    }

    /// Takes the due entry first; an entry that does not read is made a dead letter, and the
    /// next one is taken instead, up to [`UNREADABLE_PER_TAKE`] of them.
    async fn take_due(&self, lease: Duration) -> Result<Option<Taken>, StoreError> {
        for _ in 0..UNREADABLE_PER_TAKE {
            let now = self.database.now_ms();
            let token = OwnerToken::new();
            let owner = token.to_string();
            let sql = &self.statements.take;
            let row = self
                .database
                .run_again("inbox take", |_| {
                    sqlx::query(sql)
                        .bind(now)
                        .bind(&owner)
                        .bind(now.saturating_add(entry_lease(lease)))
                        .fetch_optional(&self.database.pool)
                })
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            match taken_from(&row, token) {
                Ok(taken) => return Ok(Some(taken)),
                Err((field, problem)) => self.bury(&row, &owner, field, &problem, now).await?,
            }
        }
        Ok(None)
    }

    /// Makes the entry just taken in `row`, whose `field` does not read, a dead letter naming
    /// why: taken again, it would fail the same way forever.
    async fn bury(
        &self,
        row: &PgRow,
        owner: &str,
        field: &str,
        problem: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let event_id: String = row
            .try_get(0)
            .map_err(|error| self.database.failed("inbox take", &error))?;
        tracing::error!(
            event_id = %crate::text::Escaped(&event_id),
            field,
            %problem,
            "an inbox entry cannot be read: kept as a dead letter, never run"
        );
        let errors = errors_to_json(&unreadable(field, problem));
        let sql = &self.statements.bury;
        self.database
            .run("inbox dead letter", {
                sqlx::query(sql)
                    .bind(&event_id)
                    .bind(owner)
                    .bind(now)
                    .bind(errors)
                    .execute(&self.database.pool)
            })
            .await?;
        Ok(())
    }

    /// Runs the owner-checked finish statement `sql` with `bind` adding its values after the
    /// id, the owner and now; whether it changed the entry.
    async fn if_owner(
        &self,
        operation: &str,
        sql: &str,
        event_id: &str,
        token: OwnerToken,
        extra: (Option<i64>, Option<String>),
    ) -> Result<bool, StoreError> {
        let now = self.database.now_ms();
        let owner = &token.to_string();
        let extra = &extra;
        self.database
            .run_again(operation, move |_| async move {
                let mut query = sqlx::query(sql).bind(event_id).bind(owner).bind(now);
                if let Some(number) = extra.0 {
                    query = query.bind(number);
                }
                if let Some(text) = &extra.1 {
                    query = query.bind(text);
                }
                Ok(query.execute(&self.database.pool).await?.rows_affected() == 1)
            })
            .await
    }

    /// Tells the workers of every replica that listens that entries are due now.
    async fn announce(&self) {
        let channel = Arc::clone(&self.channel);
        let announced = self
            .database
            .run("notification", async move {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(&*channel)
                    .execute(&self.database.pool)
                    .await
            })
            .await;
        if let Err(error) = announced {
            tracing::warn!(%error, "replayed entries wait for the workers' next poll");
        }
    }

    /// The records a list statement `sql` reads for `filter`: `$1` the event type, `$2` the
    /// limit, `$3` the handler's text in the last errors, then `$4` and `$5` the cursor, when
    /// there is one (the statement of a list after a cursor).
    async fn records(
        &self,
        operation: &str,
        sql: &str,
        filter: ListFilter,
    ) -> Result<Vec<InboxRecord>, StoreError> {
        let limit = if filter.limit == 0 { 50 } else { filter.limit };
        let mut query = sqlx::query(sql)
            .bind(filter.event_type)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(filter.handler.as_deref().map(failure_of));
        if let Some(after) = filter.after {
            query = query
                .bind(i64::try_from(after.received_at_ms).unwrap_or(i64::MAX))
                .bind(after.event_id);
        }
        let rows = self
            .database
            .run(operation, query.fetch_all(&self.database.pool))
            .await?;
        rows.iter()
            .map(|row| record(row).map_err(|error| self.database.failed(operation, &error)))
            .collect()
    }
}

/// How a failure of `handler` begins in the last errors as they are written
/// ([`errors_to_json`]'s compact JSON): `"handler":` and the name as a JSON string. Inside a
/// JSON string every `"` is escaped, so the text is found only where a failure's `handler` is
/// exactly this name, and a search for it never fails on a value that is not JSON, where a
/// cast to `jsonb` would fail the whole list.
fn failure_of(handler: &str) -> String {
    let name = serde_json::to_string(handler).unwrap_or_default();
    format!("\"handler\":{name}")
}

/// A column of a row just taken, or which one does not read and why.
fn column<'r, T>(
    row: &'r PgRow,
    index: usize,
    name: &'static str,
) -> Result<T, (&'static str, String)>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(index)
        .map_err(|error| (name, error.to_string()))
}

/// A number of a row just taken that must not be negative.
fn unsigned(row: &PgRow, index: usize, name: &'static str) -> Result<u64, (&'static str, String)> {
    let number: i64 = column(row, index, name)?;
    u64::try_from(number).map_err(|_| (name, format!("{number} is negative")))
}

/// The delivery in a row the take returned, or the column that does not read and how.
fn taken_from(row: &PgRow, token: OwnerToken) -> Result<Taken, (&'static str, String)> {
    let body: Option<Vec<u8>> = column(row, 2, "body")?;
    let body = body.ok_or(("body", "the entry has no body row".to_owned()))?;
    let signed_at: Option<i64> = column(row, 3, "signed_at")?;
    let signed_at = signed_at.ok_or(("signed_at", "the entry has no body row".to_owned()))?;
    let attempts: i32 = column(row, 5, "attempts")?;
    let first_failed_at_ms: Option<i64> = column(row, 6, "first_failed_at_ms")?;
    Ok(Taken {
        entry: InboxEntry {
            event_id: column(row, 0, "event_id")?,
            event_type: column(row, 1, "event_type")?,
            body,
            signed_at: u64::try_from(signed_at)
                .map_err(|_| ("signed_at", format!("{signed_at} is negative")))?,
            received_at_ms: unsigned(row, 4, "received_at_ms")?,
            signature: column(row, 7, "signature")?,
        },
        token,
        attempts: u32::try_from(attempts)
            .map_err(|_| ("attempts", format!("{attempts} is negative")))?,
        first_failed_at_ms: first_failed_at_ms.and_then(|at| u64::try_from(at).ok()),
    })
}

/// [`InboxOperator::rerun`] in `transaction`, which the caller commits on [`Rerun::PutBack`]
/// only: the entry locked, the handler's live done marker removed, the entry replayed with the
/// rerun recorded.
async fn rerun_in(
    transaction: &mut sqlx::PgConnection,
    statements: &Statements,
    event_id: &str,
    handler: &str,
    now: i64,
) -> Result<Rerun, sqlx::Error> {
    let entry: Option<(String, Option<String>)> = sqlx::query_as(&statements.rerun_entry)
        .bind(event_id)
        .fetch_optional(&mut *transaction)
        .await?;
    let Some((state, reruns)) = entry else {
        return Ok(Rerun::NoEntry);
    };
    if state == "running" {
        return Ok(Rerun::Running);
    }
    let removed = sqlx::query(&statements.rerun_marker)
        .bind(event_id)
        .bind(handler)
        .bind(now)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    if removed == 0 {
        let done = sqlx::query_scalar(&statements.done_handlers)
            .bind(event_id)
            .bind(now)
            .fetch_all(&mut *transaction)
            .await?;
        return Ok(Rerun::NotDone { done });
    }
    let mut recorded = reruns_from_json(reruns.as_deref());
    recorded.push(RecordedRerun {
        handler: handler.to_owned(),
        at_ms: u64::try_from(now).unwrap_or(0),
    });
    sqlx::query(&statements.rerun)
        .bind(now)
        .bind(event_id)
        .bind(reruns_to_json(&recorded))
        .execute(&mut *transaction)
        .await?;
    Ok(Rerun::PutBack)
}

/// A record as [`COLUMNS`] read it.
fn record(row: &PgRow) -> Result<InboxRecord, sqlx::Error> {
    let to_u64 = |number: i64| u64::try_from(number).unwrap_or(0);
    let state: String = row.try_get(2)?;
    let attempts = u32::try_from(row.try_get::<i32, _>(3)?).unwrap_or(0);
    let state = listed_state(&state, attempts);
    let waiting = matches!(state, InboxState::Pending | InboxState::Retrying);
    let errors: Option<String> = row.try_get(8)?;
    Ok(InboxRecord {
        event_id: row.try_get(0)?,
        event_type: row.try_get(1)?,
        state,
        attempts,
        received_at_ms: to_u64(row.try_get(4)?),
        // An entry without a body row (buried as unreadable) has no signature time.
        signed_at: row.try_get::<Option<i64>, _>(10)?.map_or(0, to_u64),
        due_at_ms: if waiting {
            Some(to_u64(row.try_get(5)?))
        } else {
            None
        },
        first_failed_at_ms: row.try_get::<Option<i64>, _>(6)?.map(to_u64),
        finished_at_ms: row.try_get::<Option<i64>, _>(7)?.map(to_u64),
        last_errors: errors_from_json(errors.as_deref()),
        reruns: reruns_from_json(row.try_get::<Option<String>, _>(9)?.as_deref()),
        body: None,
    })
}

impl Inbox for PgInbox {
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        Some(Arc::new(self.clone()))
    }
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        Box::pin(self.intake.append(entry))
    }

    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        Box::pin(self.take_due(lease))
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.database.now_ms();
            let owner = token.to_string();
            let sql = &self.statements.renew;
            let renewed = self
                .database
                .run_again("inbox lease renewal", |_| {
                    sqlx::query(sql)
                        .bind(event_id)
                        .bind(&owner)
                        .bind(now.saturating_add(entry_lease(lease)))
                        .bind(now)
                        .execute(&self.database.pool)
                })
                .await?;
            Ok(renewed.rows_affected() == 1)
        })
    }

    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        let statements = &self.statements;
        Box::pin(async move {
            match finish {
                Finish::Handled => {
                    self.if_owner(
                        "inbox finish",
                        &statements.handled,
                        event_id,
                        token,
                        (None, None),
                    )
                    .await
                }
                Finish::Retry { at_ms, errors } => {
                    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
                    self.if_owner(
                        "inbox retry",
                        &statements.retry,
                        event_id,
                        token,
                        (Some(at), Some(errors_to_json(&errors))),
                    )
                    .await
                }
                Finish::Dead { errors } => {
                    self.if_owner(
                        "inbox dead letter",
                        &statements.dead,
                        event_id,
                        token,
                        (None, Some(errors_to_json(&errors))),
                    )
                    .await
                }
            }
        })
    }

    fn recover(&self) -> StoreFuture<'_, Recovered> {
        // Replicas share the inbox: what a dead one held is taken again when its lease lapses,
        // never at another's start, which cannot tell a dead replica from a live one.
        Box::pin(async { Ok(Recovered::default()) })
    }

    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        let before = i64::try_from(before_ms).unwrap_or(i64::MAX);
        let sql = &self.statements.prune;
        Box::pin(async move {
            let mut pruned = 0;
            loop {
                let gone: i64 = self
                    .database
                    .run("inbox prune", {
                        sqlx::query_scalar(sql)
                            .bind(before)
                            .bind(PRUNE_BATCH)
                            .fetch_one(&self.database.pool)
                    })
                    .await?;
                pruned += u64::try_from(gone).unwrap_or(0);
                if gone < PRUNE_BATCH {
                    return Ok(pruned);
                }
            }
        })
    }

    fn retention(&self) -> Duration {
        self.retention
    }

    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(self.store.clone())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.database.now_ms()).unwrap_or(0)
    }

    fn check_settings(&self) -> Result<(), StoreError> {
        PgInbox::check_settings(self)
    }

    fn watch_arrivals(&self, arrivals: Arrivals) -> Option<ArrivalsWatch> {
        self.listen.then(|| {
            super::listen::watch(
                self.database.pool.clone(),
                self.channel.to_string(),
                arrivals,
            )
        })
    }
}

impl InboxOperator for PgInbox {
    fn stats(&self) -> StoreFuture<'_, InboxStats> {
        let sql = &self.statements.stats;
        Box::pin(async move {
            let row = self
                .database
                .run(
                    "inbox stats",
                    sqlx::query(sql).fetch_one(&self.database.pool),
                )
                .await?;
            let read = |error: sqlx::Error| self.database.failed("inbox stats", &error);
            let count = |index: usize| {
                row.try_get::<i64, _>(index)
                    .map(|count| u64::try_from(count).unwrap_or(0))
                    .map_err(read)
            };
            let oldest: Option<i64> = row.try_get(5).map_err(read)?;
            Ok(InboxStats {
                pending: count(0)?,
                retrying: count(1)?,
                running: count(2)?,
                handled: count(3)?,
                dead: count(4)?,
                oldest_pending_at_ms: oldest.and_then(|at| u64::try_from(at).ok()),
            })
        })
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<InboxRecord>> {
        let sql =
            &self.statements.list[list_index(filter.state)][usize::from(filter.after.is_some())];
        Box::pin(self.records("inbox list", sql, filter))
    }

    fn show<'a>(
        &'a self,
        event_id: &'a str,
        with_body: bool,
    ) -> StoreFuture<'a, Option<InboxRecord>> {
        let sql = &self.statements.show;
        Box::pin(async move {
            let row = self
                .database
                .run("inbox show", {
                    sqlx::query(sql)
                        .bind(event_id)
                        .fetch_optional(&self.database.pool)
                })
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let read = |error: sqlx::Error| self.database.failed("inbox show", &error);
            let mut record = record(&row).map_err(read)?;
            if with_body {
                let body: Option<Vec<u8>> = row.try_get(11).map_err(read)?;
                record.body = body.map(|body| String::from_utf8_lossy(&body).into_owned());
            }
            Ok(Some(record))
        })
    }

    fn replay<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<String>> {
        let sql = &self.statements.replay;
        Box::pin(async move {
            let now = self.database.now_ms();
            let found: Vec<String> = self
                .database
                .run("inbox replay", {
                    sqlx::query_scalar(sql)
                        .bind(now)
                        .bind(event_ids)
                        .fetch_all(&self.database.pool)
                })
                .await?;
            if !found.is_empty() {
                self.announce().await;
            }
            // In the order asked for.
            let found: std::collections::HashSet<String> = found.into_iter().collect();
            Ok(event_ids
                .iter()
                .filter(|id| found.contains(*id))
                .cloned()
                .collect())
        })
    }

    fn rerun<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, Rerun> {
        let statements = &self.statements;
        Box::pin(async move {
            if !statements.has_reruns {
                return Err(StoreError::Unavailable(format!(
                    "the inbox in the schema `{}` has no `reruns` column yet (migration 3): start the app of this version once, which upgrades it, then run the handler again",
                    self.database.schema()
                )));
            }
            let now = self.database.now_ms();
            let rerun = self
                .database
                .run("inbox rerun", async {
                    // One transaction: the marker's removal and the entry's return to pending
                    // commit together or not at all.
                    let mut transaction = self.database.pool.begin().await?;
                    let rerun =
                        rerun_in(&mut transaction, statements, event_id, handler, now).await?;
                    if rerun == Rerun::PutBack {
                        transaction.commit().await?;
                    } else {
                        transaction.rollback().await?;
                    }
                    Ok(rerun)
                })
                .await?;
            if rerun == Rerun::PutBack {
                self.announce().await;
            }
            log_rerun(event_id, handler, &rerun);
            Ok(rerun)
        })
    }

    fn replay_dead(&self, since_ms: Option<u64>) -> StoreFuture<'_, DeadReplay> {
        let sql = &self.statements.replay_dead;
        Box::pin(async move {
            let now = self.database.now_ms();
            let since = since_ms.map(|since| i64::try_from(since).unwrap_or(i64::MAX));
            let replayed: Vec<String> = self
                .database
                .run("inbox replay", {
                    sqlx::query_scalar(sql)
                        .bind(now)
                        .bind(since)
                        .fetch_all(&self.database.pool)
                })
                .await?;
            if !replayed.is_empty() {
                self.announce().await;
            }
            // The rows are the index: a dead letter is never listed without its entry.
            Ok(DeadReplay {
                replayed,
                unknown: Vec::new(),
            })
        })
    }

    fn history(&self) -> Option<&dyn InboxHistory> {
        Some(self)
    }
}

impl InboxHistory for PgInbox {
    fn hourly(&self, from_ms: u64, hours: u32) -> StoreFuture<'_, Vec<HourCounts>> {
        let mut counts = empty_hours(from_ms, hours);
        let sql = &self.statements.hourly;
        Box::pin(async move {
            let Some((from, to)) = hours_span(&counts) else {
                return Ok(counts);
            };
            let rows = self
                .database
                .run("inbox history", {
                    sqlx::query(sql)
                        .bind(from)
                        .bind(to)
                        .fetch_all(&self.database.pool)
                })
                .await?;
            let read = |error: sqlx::Error| self.database.failed("inbox history", &error);
            for row in &rows {
                let hour: i64 = row.try_get(0).map_err(read)?;
                let Some(counted) = hour_slot(&mut counts, hour) else {
                    continue;
                };
                let count = |index: usize| {
                    row.try_get::<i64, _>(index)
                        .map(|count| u64::try_from(count).unwrap_or(0))
                        .map_err(read)
                };
                counted.received = count(1)?;
                counted.handled = count(2)?;
                counted.retried = count(3)?;
                counted.dead = count(4)?;
            }
            Ok(counts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::HandlerFailure;

    #[test]
    fn a_handler_is_found_in_the_errors_as_written_by_its_whole_name_only() {
        let errors = errors_to_json(&[
            HandlerFailure {
                handler: "book_refund".to_owned(),
                error: r#"the "handler":"audit" went away"#.to_owned(),
            },
            HandlerFailure {
                handler: r#"say "hi""#.to_owned(),
                error: "down".to_owned(),
            },
        ]);
        for handler in ["book_refund", r#"say "hi""#] {
            assert!(errors.contains(&failure_of(handler)), "{handler}");
        }
        // Not a part of a name, nor a name quoted in an error.
        for other in ["book", "refund", "audit", r#"say "hi"#, "down"] {
            assert!(!errors.contains(&failure_of(other)), "{other}");
        }
    }
}
