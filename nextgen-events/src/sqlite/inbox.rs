//! The SQLite inbox: verified deliveries in the `nextgen_inbox` table, one row per event id.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, Row, params};

use super::{Clock, Database, Durability, SqliteStore, millis};
use crate::idempotency::{IdempotencyStore, OwnerToken, StoreError, StoreFuture, check_duration};
use crate::inbox::{
    Appended, DeadReplay, Finish, HourCounts, Inbox, InboxEntry, InboxHistory, InboxOperator,
    InboxRecord, InboxState, InboxStats, ListFilter, RecordedRerun, Recovered, Rerun, Taken,
    UNREADABLE_PER_TAKE, WorkersLock, empty_hours, errors_from_json, errors_to_json, hour_slot,
    hours_span, listed_state, log_rerun, reruns_from_json, reruns_to_json, unreadable,
};

/// An [`Inbox`] in a SQLite file, with its [`SqliteStore`] in the same file.
///
/// A delivery is committed (`synchronous=FULL` by default) before the route answers 200.
/// Concurrent deliveries share one commit. See the [module docs](super) for the file.
///
/// One process runs the workers of a SQLite inbox: when they start they take an exclusive
/// lock on `<file>.lock` beside it (released when they stop, or by the operating system when
/// the process dies; named after the file's canonical path, so a symlink or a relative path
/// takes the same lock, and refused on a file with a second hard link), and a second process's workers refuse to start with
/// [`StoreError::Locked`], naming the holder. Processes that only take deliveries in
/// ([`with_inbox_workers(0)`](crate::WebhookConfig::with_inbox_workers)) and the `inbox`
/// tool need no lock. To run several processes, give each its own file, or share a
/// [`RedisInbox`](crate::redis::RedisInbox) between them.
#[derive(Clone, Debug)]
pub struct SqliteInbox {
    database: Arc<Database>,
    store: SqliteStore,
    retention: Duration,
}

use crate::inbox::DEFAULT_INBOX_RETENTION;

/// The setter of an inbox's retention, as the check names it.
const RETENTION_SETTER: &str = "SqliteInbox::with_retention";

const COLUMNS: &str = "event_id, event_type, state, attempts, received_at_ms, signed_at, due_at_ms, first_failed_at_ms, finished_at_ms, last_errors";

/// The columns [`record`] reads: [`COLUMNS`], then the reruns, or none (`NULL`) from a file of
/// an earlier version that has no `reruns` column (opened read-only, so not brought up to date).
fn columns(has_reruns: bool) -> String {
    format!("{COLUMNS}, {}", if has_reruns { "reruns" } else { "NULL" })
}

impl SqliteInbox {
    /// Opens (or creates) the file at `path`, with `synchronous=FULL`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (or creates) the file at `path` with the given durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Ok(Self::on(Database::open(path.as_ref(), durability, None)?))
    }

    /// Opens the file with a clock in Unix milliseconds, e.g. to let retries come due in
    /// tests without waiting.
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

    /// Opens an existing inbox file read-only, for tools that only look (stats, lists,
    /// entries): nothing is created, initialised or locked, and a file that is not an inbox
    /// (empty, or without its `nextgen_inbox` table) is refused. Writes (appends, replays)
    /// through it fail. A file of an earlier version is read as it is (its entries record no
    /// reruns); opening it for writing brings it up to date.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self::on(Database::open_read_only(path.as_ref())?))
    }

    fn on(database: Arc<Database>) -> Self {
        SqliteInbox {
            store: SqliteStore::on(Arc::clone(&database))
                .with_retention_by(DEFAULT_INBOX_RETENTION, RETENTION_SETTER),
            database,
            retention: DEFAULT_INBOX_RETENTION,
        }
    }

    /// How long handled entries and the handlers' done markers are kept (default 30 days).
    /// A replay within it skips the handlers that had succeeded, and a redelivery of a
    /// handled id is still recognised; it must outlast the retry policy's give-up time (3
    /// days) plus the time you may take to fix and replay a dead letter.
    ///
    /// Zero, or more than 10 years, is refused when the workers start (mounting the route),
    /// naming this setter ([`check_settings`](Self::check_settings)).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.store = self.store.with_retention_by(retention, RETENTION_SETTER);
        self.retention = retention;
        self
    }

    /// Refuses settings the file cannot hold (a retention of zero or beyond 10 years), with
    /// the setter and the fix named ([`StoreError::SettingTooLong`],
    /// [`StoreError::ZeroSetting`]). The workers call it before they start, so a wrong
    /// setting stops the app at mount instead of failing every delivery.
    pub fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(RETENTION_SETTER, self.retention, false)
    }

    /// The idempotency store in the same file.
    pub fn store(&self) -> SqliteStore {
        self.store.clone()
    }
}

/// A row the take returned (`rowid` first), or the column that does not read and how.
fn taken_from(row: &Row<'_>, token: OwnerToken) -> Result<Taken, (&'static str, String)> {
    fn column<T: rusqlite::types::FromSql>(
        row: &Row<'_>,
        index: usize,
        name: &'static str,
    ) -> Result<T, (&'static str, String)> {
        row.get(index).map_err(|error| (name, error.to_string()))
    }
    Ok(Taken {
        entry: InboxEntry {
            event_id: column(row, 1, "event_id")?,
            event_type: column(row, 2, "event_type")?,
            body: column(row, 3, "body")?,
            signed_at: column(row, 4, "signed_at")?,
            received_at_ms: column(row, 5, "received_at_ms")?,
            signature: column(row, 8, "signature")?,
        },
        token,
        attempts: column(row, 6, "attempts")?,
        first_failed_at_ms: column(row, 7, "first_failed_at_ms")?,
    })
}

/// Makes the row `rowid`, just taken, a dead letter whose column `field` does not read. Its
/// own columns may be what is wrong, so it is found by `rowid` and its failure time is set
/// unless it holds a number.
fn bury(
    connection: &rusqlite::Connection,
    rowid: i64,
    field: &str,
    problem: &str,
    now: i64,
) -> rusqlite::Result<()> {
    let event_id: Option<String> = connection
        .query_row(
            "SELECT CAST(event_id AS TEXT) FROM nextgen_inbox WHERE rowid = ?1",
            [rowid],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    tracing::error!(
        event_id = %crate::text::Escaped(event_id.as_deref().unwrap_or("")),
        field,
        %problem,
        "an inbox entry cannot be read: kept as a dead letter, never run"
    );
    connection
        .prepare_cached(
            "UPDATE nextgen_inbox SET state = 'dead', owner = NULL, finished_at_ms = ?2,
             first_failed_at_ms = CASE WHEN typeof(first_failed_at_ms) = 'integer' AND first_failed_at_ms >= 0 THEN first_failed_at_ms ELSE ?2 END,
             last_errors = ?3 WHERE rowid = ?1",
        )?
        .execute(params![rowid, now, errors_to_json(&unreadable(field, problem))])?;
    Ok(())
}

fn record(row: &Row<'_>) -> rusqlite::Result<InboxRecord> {
    let state: String = row.get(2)?;
    let attempts: u32 = row.get(3)?;
    let state = listed_state(&state, attempts);
    let errors: Option<String> = row.get(9)?;
    let waiting = matches!(state, InboxState::Pending | InboxState::Retrying);
    Ok(InboxRecord {
        event_id: row.get(0)?,
        event_type: row.get(1)?,
        state,
        attempts,
        received_at_ms: row.get(4)?,
        signed_at: row.get(5)?,
        due_at_ms: if waiting { row.get(6)? } else { None },
        first_failed_at_ms: row.get(7)?,
        finished_at_ms: row.get(8)?,
        last_errors: errors_from_json(errors.as_deref()),
        // Shown whatever it holds: a value that is not text (changed outside nextgen-events)
        // reads as no reruns rather than failing the whole list.
        reruns: reruns_from_json(row.get::<_, Option<String>>(10).ok().flatten().as_deref()),
        body: None,
    })
}

/// The SQL condition of a listed state. The states other than handled say `state !=
/// 'handled'` too: SQLite uses the index of unhandled entries only for a query that states its
/// condition, and without it a page of rare dead letters would read the handled entries too.
fn state_condition(state: InboxState) -> &'static str {
    match state {
        InboxState::Pending => "state != 'handled' AND state = 'pending' AND attempts = 0",
        InboxState::Retrying => "state != 'handled' AND state = 'pending' AND attempts > 0",
        InboxState::Running => "state != 'handled' AND state = 'running'",
        InboxState::Handled => "state = 'handled'",
        InboxState::Dead => "state != 'handled' AND state = 'dead'",
    }
}

/// The condition of [`ListFilter::handler`] (`?4`): the entry's last errors, a JSON array of
/// `{"handler", "error"}` objects, hold one of the handler's. Text that is not JSON (changed
/// outside nextgen-events) holds none rather than failing the whole list.
const HANDLER_FAILED: &str = "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(last_errors) THEN last_errors END) AS failure
     WHERE CASE WHEN failure.type = 'object' THEN json_extract(failure.value, '$.handler') END = ?4)";

/// The counts of [`InboxOperator::stats`] in one statement, so one snapshot: per stored state
/// and whether tried (the pending ones' oldest receipt time with them), the unhandled entries
/// grouped on their index and the handled ones counted on theirs, without a row read.
const STATS: &str = "SELECT state, attempts > 0, count(*), min(received_at_ms) FROM nextgen_inbox
     WHERE state != 'handled' GROUP BY 1, 2
     UNION ALL
     SELECT 'handled', 0, count(*), NULL FROM nextgen_inbox WHERE state = 'handled'";

/// The statement of a list for `filter`, newest first: `?1` the event type, `?2` and `?3` the
/// cursor, `?4` the handler, `?5` the limit. Only the conditions asked for are in it: under
/// `?2 IS NULL OR ...` SQLite could not start at the cursor in the index. The parameters keep
/// their numbers either way (`?5` is always there), so one binding fits every variant.
fn list_sql(filter: &ListFilter, has_reruns: bool) -> String {
    let mut conditions = vec![filter.state.map_or("1 = 1", state_condition)];
    if filter.event_type.is_some() {
        conditions.push("event_type = ?1");
    }
    if filter.after.is_some() {
        conditions.push("(received_at_ms, event_id) < (?2, ?3)");
    }
    if filter.handler.is_some() {
        conditions.push(HANDLER_FAILED);
    }
    format!(
        "SELECT {} FROM nextgen_inbox WHERE {}
         ORDER BY received_at_ms DESC, event_id DESC LIMIT ?5",
        columns(has_reruns),
        conditions.join(" AND ")
    )
}

/// The history's counts per hour (`hour` is the hour's number since the epoch) of the entries
/// received, handled, first failed, and dead in `[?1, ?2)` (Unix milliseconds): each count from
/// the index of its own time, over the hours asked for only.
const HOURLY: &str = "
WITH counted (hour, received, handled, retried, dead) AS (
    SELECT CAST(received_at_ms / 3600000 AS INTEGER), count(*), 0, 0, 0 FROM nextgen_inbox
    WHERE received_at_ms >= ?1 AND received_at_ms < ?2 GROUP BY 1
  UNION ALL
    SELECT CAST(finished_at_ms / 3600000 AS INTEGER), 0, count(*), 0, 0 FROM nextgen_inbox
    WHERE state = 'handled' AND finished_at_ms >= ?1 AND finished_at_ms < ?2 GROUP BY 1
  UNION ALL
    SELECT CAST(first_failed_at_ms / 3600000 AS INTEGER), 0, 0, count(*), 0 FROM nextgen_inbox
    WHERE first_failed_at_ms >= ?1 AND first_failed_at_ms < ?2 GROUP BY 1
  UNION ALL
    SELECT CAST(finished_at_ms / 3600000 AS INTEGER), 0, 0, 0, count(*) FROM nextgen_inbox
    WHERE state != 'handled' AND state = 'dead' AND finished_at_ms >= ?1 AND finished_at_ms < ?2
    GROUP BY 1
)
SELECT hour, sum(received), sum(handled), sum(retried), sum(dead) FROM counted
GROUP BY hour ORDER BY hour";

/// A count as SQLite returns it; a negative one (never written) counts as none.
fn count(number: i64) -> u64 {
    u64::try_from(number).unwrap_or(0)
}

const REPLAYED: &str = "state = 'pending', owner = NULL, due_at_ms = ?1, attempts = 0, first_failed_at_ms = NULL, finished_at_ms = NULL";

/// [`InboxOperator::rerun`] inside its savepoint: the entry's state, then the handler's live
/// done marker removed, then the entry replayed with the rerun recorded. Nothing is written
/// unless all of it is.
fn rerun_in(
    connection: &rusqlite::Connection,
    event_id: &str,
    handler: &str,
    now: i64,
) -> rusqlite::Result<Rerun> {
    let entry: Option<(String, Option<String>)> = connection
        .prepare_cached(
            "SELECT state, CAST(reruns AS TEXT) FROM nextgen_inbox WHERE event_id = ?1",
        )?
        .query_row([event_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((state, reruns)) = entry else {
        return Ok(Rerun::NoEntry);
    };
    if state == "running" {
        return Ok(Rerun::Running);
    }
    // A marker past its time is no longer one: a claim would take it over and run the handler.
    let removed = connection
        .prepare_cached(
            "DELETE FROM nextgen_handlers WHERE event_id = ?1 AND handler = ?2 AND state = 'done' AND until_ms > ?3",
        )?
        .execute(params![event_id, handler, now])?;
    if removed == 0 {
        let done = connection
            .prepare_cached(
                "SELECT handler FROM nextgen_handlers WHERE event_id = ?1 AND state = 'done' AND until_ms > ?2 ORDER BY handler",
            )?
            .query_map(params![event_id, now], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        return Ok(Rerun::NotDone { done });
    }
    let mut recorded = reruns_from_json(reruns.as_deref());
    recorded.push(RecordedRerun {
        handler: handler.to_owned(),
        at_ms: u64::try_from(now).unwrap_or(0),
    });
    connection
        .prepare_cached(&format!(
            "UPDATE nextgen_inbox SET {REPLAYED}, reruns = ?3 WHERE event_id = ?2"
        ))?
        .execute(params![now, event_id, reruns_to_json(&recorded)])?;
    Ok(Rerun::PutBack)
}

impl Inbox for SqliteInbox {
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        Some(Arc::new(self.clone()))
    }
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let added = connection
                        .prepare_cached("INSERT INTO nextgen_inbox (event_id, event_type, body, signed_at, received_at_ms, state, due_at_ms, signature) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?5, ?6) ON CONFLICT (event_id) DO NOTHING")?
                        .execute(params![entry.event_id, entry.event_type, entry.body, entry.signed_at, entry.received_at_ms, entry.signature])?;
                    Ok(if added == 1 { Appended::New } else { Appended::Duplicate })
                })
                .await
        })
    }

    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        let now = self.database.now_ms();
        let token = OwnerToken::new();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    for _ in 0..UNREADABLE_PER_TAKE {
                        // The update is made whether or not the row then reads: one that does
                        // not (a column changed outside nextgen-events) would be taken again
                        // after its lease, forever. It becomes a dead letter naming why.
                        let taken = connection
                            .prepare_cached(
                                "UPDATE nextgen_inbox SET state = 'running', owner = ?1, queued_due_ms = due_at_ms, due_at_ms = ?2, attempts = attempts + 1
                                 WHERE event_id = (SELECT event_id FROM nextgen_inbox
                                                   WHERE state IN ('pending', 'running') AND due_at_ms <= ?3
                                                   ORDER BY due_at_ms LIMIT 1)
                                 RETURNING rowid, event_id, event_type, body, signed_at, received_at_ms, attempts, first_failed_at_ms, signature",
                            )?
                            .query_row(
                                params![token.to_string(), now.saturating_add(millis(lease)), now],
                                |row| Ok((row.get::<_, i64>(0)?, taken_from(row, token))),
                            )
                            .optional()?;
                        match taken {
                            None => return Ok(None),
                            Some((_, Ok(taken))) => return Ok(Some(taken)),
                            Some((rowid, Err((field, problem)))) => {
                                bury(connection, rowid, field, &problem, now)?;
                            }
                        }
                    }
                    Ok(None)
                })
                .await
        })
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let event_id = event_id.to_owned();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let renewed = connection
                        .prepare_cached("UPDATE nextgen_inbox SET due_at_ms = ?3 WHERE event_id = ?1 AND owner = ?2 AND state = 'running' AND due_at_ms > ?4")?
                        .execute(params![event_id, token.to_string(), now.saturating_add(millis(lease)), now])?;
                    Ok(renewed == 1)
                })
                .await
        })
    }

    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        let now = self.database.now_ms();
        let event_id = event_id.to_owned();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let owner = token.to_string();
                    let changed = match finish {
                        Finish::Handled => connection
                            .prepare_cached("UPDATE nextgen_inbox SET state = 'handled', owner = NULL, finished_at_ms = ?3 WHERE event_id = ?1 AND owner = ?2 AND state = 'running'")?
                            .execute(params![event_id, owner, now])?,
                        Finish::Retry { at_ms, errors } => connection
                            .prepare_cached("UPDATE nextgen_inbox SET state = 'pending', owner = NULL, due_at_ms = ?4, first_failed_at_ms = COALESCE(first_failed_at_ms, ?3), last_errors = ?5 WHERE event_id = ?1 AND owner = ?2 AND state = 'running'")?
                            .execute(params![event_id, owner, now, at_ms, errors_to_json(&errors)])?,
                        Finish::Dead { errors } => connection
                            .prepare_cached("UPDATE nextgen_inbox SET state = 'dead', owner = NULL, finished_at_ms = ?3, first_failed_at_ms = COALESCE(first_failed_at_ms, ?3), last_errors = ?4 WHERE event_id = ?1 AND owner = ?2 AND state = 'running'")?
                            .execute(params![event_id, owner, now, errors_to_json(&errors)])?,
                    };
                    Ok(changed == 1)
                })
                .await
        })
    }

    fn recover(&self) -> StoreFuture<'_, Recovered> {
        let run = OwnerToken::this_run_prefix();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    // The workers' lock makes this process the file's only worker, and no
                    // worker of this run has taken anything yet; the run check keeps even a
                    // claim of this run's inline dispatch on the same file out of reach.
                    const EARLIER_RUN: &str = "owner IS NULL OR substr(owner, 1, 16) != ?1";
                    let claims = connection
                        .prepare_cached(&format!(
                            "DELETE FROM nextgen_handlers WHERE state = 'claimed' AND ({EARLIER_RUN})"
                        ))?
                        .execute([&run])?;
                    let object_claims = connection
                        .prepare_cached(&format!(
                            "UPDATE nextgen_objects SET owner = NULL, lease_until_ms = 0 WHERE owner IS NOT NULL AND ({EARLIER_RUN})"
                        ))?
                        .execute([&run])?;
                    let deliveries = connection
                        .prepare_cached(&format!(
                            "UPDATE nextgen_inbox SET state = 'pending', owner = NULL, due_at_ms = COALESCE(queued_due_ms, received_at_ms) WHERE state = 'running' AND ({EARLIER_RUN}) RETURNING event_id"
                        ))?
                        .query_map([&run], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    let count = |changed: usize| u64::try_from(changed).unwrap_or(u64::MAX);
                    Ok(Recovered {
                        deliveries,
                        claims: count(claims),
                        object_claims: count(object_claims),
                    })
                })
                .await
        })
    }

    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        // The workers are what use the retention (done markers, the prune): refused here, at
        // mount, rather than in every delivery's `complete`.
        self.check_settings()?;
        super::lock::lock_workers(self.database.path()).map(Some)
    }

    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let pruned = connection
                        .prepare_cached("DELETE FROM nextgen_inbox WHERE state = 'handled' AND finished_at_ms < ?1")?
                        .execute([before_ms])?;
                    Ok(u64::try_from(pruned).unwrap_or(u64::MAX))
                })
                .await
        })
    }

    fn retention(&self) -> Duration {
        self.retention
    }

    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(self.store.clone())
    }

    fn check_settings(&self) -> Result<(), StoreError> {
        SqliteInbox::check_settings(self)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.database.now_ms()).unwrap_or(0)
    }
}

impl InboxOperator for SqliteInbox {
    fn stats(&self) -> StoreFuture<'_, InboxStats> {
        Box::pin(self.database.read(|connection| {
            let mut statement = connection.prepare_cached(STATS)?;
            let mut rows = statement.query([])?;
            let mut stats = InboxStats::default();
            while let Some(row) = rows.next()? {
                let state: String = row.get(0)?;
                let tried: bool = row.get(1)?;
                let number = count(row.get(2)?);
                match listed_state(&state, u32::from(tried)) {
                    InboxState::Pending => {
                        stats.pending += number;
                        let oldest: Option<i64> = row.get(3)?;
                        stats.oldest_pending_at_ms = oldest.and_then(|at| u64::try_from(at).ok());
                    }
                    InboxState::Retrying => stats.retrying += number,
                    InboxState::Running => stats.running += number,
                    InboxState::Handled => stats.handled += number,
                    InboxState::Dead => stats.dead += number,
                }
            }
            Ok(stats)
        }))
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<InboxRecord>> {
        let has_reruns = self.database.has_reruns();
        Box::pin(self.database.read(move |connection| {
            let limit = if filter.limit == 0 { 50 } else { filter.limit };
            let mut statement = connection.prepare_cached(&list_sql(&filter, has_reruns))?;
            let (after_ms, after_id) = filter.after.map_or((None, None), |after| {
                (
                    Some(i64::try_from(after.received_at_ms).unwrap_or(i64::MAX)),
                    Some(after.event_id),
                )
            });
            let records = statement
                .query_map(
                    params![
                        filter.event_type,
                        after_ms,
                        after_id,
                        filter.handler,
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    record,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(records)
        }))
    }

    fn show<'a>(
        &'a self,
        event_id: &'a str,
        with_body: bool,
    ) -> StoreFuture<'a, Option<InboxRecord>> {
        let event_id = event_id.to_owned();
        let has_reruns = self.database.has_reruns();
        Box::pin(self.database.read(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT {}, body FROM nextgen_inbox WHERE event_id = ?1",
                        columns(has_reruns)
                    ),
                    [&event_id],
                    |row| {
                        let mut record = record(row)?;
                        if with_body {
                            let body: Vec<u8> = row.get(11)?;
                            record.body = Some(String::from_utf8_lossy(&body).into_owned());
                        }
                        Ok(record)
                    },
                )
                .optional()
        }))
    }

    fn replay<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<String>> {
        let now = self.database.now_ms();
        let event_ids = event_ids.to_vec();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let mut statement = connection.prepare(&format!(
                        "UPDATE nextgen_inbox SET {REPLAYED} WHERE event_id = ?2 AND state != 'running' RETURNING event_id"
                    ))?;
                    let mut replayed = Vec::new();
                    for event_id in &event_ids {
                        if let Some(id) = statement
                            .query_row(params![now, event_id], |row| row.get(0))
                            .optional()?
                        {
                            replayed.push(id);
                        }
                    }
                    Ok(replayed)
                })
                .await
        })
    }

    fn rerun<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, Rerun> {
        let now = self.database.now_ms();
        let (id, name) = (event_id.to_owned(), handler.to_owned());
        Box::pin(async move {
            let rerun = self
                .database
                .write(move |connection| {
                    // A savepoint of its own inside the writer's group transaction: the
                    // marker's removal and the entry's return to pending stand or fall
                    // together, whatever the batch's other jobs do, and commit as one.
                    connection.execute_batch("SAVEPOINT nextgen_rerun")?;
                    match rerun_in(connection, &id, &name, now) {
                        Ok(rerun) => {
                            connection.execute_batch("RELEASE nextgen_rerun")?;
                            Ok(rerun)
                        }
                        Err(error) => {
                            connection.execute_batch(
                                "ROLLBACK TO nextgen_rerun; RELEASE nextgen_rerun",
                            )?;
                            Err(error)
                        }
                    }
                })
                .await?;
            log_rerun(event_id, handler, &rerun);
            Ok(rerun)
        })
    }

    fn replay_dead(&self, since_ms: Option<u64>) -> StoreFuture<'_, DeadReplay> {
        let now = self.database.now_ms();
        Box::pin(async move {
            self.database
                .write(move |connection| {
                    let mut statement = connection.prepare(&format!(
                        "UPDATE nextgen_inbox SET {REPLAYED} WHERE state = 'dead' AND (?2 IS NULL OR received_at_ms >= ?2) RETURNING event_id"
                    ))?;
                    let replayed = statement
                        .query_map(params![now, since_ms], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    // The rows are the index: a dead letter is never listed without its entry.
                    Ok(DeadReplay {
                        replayed,
                        unknown: Vec::new(),
                    })
                })
                .await
        })
    }

    fn history(&self) -> Option<&dyn InboxHistory> {
        Some(self)
    }
}

impl InboxHistory for SqliteInbox {
    fn hourly(&self, from_ms: u64, hours: u32) -> StoreFuture<'_, Vec<HourCounts>> {
        let mut counts = empty_hours(from_ms, hours);
        Box::pin(self.database.read(move |connection| {
            let Some((from, to)) = hours_span(&counts) else {
                return Ok(counts);
            };
            let mut statement = connection.prepare_cached(HOURLY)?;
            let mut rows = statement.query(params![from, to])?;
            while let Some(row) = rows.next()? {
                let hour: i64 = row.get(0)?;
                let Some(counted) = hour_slot(&mut counts, hour) else {
                    continue;
                };
                counted.received = count(row.get(1)?);
                counted.handled = count(row.get(2)?);
                counted.retried = count(row.get(3)?);
                counted.dead = count(row.get(4)?);
            }
            Ok(counts)
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::inbox::ListCursor;

    /// What SQLite plans for `sql` on the schema, one step a line.
    fn plan(sql: &str) -> String {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection.execute_batch(super::super::SCHEMA).unwrap();
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let nulls = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
        let steps = statement
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        steps.join("\n")
    }

    /// A file of a version before reruns: a tool reads it read-only as it is (no reruns), and
    /// opening it for writing adds the column.
    #[tokio::test]
    async fn a_file_without_the_reruns_column_is_read_and_then_brought_up_to_date() {
        let dir = std::env::temp_dir().join(format!("nextgen-reruns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inbox.sqlite3");
        let entry = InboxEntry {
            event_id: "evt_old".to_owned(),
            event_type: "charge.succeeded".to_owned(),
            body: b"{}".to_vec(),
            signed_at: 1,
            received_at_ms: 1000,
            signature: None,
        };
        {
            let inbox = SqliteInbox::open(&path).unwrap();
            inbox.append(entry).await.unwrap();
        }
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch("ALTER TABLE nextgen_inbox DROP COLUMN reruns")
            .unwrap();
        drop(connection);

        let looking = SqliteInbox::open_read_only(&path).unwrap();
        let record = looking.show("evt_old", true).await.unwrap().unwrap();
        assert_eq!(
            (record.reruns, record.body.as_deref()),
            (Vec::new(), Some("{}"))
        );
        let listed = looking.list(ListFilter::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        drop(looking);

        let operating = SqliteInbox::open(&path).unwrap();
        assert!(operating.database.has_reruns());
        assert_eq!(
            operating.rerun("evt_old", "h").await.unwrap(),
            Rerun::NotDone { done: Vec::new() }
        );
        drop(operating);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_page_after_a_cursor_starts_there_in_an_index_in_the_list_order() {
        let cursor = ListCursor {
            received_at_ms: 1,
            event_id: "evt_1".to_owned(),
        };
        for state in [None].into_iter().chain(InboxState::ALL.map(Some)) {
            let index = match state {
                None | Some(InboxState::Handled) => "nextgen_inbox_listed (",
                Some(_) => "nextgen_inbox_unhandled (state=? AND ",
            };
            for handler in [None, Some("(payload)".to_owned())] {
                let filter = ListFilter {
                    state,
                    handler,
                    after: Some(cursor.clone()),
                    ..ListFilter::default()
                };
                let plan = plan(&list_sql(&filter, true));
                assert!(
                    plan.starts_with(&format!(
                        "SEARCH nextgen_inbox USING INDEX {index}(received_at_ms,event_id)<(?,?))"
                    )),
                    "{filter:?}: {plan}"
                );
                // The index gives the list's order: nothing is sorted.
                assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
            }
        }
    }

    #[test]
    fn stats_and_the_history_read_indexes_only() {
        let stats = plan(STATS);
        for index in ["nextgen_inbox_unhandled", "nextgen_inbox_handled"] {
            let scan = format!("SCAN nextgen_inbox USING COVERING INDEX {index}");
            assert!(stats.lines().any(|step| step == scan), "{stats}");
        }
        let hourly = plan(HOURLY);
        for index in [
            "COVERING INDEX nextgen_inbox_listed (received_at_ms>? AND received_at_ms<?)",
            "COVERING INDEX nextgen_inbox_handled (finished_at_ms>? AND finished_at_ms<?)",
            "COVERING INDEX nextgen_inbox_failed (first_failed_at_ms>? AND first_failed_at_ms<?)",
            "INDEX nextgen_inbox_unhandled (state=?)",
        ] {
            assert!(
                hourly.contains(&format!("SEARCH nextgen_inbox USING {index}")),
                "{hourly}"
            );
        }
        for plan in [stats, hourly] {
            assert!(
                !plan.lines().any(|step| step == "SCAN nextgen_inbox"),
                "{plan}"
            );
        }
    }
}
