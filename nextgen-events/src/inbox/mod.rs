//! The inbox: acknowledge a delivery once it is durably written, handle it in the background.
//!
//! In inbox mode ([`WebhookConfig::with_inbox`](crate::WebhookConfig::with_inbox)) the route verifies a
//! delivery, checks its envelope, appends it to the inbox and answers 200; a redelivery of an
//! id already there is answered 200 without a second entry. Workers started with the app take
//! due deliveries one at a time and dispatch them with the per-handler semantics of
//! [`idempotency`](crate::idempotency): a retry never runs a handler that already succeeded.
//! A delivery that fails is retried with exponential backoff and jitter ([`RetryPolicy`]),
//! then kept as a dead letter with each failing handler's last error, for a
//! [replay](InboxOperator::replay) once the cause is fixed. A payload that does not fit its type (API
//! drift) goes the same way: kept, not lost.

pub(crate) mod gauges;
mod retry;
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
mod stored;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use retry::{RetryPolicy, RetryPolicyError};
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) use stored::{
    UNREADABLE_PER_TAKE, errors_from_json, errors_to_json, listed_state, reruns_from_json,
    unreadable,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use stored::{empty_hours, hour_slot, hours_span, reruns_to_json};
pub(crate) use workers::{InboxRuntime, WorkerSettings};

use crate::idempotency::{IdempotencyStore, OwnerToken, StoreError, StoreFuture};

/// How long an inbox keeps handled entries and the handlers' done markers by default: the 3
/// days of retries, and time to fix and replay a dead letter.
pub const DEFAULT_INBOX_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A verified delivery as the inbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The event's id: one entry per id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The raw body, byte for byte as signed.
    pub body: Vec<u8>,
    /// The signature's verified timestamp (Unix seconds).
    pub signed_at: u64,
    /// When it was received (Unix milliseconds).
    pub received_at_ms: u64,
    /// The `NextGen-Signature` header it was verified with. A worker verifies the entry with
    /// it again, at `signed_at`, against the configured secrets before it dispatches it, so
    /// that nothing written into the inbox by other means runs; an entry without one (kept by
    /// a version before it) is never dispatched: it becomes a dead letter.
    pub signature: Option<String>,
}

/// What appending did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The delivery is a new entry.
    New,
    /// An entry with this event id was there already; nothing was written.
    Duplicate,
}

/// A delivery a worker took from the inbox, under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The delivery.
    pub entry: InboxEntry,
    /// The lease's owner token: renew and finish with it.
    pub token: OwnerToken,
    /// How many times it has been taken, this time included.
    pub attempts: u32,
    /// When it first failed (Unix milliseconds), if it has.
    pub first_failed_at_ms: Option<u64>,
}

/// One handler's failure, as a dead letter keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerFailure {
    /// The handler's name, or `(payload)` when the payload did not fit its type, or
    /// `(idempotency store)` when the store failed.
    pub handler: String,
    /// What went wrong.
    pub error: String,
}

/// How a taken delivery ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every handler succeeded.
    Handled,
    /// Some failed: take it again at `at_ms`.
    Retry {
        /// When it is due again (Unix milliseconds).
        at_ms: u64,
        /// The failures of this attempt.
        errors: Vec<HandlerFailure>,
    },
    /// Some failed and the retry policy gave up: a dead letter.
    Dead {
        /// The failures of the last attempt.
        errors: Vec<HandlerFailure>,
    },
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Waiting for its first attempt.
    Pending,
    /// Failed before; waiting for its next attempt.
    Retrying,
    /// A worker holds it now.
    Running,
    /// Every handler succeeded.
    Handled,
    /// The retry policy gave up: waiting for a replay.
    Dead,
}

impl InboxState {
    /// Every state, in the order a delivery goes through them.
    pub const ALL: [InboxState; 5] = [
        InboxState::Pending,
        InboxState::Retrying,
        InboxState::Running,
        InboxState::Handled,
        InboxState::Dead,
    ];

    /// The state's name, as `--state` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Pending => "pending",
            InboxState::Retrying => "retrying",
            InboxState::Running => "running",
            InboxState::Handled => "handled",
            InboxState::Dead => "dead",
        }
    }
}

impl std::str::FromStr for InboxState {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        InboxState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown state `{name}`: use one of pending, retrying, running, handled, dead"
                )
            })
    }
}

/// How many entries are in each state, and how long the oldest one waiting for its first
/// attempt has waited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxStats {
    /// Waiting for a first attempt.
    pub pending: u64,
    /// Failed, waiting for another attempt.
    pub retrying: u64,
    /// Held by a worker.
    pub running: u64,
    /// Handled.
    pub handled: u64,
    /// Dead letters.
    pub dead: u64,
    /// When the oldest entry still waiting for its first attempt was received (Unix
    /// milliseconds); `None` when none waits. Its age is what a stalled worker shows as first.
    #[serde(default)]
    pub oldest_pending_at_ms: Option<u64>,
}

/// One entry as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRecord {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where it stands.
    pub state: InboxState,
    /// When it was received (Unix milliseconds).
    pub received_at_ms: u64,
    /// The signature's timestamp (Unix seconds).
    pub signed_at: u64,
    /// How many attempts were made.
    pub attempts: u32,
    /// When it is due next, while pending or retrying (Unix milliseconds).
    pub due_at_ms: Option<u64>,
    /// When it first failed (Unix milliseconds).
    pub first_failed_at_ms: Option<u64>,
    /// When it was handled or given up (Unix milliseconds).
    pub finished_at_ms: Option<u64>,
    /// Each failing handler's last error.
    pub last_errors: Vec<HandlerFailure>,
    /// The handlers run again on purpose ([`InboxOperator::rerun`]), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<RecordedRerun>,
    /// The body, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A handler that had succeeded for an entry and was run again on purpose
/// ([`InboxOperator::rerun`]), as the entry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRerun {
    /// The handler's name, as the done markers and the last errors name it.
    pub handler: String,
    /// When the rerun was asked for (Unix milliseconds, on the inbox's clock).
    pub at_ms: u64,
}

/// What [`InboxOperator::rerun`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rerun {
    /// Put back: the handler's done marker was removed and the entry put back to pending, due
    /// now, attempts reset, exactly as a [replay](InboxOperator::replay) does, in one atomic
    /// step; the entry records the rerun ([`InboxRecord::reruns`]). The workers run that
    /// handler once more; the other handlers that had succeeded stay skipped, and those that
    /// had not succeeded run, as in any replay.
    PutBack,
    /// No entry has this event id: nothing changed.
    NoEntry,
    /// The handler has no done marker for this event: it did not succeed for it (or its
    /// marker outlived the inbox's retention), so there is nothing to run again; nothing
    /// changed. A plain replay runs a handler that did not succeed anyway.
    NotDone {
        /// The handlers that do have a done marker for this event, sorted: the names a rerun
        /// of this event takes (a mistyped name is answered with the right ones).
        done: Vec<String>,
    },
    /// A worker holds the entry right now: refused, nothing changed. Ask again once it is not
    /// running (its attempt ends, or its lease lapses after a crash).
    Running,
}

/// Logs a rerun that was put back: the library's record of the deliberate act, beside the one
/// the entry keeps.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) fn log_rerun(event_id: &str, handler: &str, rerun: &Rerun) {
    if *rerun == Rerun::PutBack {
        tracing::info!(
            event_id = %crate::text::Escaped(event_id),
            handler = %crate::text::Escaped(handler),
            "inbox entry put back to run a handler that had succeeded once more (a deliberate rerun)"
        );
    }
}

/// Which entries [`InboxOperator::list`] returns, newest first (by receipt time, then by
/// event id, both descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only entries in this state.
    pub state: Option<InboxState>,
    /// Only entries of this event type.
    pub event_type: Option<String>,
    /// Only entries whose last errors include one of this handler's.
    pub handler: Option<String>,
    /// Only entries after this one in the order of the list: the next page, from the
    /// [`ListCursor::after`] of the last record of the one before.
    pub after: Option<ListCursor>,
    /// At most this many (0: a default of 50).
    pub limit: usize,
}

/// Where a page of [`InboxOperator::list`] ended: the next page starts after it (keyset
/// pagination, so a page deep in a large inbox costs what the first one does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    /// The receipt time of the last record listed (Unix milliseconds).
    pub received_at_ms: u64,
    /// Its event id.
    pub event_id: String,
}

impl ListCursor {
    /// The cursor after `record`.
    pub fn after(record: &InboxRecord) -> Self {
        ListCursor {
            received_at_ms: record.received_at_ms,
            event_id: record.event_id.clone(),
        }
    }

    /// Whether an entry received at `received_at_ms` with `event_id` comes after the cursor
    /// in the list's order (older, or as old with a smaller id).
    pub fn precedes(&self, received_at_ms: u64, event_id: &str) -> bool {
        (received_at_ms, event_id) < (self.received_at_ms, self.event_id.as_str())
    }
}

/// One hour of an inbox's history ([`InboxHistory::hourly`]), counted from the entries it
/// keeps: an entry pruned after its retention is no longer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounts {
    /// The hour's start (Unix milliseconds, a multiple of an hour).
    pub hour_start_ms: u64,
    /// Entries received in the hour.
    pub received: u64,
    /// Entries handled in the hour (their last attempt succeeded then).
    pub handled: u64,
    /// Entries that failed for the first time in the hour, to be retried.
    pub retried: u64,
    /// Entries that became dead letters in the hour and still are.
    pub dead: u64,
}

/// What [`Inbox::recover`] reset of what an earlier run left running when it died.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The deliveries put back in their place in the queue, by event id.
    pub deliveries: Vec<String>,
    /// The handlers' claims released (their handlers run again; those that succeeded stay
    /// skipped).
    pub claims: u64,
    /// The object claims of `latest_only` handlers released (their watermarks stay).
    pub object_claims: u64,
}

impl Recovered {
    /// Whether it reset nothing.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.claims == 0 && self.object_claims == 0
    }
}

/// What makes a process's workers an inbox's only workers (see
/// [`Inbox::lock_workers`]); dropping it lets another process's workers start.
pub struct WorkersLock {
    _held: Box<dyn Send + Sync>,
}

impl WorkersLock {
    /// A lock held as long as `held` lives (an open lock file, say).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        WorkersLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for WorkersLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkersLock").finish_non_exhaustive()
    }
}

/// Wakes this process's idle inbox workers when a delivery arrives: what an inbox that other
/// processes append to is handed when the workers start ([`Inbox::watch_arrivals`]), so that
/// they need not wait for their next poll. Clones wake the same workers.
#[derive(Clone)]
pub struct Arrivals(Arc<tokio::sync::Notify>);

impl Arrivals {
    pub(crate) fn new(wake: Arc<tokio::sync::Notify>) -> Self {
        Arrivals(wake)
    }

    /// Something arrived (or may have: call it too after a lost notification channel comes
    /// back): every idle worker looks for due deliveries now, and one that is about to go idle
    /// looks once more.
    pub fn arrived(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }
}

impl std::fmt::Debug for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrivals").finish_non_exhaustive()
    }
}

/// What keeps an inbox watching for arrivals on a process's behalf (see
/// [`Inbox::watch_arrivals`]); dropping it stops the watch.
pub struct ArrivalsWatch {
    _held: Box<dyn Send + Sync>,
}

impl ArrivalsWatch {
    /// A watch kept as long as `held` lives (a task's abort-on-drop handle, say).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        ArrivalsWatch {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for ArrivalsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrivalsWatch").finish_non_exhaustive()
    }
}

/// A durable inbox of verified deliveries: the queue the route appends to and the workers take
/// from. `SqliteInbox` (feature `sqlite`) keeps one in a file; `RedisInbox` (feature `redis`)
/// one in Redis and `PgInbox` (feature `postgres`) one in PostgreSQL, each shared by replicas.
/// What an operator reads and replays is the other capability, [`InboxOperator`], which they
/// all implement too.
pub trait Inbox: Send + Sync + 'static {
    /// Appends a delivery, durably, unless an entry with its id is there.
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended>;

    /// Takes the delivery due first, for `lease`; `None` when none is due. A delivery whose
    /// lease lapsed (its worker died) is due again.
    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>>;

    /// Extends the lease `token` holds; `false` when it no longer holds it.
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Ends the attempt `token` holds; `false` (nothing changed) when it no longer holds it.
    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool>;

    /// Called once when this process's workers start, after
    /// [`lock_workers`](Inbox::lock_workers) and before any of them takes a delivery: hands
    /// back what an earlier run left running when it died, where the inbox can tell (a SQLite
    /// file's workers belong to one process), at the place in the queue it had before it was
    /// taken. It touches only leases and claims of earlier runs (their owner tokens'
    /// [`run`](OwnerToken::run) differs from this run's), never live work. Returns what it
    /// reset, which the workers log. Elsewhere lapsed leases do it, after their time.
    fn recover(&self) -> StoreFuture<'_, Recovered>;

    /// Called when this process's workers start, before [`recover`](Inbox::recover): makes
    /// them the inbox's only workers where it needs that (a SQLite file: an exclusive lock
    /// beside it), until the returned lock is dropped, after the workers stopped. Fails with
    /// [`StoreError::Locked`] when another process's workers hold it. Inboxes that replicas
    /// share need no lock: `Ok(None)`, the default.
    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        Ok(None)
    }

    /// Deletes handled entries that finished before `before_ms` (Unix milliseconds); dead
    /// letters stay until replayed. Returns how many went. The workers call it hourly with
    /// [`retention`](Inbox::retention).
    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64>;

    /// How long handled entries and the handlers' done markers are kept.
    fn retention(&self) -> Duration;

    /// The idempotency store the handlers' claims and done markers live in.
    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore>;

    /// The inbox's clock, in Unix milliseconds: retries are scheduled on it.
    fn now_ms(&self) -> u64;

    /// Refuses settings the inbox's backend cannot hold (a retention, an expiry), each error
    /// naming the setter and the fix; [`WebhookConfig::check`](crate::WebhookConfig::check)
    /// calls it, so such an inbox is refused before the first delivery. `Ok(())` (the default)
    /// for an inbox with nothing to check.
    fn check_settings(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Called once when this process's workers start: an inbox that other processes append
    /// to (PostgreSQL's `LISTEN`) calls [`Arrivals::arrived`] when they do, until the returned
    /// watch is dropped, when the workers stop. `None` (the default): the workers find other
    /// processes' deliveries at their next poll; this process's own wake them at once either
    /// way.
    fn watch_arrivals(&self, arrivals: Arrivals) -> Option<ArrivalsWatch> {
        let _ = arrivals;
        None
    }

    /// The same inbox's operator view ([`InboxOperator`]), where it has one: what
    /// [`Endpoint::inbox_operator`](crate::Endpoint::inbox_operator) hands an inbox page or a
    /// tool. `None` (the default) for an inbox without one.
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        None
    }
}

/// A shared inbox is an inbox: an `Arc<dyn Inbox>` (from
/// [`backend::open_inbox`](crate::backend::open_inbox), say) goes to
/// [`WebhookConfig::with_inbox`](crate::WebhookConfig::with_inbox) as it is.
impl<T: Inbox + ?Sized> Inbox for Arc<T> {
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        (**self).append(entry)
    }
    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        (**self).take(lease)
    }
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).renew(event_id, token, lease)
    }
    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        (**self).finish(event_id, token, finish)
    }
    fn recover(&self) -> StoreFuture<'_, Recovered> {
        (**self).recover()
    }
    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        (**self).lock_workers()
    }
    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        (**self).prune(before_ms)
    }
    fn retention(&self) -> Duration {
        (**self).retention()
    }
    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        (**self).idempotency_store()
    }
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn check_settings(&self) -> Result<(), StoreError> {
        (**self).check_settings()
    }
    fn watch_arrivals(&self, arrivals: Arrivals) -> Option<ArrivalsWatch> {
        (**self).watch_arrivals(arrivals)
    }
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        (**self).operator()
    }
}

/// An inbox's operator view: what the `nextgen inbox` tool (and an admin page) reads and
/// replays, apart from the queue the route and the workers use ([`Inbox`]).
pub trait InboxOperator: Send + Sync + 'static {
    /// How many entries are in each state.
    fn stats(&self) -> StoreFuture<'_, InboxStats>;

    /// Entries, newest first.
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<InboxRecord>>;

    /// One entry, its body too when `with_body`.
    fn show<'a>(
        &'a self,
        event_id: &'a str,
        with_body: bool,
    ) -> StoreFuture<'a, Option<InboxRecord>>;

    /// Puts entries back to pending, due now, attempts reset; handlers that succeeded stay
    /// skipped. Returns the ids that were found (handled, dead or retrying ones alike).
    fn replay<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<String>>;

    /// Runs `handler`, which had succeeded for `event_id`, once more: removes its done marker
    /// and puts the entry back to pending as [`replay`](Self::replay) does, in one atomic step
    /// (a crash never leaves the marker gone with the entry not pending, nor the reverse), and
    /// records the rerun in the entry ([`InboxRecord::reruns`]). For a handler that succeeded
    /// with a bug since fixed: its effect must be safe to apply again, or be corrected by the
    /// fixed code. Refused, with nothing changed, for an unknown id, a handler without a done
    /// marker for the event (the answer names those with one), and an entry a worker holds.
    ///
    /// A `latest_only` handler whose watermark is this event (or a newer one of its object)
    /// finds the event stale and does not run: its marker is written again without a run.
    fn rerun<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, Rerun>;

    /// Puts every dead letter (received at or after `since_ms`, when given) back to pending,
    /// and names the ids the dead index listed whose entry was gone (they are removed from the
    /// index).
    fn replay_dead(&self, since_ms: Option<u64>) -> StoreFuture<'_, DeadReplay>;

    /// The inbox's per-hour history, where its store can count it cheaply (SQLite and
    /// PostgreSQL, from the entries' own times); `None` where it cannot (Redis), so that a
    /// page says so rather than drawing a wrong chart.
    fn history(&self) -> Option<&dyn InboxHistory> {
        None
    }
}

/// An inbox's per-hour history, the capability [`InboxOperator::history`] offers.
pub trait InboxHistory: Send + Sync {
    /// The `hours` hours that start at `from_ms` (rounded down to an hour), oldest first, one
    /// [`HourCounts`] each, hours without entries included.
    fn hourly(&self, from_ms: u64, hours: u32) -> StoreFuture<'_, Vec<HourCounts>>;
}

/// What [`InboxOperator::replay_dead`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadReplay {
    /// The dead letters put back to pending.
    pub replayed: Vec<String>,
    /// Ids the dead index listed whose entry was gone: removed from the index, not replayed.
    pub unknown: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::InboxState;

    #[test]
    fn every_state_is_named_as_the_tool_takes_it_and_read_back() {
        let names: Vec<&str> = InboxState::ALL.iter().map(|state| state.as_str()).collect();
        assert_eq!(names, ["pending", "retrying", "running", "handled", "dead"]);
        for state in InboxState::ALL {
            assert_eq!(state.as_str().parse::<InboxState>(), Ok(state));
        }
        let unknown = "done".parse::<InboxState>().unwrap_err();
        assert!(unknown.contains("unknown state `done`"), "{unknown}");
        assert!(
            unknown.contains("pending, retrying, running, handled, dead"),
            "{unknown}"
        );
    }
}
