//! The inbox's gauges: one refresher per endpoint in inbox mode, a thread of its own that reads
//! the inbox's counts every cadence into the [`metrics`](crate::metrics) gauges, and keeps the
//! last reading for the endpoint's [health](crate::Endpoint::health), which so does no I/O.
//!
//! It runs beside the workers, not in one of them: an endpoint with no workers (intake only)
//! still reports the inbox, which its replicas share, and a worker stuck in a handler does not
//! stop the gauges that would show it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{Either, select};
use tokio::sync::Notify;

use ::metrics::{Key, Label, Level, Metadata};

use super::{Inbox, InboxOperator, InboxState, InboxStats};
use crate::handler::panic_message;
use crate::metrics::{INBOX_ENTRIES, INBOX_OLDEST_PENDING, INBOX_WORKERS_ALIVE};

/// The least time one read of the counts may take before it counts as failed. A store that has
/// not answered by then is as good as unreachable; a longer cadence is the limit instead, so
/// that a slow count on a large inbox is not cut short.
const MIN_READ_LIMIT: Duration = Duration::from_secs(5);

/// How many cadences without a reading make the store count as unreachable: one late reading
/// is a slow store, three are a store that does not answer (or a refresher that stopped).
pub(crate) const STALE_AFTER: u32 = 3;

/// What the inbox's gauge refresher is told by the configuration.
#[derive(Debug, Clone)]
pub(crate) struct GaugeSettings {
    /// The `inbox` label.
    pub(crate) inbox: Arc<str>,
    /// The cadence.
    pub(crate) every: Duration,
}

/// The refresher's last reading of the store.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// When it ended.
    pub(crate) at: Instant,
    /// The age of the oldest entry waiting for its first attempt (`None`: none waits), or why
    /// the store did not answer.
    pub(crate) outcome: Result<Option<Duration>, String>,
}

/// What the refresher knows of the store, for the endpoint's health.
#[derive(Debug, Clone)]
pub(crate) struct GaugesHealth {
    /// Whether it reads the store at all: not for an inbox without an operator view.
    pub(crate) reads_store: bool,
    /// When it started.
    pub(crate) started: Instant,
    /// Its cadence.
    pub(crate) every: Duration,
    /// Its last reading, if it has made one.
    pub(crate) last: Option<Reading>,
}

impl GaugesHealth {
    /// Whether no reading has ended for [`STALE_AFTER`] cadences (counted from the start before
    /// the first one): the store does not answer, or the refresher stopped.
    pub(crate) fn is_stale(&self) -> bool {
        let since = self.last.as_ref().map_or(self.started, |last| last.at);
        since.elapsed() > self.every.saturating_mul(STALE_AFTER)
    }
}

/// What the refresher and whoever stops it share.
struct Shared {
    stop: AtomicBool,
    /// Told when the stop is signalled.
    wake: Notify,
    ended: AtomicBool,
    /// Told when the refresher's thread ends.
    ended_notify: Notify,
    last: Mutex<Option<Reading>>,
}

impl Shared {
    fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

/// Marks the refresher ended however its thread ends.
struct Ended(Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::SeqCst);
        self.0.ended_notify.notify_waiters();
    }
}

/// An endpoint's gauge refresher; stopping it (or dropping it) ends its thread at once, a read
/// in progress abandoned.
pub(crate) struct Refresher {
    shared: Arc<Shared>,
    reads_store: bool,
    started: Instant,
    every: Duration,
}

impl Refresher {
    /// Starts refreshing the gauges of `inbox`, the first time now, then every
    /// `settings.every`; `alive` counts the workers running.
    pub(crate) fn start(
        inbox: Arc<dyn Inbox>,
        alive: Box<dyn Fn() -> usize + Send>,
        settings: GaugeSettings,
    ) -> Refresher {
        let operator = inbox.operator();
        let reads_store = operator.is_some();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            ended: AtomicBool::new(false),
            ended_notify: Notify::new(),
            last: Mutex::new(None),
        });
        let task = Task {
            gauges: InboxGauges::new(&settings.inbox),
            name: settings.inbox,
            every: settings.every,
            inbox,
            operator,
            alive,
            shared: Arc::clone(&shared),
        };
        let ended = Ended(Arc::clone(&shared));
        let spawned = std::thread::Builder::new()
            .name("nextgen-inbox-gauges".to_owned())
            .spawn(move || {
                let _ended = ended;
                task.run();
            });
        if let Err(error) = spawned {
            tracing::error!(
                %error,
                "could not start the inbox's gauge refresher thread: no inbox gauges, and the endpoint's health counts the store unreachable"
            );
        }
        Refresher {
            shared,
            reads_store,
            started: Instant::now(),
            every: settings.every,
        }
    }

    /// Stops the refresher and waits, at most `timeout`, for its thread to end (at once: it
    /// abandons a read in progress). Its last act is to set the workers gauge, so call it after
    /// the workers stopped.
    pub(crate) async fn stop(&self, timeout: Duration) {
        self.shared.signal_stop();
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        loop {
            let mut ended = std::pin::pin!(self.shared.ended_notify.notified());
            ended.as_mut().enable();
            if self.shared.ended.load(Ordering::SeqCst) {
                return;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, ended).await.is_err() {
                        return;
                    }
                }
                None => ended.await,
            }
        }
    }

    /// What the refresher last read: a copy, no I/O.
    pub(crate) fn health(&self) -> GaugesHealth {
        GaugesHealth {
            reads_store: self.reads_store,
            started: self.started,
            every: self.every,
            last: self
                .shared
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

impl Drop for Refresher {
    /// The thread ends on its own, at once; nothing here waits for it.
    fn drop(&mut self) {
        self.shared.signal_stop();
    }
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("every", &self.every)
            .field("reads_store", &self.reads_store)
            .finish_non_exhaustive()
    }
}

/// The refresher's thread's work.
struct Task {
    gauges: InboxGauges,
    /// The `inbox` label, for the logs.
    name: Arc<str>,
    every: Duration,
    inbox: Arc<dyn Inbox>,
    operator: Option<Arc<dyn InboxOperator>>,
    alive: Box<dyn Fn() -> usize + Send>,
    shared: Arc<Shared>,
}

impl Task {
    fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, inbox = %self.name, "the inbox's gauge refresher could not build its runtime: no inbox gauges, and the endpoint's health counts the store unreachable");
                return;
            }
        };
        runtime.block_on(self.refresh_until_stopped());
        // A read abandoned by the stop may still run on the blocking pool (a SQLite count):
        // it finishes on its own, and no stop waits for it.
        runtime.shutdown_background();
    }

    async fn refresh_until_stopped(&self) {
        // Whether the store answered the last read: only a change is logged, not every
        // cadence of an outage.
        let mut answered: Option<bool> = None;
        loop {
            let started = tokio::time::Instant::now();
            self.gauges.workers_alive((self.alive)());
            if let Some(operator) = &self.operator {
                let Some(outcome) = self.until_stopped(self.read(operator.as_ref())).await else {
                    break;
                };
                self.log_change(&outcome, &mut answered);
                *self
                    .shared
                    .last
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Reading {
                    at: Instant::now(),
                    outcome,
                });
            }
            // A read that took longer than the cadence is followed by the next one at once.
            let rest = self.every.saturating_sub(started.elapsed());
            if self.until_stopped(tokio::time::sleep(rest)).await.is_none() {
                break;
            }
        }
        // The workers stop before the refresher: this says how many are left (none, after a
        // clean stop), rather than the last cadence's count.
        self.gauges.workers_alive((self.alive)());
    }

    /// `work`, unless the stop comes first (`None`): a stop never waits for a cadence or a read.
    async fn until_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut stopped = std::pin::pin!(self.shared.wake.notified());
        // Registered before the flag is read: a stop signalled after this reaches it, and one
        // signalled before is seen here.
        stopped.as_mut().enable();
        if self.shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        match select(stopped, std::pin::pin!(work)).await {
            Either::Left(_) => None,
            Either::Right((value, _)) => Some(value),
        }
    }

    /// Reads the counts into the gauges; the oldest pending entry's age on the inbox's clock,
    /// or why the store did not answer.
    async fn read(&self, operator: &dyn InboxOperator) -> Result<Option<Duration>, String> {
        let limit = self.every.max(MIN_READ_LIMIT);
        let read = AssertUnwindSafe(tokio::time::timeout(limit, operator.stats())).catch_unwind();
        let stats = match read.await {
            Ok(Ok(Ok(stats))) => stats,
            Ok(Ok(Err(error))) => return Err(error.to_string()),
            Ok(Err(_)) => {
                return Err(format!(
                    "the store did not answer within {} s",
                    limit.as_secs_f64()
                ));
            }
            Err(panic) => {
                return Err(format!(
                    "the inbox's stats panicked: {}",
                    panic_message(&*panic)
                ));
            }
        };
        let age = stats
            .oldest_pending_at_ms
            .map(|at| Duration::from_millis(self.inbox.now_ms().saturating_sub(at)));
        self.gauges.entries(&stats, age);
        Ok(age)
    }

    fn log_change(&self, outcome: &Result<Option<Duration>, String>, answered: &mut Option<bool>) {
        let now = outcome.is_ok();
        if *answered == Some(now) {
            return;
        }
        match outcome {
            Err(error) => tracing::warn!(
                inbox = %self.name,
                %error,
                "the inbox's store did not answer the gauges' read: the endpoint is not ready until it does, and the gauges keep their last values"
            ),
            // The first answer is the normal case, not news.
            Ok(_) if answered.is_some() => {
                tracing::info!(inbox = %self.name, "the inbox's store answers again")
            }
            Ok(_) => {}
        }
        *answered = Some(now);
    }
}

static GAUGE_METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one inbox's gauges, built once by its refresher: a refresh then builds no key.
/// Only the keys are kept, not a recorder's handles, so a recorder installed after the
/// endpoint started still sees every refresh.
pub(crate) struct InboxGauges {
    /// One per state, in the order of [`InboxState::ALL`].
    entries: [Key; 5],
    oldest_pending: Key,
    workers_alive: Key,
}

impl InboxGauges {
    /// The gauges of the inbox named `inbox` (the `inbox` label).
    pub(crate) fn new(inbox: &str) -> Self {
        let inbox_label = || Label::new("inbox", inbox.to_owned());
        let entries = InboxState::ALL.map(|state| {
            Key::from_parts(
                INBOX_ENTRIES,
                vec![
                    inbox_label(),
                    Label::from_static_parts("state", state.as_str()),
                ],
            )
        });
        InboxGauges {
            entries,
            oldest_pending: Key::from_parts(INBOX_OLDEST_PENDING, vec![inbox_label()]),
            workers_alive: Key::from_parts(INBOX_WORKERS_ALIVE, vec![inbox_label()]),
        }
    }

    /// Sets the entry gauges from `stats`, and the oldest pending entry's age (`None`: none
    /// waits, recorded as 0).
    pub(crate) fn entries(&self, stats: &InboxStats, oldest_pending: Option<Duration>) {
        let counts = InboxState::ALL.map(|state| match state {
            InboxState::Pending => stats.pending,
            InboxState::Retrying => stats.retrying,
            InboxState::Running => stats.running,
            InboxState::Handled => stats.handled,
            InboxState::Dead => stats.dead,
        });
        ::metrics::with_recorder(|recorder| {
            for (key, count) in self.entries.iter().zip(counts) {
                // Exact up to 2^53 entries, far beyond any inbox.
                recorder
                    .register_gauge(key, &GAUGE_METADATA)
                    .set(count as f64);
            }
            recorder
                .register_gauge(&self.oldest_pending, &GAUGE_METADATA)
                .set(oldest_pending.map_or(0.0, |age| age.as_secs_f64()));
        });
    }

    /// Sets the workers gauge.
    pub(crate) fn workers_alive(&self, alive: usize) {
        ::metrics::with_recorder(|recorder| {
            recorder
                .register_gauge(&self.workers_alive, &GAUGE_METADATA)
                .set(alive as f64);
        });
    }
}
