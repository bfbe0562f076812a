//! The inbox's workers: threads an [`Endpoint`](crate::Endpoint) starts, which take due
//! deliveries and dispatch them, and stop when the endpoint is shut down (or its last handle
//! dropped), finishing what they hold.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::select;
use tokio::sync::Notify;

use super::gauges::{GaugeSettings, GaugesHealth, Refresher};
use super::{
    Arrivals, ArrivalsWatch, Finish, HandlerFailure, Inbox, InboxEntry, RetryPolicy, Taken,
    WorkersLock,
};
use crate::dispatch;
use crate::dispatch::{Claims, Held, NotStarted, hold_while};
use crate::handler::{AppData, Context, panic_message};
use crate::idempotency::{OwnerToken, StoreError};
use crate::registry::Registry;
use crate::signature::Verifier;

/// An endpoint's inbox at work: the inbox the route appends to, the workers that take from
/// it, and the refresher of its gauges. Built once per [`Endpoint`](crate::Endpoint); dropping
/// it stops the workers, then the refresher (fields drop in order).
pub(crate) struct InboxRuntime {
    pub(crate) inbox: Arc<dyn Inbox>,
    wake: Arc<Notify>,
    workers: Workers,
    gauges: Refresher,
    /// Dropped with the runtime: the watch for other processes' deliveries ends.
    _arrivals: Option<ArrivalsWatch>,
}

/// How the workers run.
#[derive(Clone)]
pub(crate) struct WorkerSettings {
    pub(crate) count: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) poll: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) claims: Claims,
    pub(crate) data: AppData,
    /// Verifies each entry again before it is dispatched.
    pub(crate) verifier: Verifier,
    /// The endpoint's own handlers; the global registry when `None`.
    pub(crate) registry: Option<Arc<Registry>>,
}

/// What a stop of the workers left: the deliveries still held when its time ran out.
#[derive(Debug, Default)]
pub(crate) struct WorkersStopped {
    pub(crate) left: Vec<String>,
}

/// The workers' state, for the endpoint's health.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkersHealth {
    pub(crate) configured: usize,
    pub(crate) alive: usize,
    pub(crate) restarts: u64,
    /// Whether the inbox gave the workers a lock to hold ([`Inbox::lock_workers`]).
    pub(crate) lock_needed: bool,
    /// Whether they hold it now: from their start until the last of them stopped.
    pub(crate) lock_held: bool,
}

impl InboxRuntime {
    /// Starts `settings.count` workers on `inbox`, and the refresher of its gauges (one, however
    /// many workers, none included); fails when the inbox cannot be the workers' alone
    /// (another process's workers hold a SQLite inbox).
    pub(crate) fn start(
        inbox: Arc<dyn Inbox>,
        settings: WorkerSettings,
        gauges: GaugeSettings,
    ) -> Result<Self, StoreError> {
        let wake = Arc::new(Notify::new());
        let workers = Workers::start(Arc::clone(&inbox), Arc::clone(&wake), settings)?;
        let shared = Arc::clone(&workers.shared);
        let alive = Box::new(move || shared.alive.load(Ordering::SeqCst));
        let gauges = Refresher::start(Arc::clone(&inbox), alive, gauges);
        // Other processes' deliveries wake the workers too, where the inbox can tell of them.
        let arrivals = inbox.watch_arrivals(Arrivals::new(Arc::clone(&wake)));
        Ok(InboxRuntime {
            inbox,
            wake,
            workers,
            gauges,
            _arrivals: arrivals,
        })
    }

    /// Tells a waiting worker that a delivery arrived.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the workers: each finishes and records the delivery it holds, idle ones at once.
    /// Waits at most `timeout`; what is still held then is named. The gauges' refresher stops
    /// after them, so that its last word on the workers is how many are left.
    pub(crate) async fn stop(&self, timeout: Duration) -> WorkersStopped {
        let stopped = self.workers.stop(timeout).await;
        // The refresher ends at once (a read in progress is abandoned): this waits for a thread
        // to end, not for the store.
        self.gauges.stop(GAUGES_STOP).await;
        stopped
    }

    pub(crate) fn health(&self) -> WorkersHealth {
        self.workers.health()
    }

    /// What the gauges' refresher last read of the store.
    pub(crate) fn gauges_health(&self) -> GaugesHealth {
        self.gauges.health()
    }
}

/// How long a stop waits for the gauges' refresher thread to end, at most; it ends at once
/// when told (a read in progress abandoned), so this bounds only a thread the system does not
/// schedule.
const GAUGES_STOP: Duration = Duration::from_secs(5);

impl std::fmt::Debug for InboxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxRuntime")
            .field("workers", &self.workers.health())
            .field("gauges", &self.gauges)
            .finish_non_exhaustive()
    }
}

/// How often the first worker deletes handled entries past the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Holds every worker back until the first one has recovered what an earlier run left, so
/// recovery never meets this run's own work.
#[derive(Default)]
struct RecoveryGate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl RecoveryGate {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = self
            .opened
            .wait_while(open, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Opens the gate when dropped, so a recovery that panics cannot hold the workers forever.
struct OpenOnDrop(Arc<RecoveryGate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// The delivery each worker holds, if any: what a stop that runs out of time names.
type Holding = Arc<[Mutex<Option<String>>]>;

/// What the workers and whoever stops them share.
struct Shared {
    stop: AtomicBool,
    wake: Arc<Notify>,
    /// Worker threads still running.
    alive: AtomicUsize,
    /// Told each time a worker thread ends.
    exited: Notify,
    /// Workers that ended by a panic and were started again.
    restarts: AtomicU64,
    holding: Holding,
}

impl Shared {
    fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn left(&self) -> Vec<String> {
        self.holding
            .iter()
            .filter_map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }
}

/// Counts a worker thread out however it ends.
struct Alive(Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
        self.0.exited.notify_waiters();
    }
}

/// The worker threads; a stop (or dropping this) ends them, each finishing the delivery it
/// holds.
struct Workers {
    shared: Arc<Shared>,
    configured: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shutdown_timeout: Duration,
    /// Released once every worker has stopped.
    lock: Mutex<Option<WorkersLock>>,
    /// Whether the inbox gave them a lock at all.
    lock_needed: bool,
}

impl Workers {
    fn start(
        inbox: Arc<dyn Inbox>,
        wake: Arc<Notify>,
        settings: WorkerSettings,
    ) -> Result<Workers, StoreError> {
        let lock = if settings.count > 0 {
            inbox.lock_workers()?
        } else {
            None
        };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake,
            alive: AtomicUsize::new(0),
            exited: Notify::new(),
            restarts: AtomicU64::new(0),
            holding: (0..settings.count).map(|_| Mutex::new(None)).collect(),
        });
        let gate = Arc::new(RecoveryGate::default());
        let threads = (0..settings.count)
            .filter_map(|index| {
                let worker = Worker {
                    index,
                    inbox: Arc::clone(&inbox),
                    shared: Arc::clone(&shared),
                    gate: Arc::clone(&gate),
                    settings: settings.clone(),
                };
                shared.alive.fetch_add(1, Ordering::SeqCst);
                let alive = Alive(Arc::clone(&shared));
                std::thread::Builder::new()
                    .name(format!("nextgen-inbox-worker-{index}"))
                    .spawn(move || {
                        let _alive = alive;
                        worker.run();
                    })
                    .inspect_err(|error| {
                        tracing::error!(%error, "could not start an inbox worker thread");
                    })
                    .ok()
            })
            .collect::<Vec<_>>();
        if threads.len() < settings.count {
            // The recovering worker may be the one missing: never leave the others waiting.
            gate.open();
        }
        tracing::info!(workers = threads.len(), "inbox workers started");
        Ok(Workers {
            shared,
            configured: settings.count,
            threads: Mutex::new(threads),
            shutdown_timeout: settings.shutdown_timeout,
            lock_needed: lock.is_some(),
            lock: Mutex::new(lock),
        })
    }

    fn health(&self) -> WorkersHealth {
        WorkersHealth {
            configured: self.configured,
            alive: self.shared.alive.load(Ordering::SeqCst),
            restarts: self.shared.restarts.load(Ordering::SeqCst),
            lock_needed: self.lock_needed,
            lock_held: self
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some(),
        }
    }

    /// Signals the stop and waits, without blocking the caller's runtime, until every worker
    /// ended or `timeout` ran out.
    async fn stop(&self, timeout: Duration) -> WorkersStopped {
        let finishing = self.shared.left();
        self.shared.signal_stop();
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        loop {
            let exited = std::pin::pin!(self.shared.exited.notified());
            let mut exited = exited;
            exited.as_mut().enable();
            if self.shared.alive.load(Ordering::SeqCst) == 0 {
                break;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, exited).await.is_err() {
                        break;
                    }
                }
                None => exited.await,
            }
        }
        self.finish_stop(&finishing)
    }

    /// Joins the workers that ended, and names what the others hold; the workers' lock is let
    /// go once the last of them ends, not before.
    /// `finishing`: what the workers held when the stop began, for its log line.
    fn finish_stop(&self, finishing: &[String]) -> WorkersStopped {
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let lock = self
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Counted, not judged by the threads: a worker counts itself out as its work ends, a
        // moment before its thread does, and after a stop that ran out of time a second stop
        // finds no thread left to join while a worker may still run.
        let done = self.shared.alive.load(Ordering::SeqCst) == 0;
        let (finished, unfinished): (Vec<_>, Vec<_>) = threads
            .into_iter()
            .partition(|thread| done || thread.is_finished());
        // Every worker's work has ended: these joins only wait for threads to exit.
        for thread in finished {
            let _ = thread.join();
        }
        let left = self.shared.left();
        let finished: Vec<&String> = finishing.iter().filter(|id| !left.contains(id)).collect();
        tracing::info!(
            finished = ?finished,
            left = ?left,
            "inbox workers stopped: they finished and recorded the deliveries they held, but those left"
        );
        if done {
            // The lock goes only now, so the next endpoint on the file finds it free.
            drop(lock);
            return WorkersStopped::default();
        }
        // Another process's workers must not start on the inbox while these still run.
        if let Some(lock) = lock {
            let _ = std::thread::Builder::new()
                .name("nextgen-inbox-stop".to_owned())
                .spawn(move || {
                    for thread in unfinished {
                        let _ = thread.join();
                    }
                    drop(lock);
                });
        }
        WorkersStopped { left }
    }
}

impl Drop for Workers {
    /// The stop of an endpoint dropped without `shutdown`: on the dropping thread, blocking.
    fn drop(&mut self) {
        let running = !self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if !running {
            return;
        }
        let finishing = self.shared.left();
        self.shared.signal_stop();
        let deadline = Instant::now().checked_add(self.shutdown_timeout);
        while self.shared.alive.load(Ordering::SeqCst) > 0
            && deadline.is_none_or(|deadline| Instant::now() < deadline)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stopped = self.finish_stop(&finishing);
        if !stopped.left.is_empty() {
            tracing::warn!(
                deliveries = ?stopped.left,
                timeout_ms = u64::try_from(self.shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
                "the stop's timeout ran out while inbox workers were still dispatching these deliveries: they are left to the next start, which takes them again once their leases lapse (handlers that had succeeded stay skipped)"
            );
        }
    }
}

struct Worker {
    /// The first worker (0) recovers what an earlier run left and prunes.
    index: usize,
    inbox: Arc<dyn Inbox>,
    shared: Arc<Shared>,
    gate: Arc<RecoveryGate>,
    settings: WorkerSettings,
}

impl Worker {
    fn run(self) {
        let recovers = self.index == 0;
        let mut opens = recovers.then(|| OpenOnDrop(Arc::clone(&self.gate)));
        if !recovers {
            self.gate.wait();
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "an inbox worker could not build its runtime");
                return;
            }
        };
        loop {
            // A local set, as actix's workers have: handlers may spawn `!Send` tasks.
            let work = AssertUnwindSafe(self.work(opens.take())).catch_unwind();
            match tokio::task::LocalSet::new().block_on(&runtime, work) {
                Ok(()) => return,
                // A panic outside any one delivery (each delivery's own are caught in
                // `handle`): the worker starts again rather than leaving the inbox unserved.
                Err(panic) => {
                    self.shared.restarts.fetch_add(1, Ordering::SeqCst);
                    self.hold(None);
                    tracing::error!(
                        worker = self.index,
                        panic = %panic_message(&*panic),
                        "an inbox worker panicked; it was started again"
                    );
                    if self.shared.stopping() {
                        return;
                    }
                }
            }
        }
    }

    async fn work(&self, opens: Option<OpenOnDrop>) {
        if let Some(opens) = opens {
            self.recover().await;
            drop(opens);
        }
        let mut pruned_at: Option<Instant> = None;
        while !self.shared.stopping() {
            if self.index == 0 && pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                self.prune().await;
            }
            match self.inbox.take(self.settings.claims.lease).await {
                Ok(Some(taken)) => self.handle(taken).await,
                Ok(None) => self.idle().await,
                Err(error) => {
                    tracing::error!(%error, "the inbox could not be read; trying again");
                    self.idle().await;
                }
            }
        }
    }

    /// Hands back what an earlier run left running; no worker of this run has taken anything.
    async fn recover(&self) {
        match self.inbox.recover().await {
            Ok(recovered) if recovered.is_empty() => {}
            Ok(recovered) => {
                // The first ids name what to look at; the count says how many there were.
                let shown: Vec<_> = recovered
                    .deliveries
                    .iter()
                    .take(10)
                    .map(|id| crate::text::escaped(id))
                    .collect();
                tracing::warn!(
                    deliveries = recovered.deliveries.len(),
                    event_ids = ?shown,
                    claims = recovered.claims,
                    object_claims = recovered.object_claims,
                    "an earlier run of this inbox's workers was killed while handling deliveries: they are taken again in their place in the queue, and the handler claims it held are released (handlers that had succeeded stay skipped)"
                );
            }
            Err(error) => tracing::error!(
                %error,
                "could not recover what an earlier run left running: those deliveries are taken again once their leases lapse"
            ),
        }
    }

    /// Deletes handled entries older than the inbox's retention.
    async fn prune(&self) {
        let retention = u64::try_from(self.inbox.retention().as_millis()).unwrap_or(u64::MAX);
        let before = self.inbox.now_ms().saturating_sub(retention);
        match self.inbox.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, "pruned handled inbox entries past their retention")
            }
            Err(error) => tracing::warn!(%error, "could not prune the inbox"),
        }
    }

    /// Waits for a delivery to arrive, a stop, or the poll interval.
    async fn idle(&self) {
        let mut woken = std::pin::pin!(self.shared.wake.notified());
        // Registered before the stop flag is read: a stop signalled after this reaches it,
        // and one signalled before is seen here, so no stop waits for a whole poll.
        woken.as_mut().enable();
        if self.shared.stopping() {
            return;
        }
        let timer = std::pin::pin!(tokio::time::sleep(self.settings.poll));
        select(woken, timer).await;
    }

    /// Handles one delivery; a panic anywhere in it (a store's, the retry policy's) is
    /// recorded on the entry as a failed attempt, never the end of the worker.
    async fn handle(&self, taken: Taken) {
        let (event_id, event_type) = (taken.entry.event_id.clone(), taken.entry.event_type.clone());
        let (token, attempts, first_failed_at_ms) =
            (taken.token, taken.attempts, taken.first_failed_at_ms);
        self.hold(Some(&event_id));
        if let Err(panic) = AssertUnwindSafe(self.handle_entry(taken))
            .catch_unwind()
            .await
        {
            let message = panic_message(&*panic);
            tracing::error!(
                event_id = %crate::text::Escaped(&event_id),
                panic = %message,
                "the inbox worker panicked while handling a delivery: recorded as a failed attempt"
            );
            let errors = vec![HandlerFailure {
                handler: "(worker)".to_owned(),
                error: format!("the inbox worker panicked while handling it: {message}"),
            }];
            let now = self.inbox.now_ms();
            let policy = self.settings.retry;
            let first_failed = first_failed_at_ms.unwrap_or(now);
            let finish = std::panic::catch_unwind(AssertUnwindSafe(|| {
                policy.after_failure(attempts, first_failed, now, errors.clone())
            }))
            .unwrap_or(Finish::Dead { errors });
            self.record(&event_id, &event_type, token, finish).await;
        }
        self.hold(None);
    }

    /// Ends the attempt `token` holds, as `finish` says: counted, and written to the inbox (a
    /// lapsed lease or a failed write logged: the delivery is then taken again). Every attempt
    /// ends here, whatever ended it.
    async fn record(&self, event_id: &str, event_type: &str, token: OwnerToken, finish: Finish) {
        crate::metrics::inbox_attempt(event_type, outcome(&finish));
        let mut finished = self.inbox.finish(event_id, token, finish.clone()).await;
        // A backend that is down for a moment (a database restarting) is asked again while the
        // lease holds, so that the outcome is not lost to one failed write and the delivery
        // not left for its lease to lapse.
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        while finished.is_err()
            && !self.shared.stopping()
            && started.elapsed() + pause < self.settings.claims.lease / 2
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            finished = self.inbox.finish(event_id, token, finish.clone()).await;
        }
        crate::metrics::lease_kept("inbox entry", "finish", &finished);
        match finished {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(event_id = %crate::text::Escaped(event_id), "the inbox lease had lapsed when the delivery finished: it will be taken again (handlers that succeeded stay skipped)")
            }
            Err(error) => {
                tracing::error!(event_id = %crate::text::Escaped(event_id), %error, "could not record the delivery's outcome in the inbox: it will be taken again")
            }
        }
    }

    async fn handle_entry(&self, taken: Taken) {
        let Taken {
            entry,
            token,
            attempts,
            first_failed_at_ms,
        } = taken;
        if let Err(why) = self.verify(&entry) {
            tracing::error!(
                event_id = %crate::text::Escaped(&entry.event_id),
                "an inbox entry does not verify: kept as a dead letter, not dispatched; {why}"
            );
            let errors = vec![HandlerFailure {
                handler: "(signature)".to_owned(),
                error: why,
            }];
            let finish = Finish::Dead { errors };
            self.record(&entry.event_id, &entry.event_type, token, finish)
                .await;
            return;
        }
        let failures = {
            let work = std::pin::pin!(self.dispatch(&entry));
            let lease = self.settings.claims.lease;
            let held = Held::InboxEntry {
                event_id: &entry.event_id,
            };
            let renew = || self.inbox.renew(&entry.event_id, token, lease);
            hold_while(work, lease, held, renew).await
        };
        let now = self.inbox.now_ms();
        let finish = if failures.is_empty() {
            Finish::Handled
        } else {
            let policy = self.settings.retry;
            policy.after_failure(attempts, first_failed_at_ms.unwrap_or(now), now, failures)
        };
        match &finish {
            Finish::Handled => {
                tracing::info!(event_id = %crate::text::Escaped(&entry.event_id), attempts, "inbox delivery handled")
            }
            Finish::Retry { at_ms, errors } => tracing::warn!(
                event_id = %crate::text::Escaped(&entry.event_id),
                attempts,
                failed = %failed_handlers(errors),
                retry_in_ms = at_ms.saturating_sub(now),
                "inbox delivery failed; it will be retried"
            ),
            Finish::Dead { errors } => tracing::error!(
                event_id = %crate::text::Escaped(&entry.event_id),
                attempts,
                failed = %failed_handlers(errors),
                "inbox delivery failed for longer than the retry policy allows: kept as a dead letter; replay it once fixed"
            ),
        }
        self.record(&entry.event_id, &entry.event_type, token, finish)
            .await;
    }

    /// Notes the delivery this worker holds, for a stop that runs out of time.
    fn hold(&self, event_id: Option<&str>) {
        if let Some(slot) = self.shared.holding.get(self.index) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = event_id.map(str::to_owned);
        }
    }

    /// Verifies the entry with the header it was kept with, at its verified time, against the
    /// configured secrets: what the inbox holds is dispatched only if the route could have
    /// taken it. The error says why not, and what to do.
    fn verify(&self, entry: &InboxEntry) -> Result<(), String> {
        let Some(header) = entry.signature.as_deref() else {
            return Err("it was kept without its signature header (written by a version of nextgen-events before entries were verified again, or not by the webhook route), so it cannot be verified; deliver the event again from NextGen".to_owned());
        };
        match self
            .settings
            .verifier
            .verify_at(&entry.body, header, entry.signed_at)
        {
            Ok(signed_at) if signed_at == entry.signed_at => Ok(()),
            Ok(signed_at) => Err(format!(
                "its signature is of Unix time {signed_at}, but the entry says {}: the entry was changed after it was kept",
                entry.signed_at
            )),
            Err(error) => Err(format!(
                "{error}; if the endpoint's secret was rotated since the entry was received, configure the old secret beside the new one (NEXTGEN_WEBHOOK_SECRET=new,old) and replay it"
            )),
        }
    }

    /// Dispatches one delivery; the failures, none when every handler succeeded.
    async fn dispatch(&self, entry: &InboxEntry) -> Vec<HandlerFailure> {
        let context = Context::from_app_data(&self.settings.data);
        let registry = match &self.settings.registry {
            Some(registry) => registry,
            None => Registry::global(),
        };
        let run = dispatch::start(
            &entry.body,
            registry,
            &context,
            None,
            Some(self.settings.claims.clone()),
        );
        drop(context);
        let run = match run {
            Ok(run) => run,
            // API drift, or a body this version cannot read: kept and retried, not lost.
            Err(NotStarted::Envelope(error)) => {
                return vec![HandlerFailure {
                    handler: "(payload)".to_owned(),
                    error: error.to_string(),
                }];
            }
            Err(NotStarted::Mismatch(field)) => {
                return vec![HandlerFailure {
                    handler: "(payload)".to_owned(),
                    error: format!("the entry's `{field}` is not its body's"),
                }];
            }
        };
        match run.await {
            Ok(report) => report
                .failures()
                .map(|outcome| HandlerFailure {
                    handler: outcome.handler.to_owned(),
                    error: outcome
                        .result
                        .as_ref()
                        .err()
                        .map_or_else(String::new, ToString::to_string),
                })
                .collect(),
            Err(error) => vec![HandlerFailure {
                handler: "(idempotency store)".to_owned(),
                error: error.to_string(),
            }],
        }
    }
}

/// Which handlers failed and why, for a log line: `handler: error; handler: error`, escaped.
fn failed_handlers(errors: &[HandlerFailure]) -> String {
    let listed: Vec<String> = errors
        .iter()
        .map(|failure| format!("{}: {}", failure.handler, failure.error))
        .collect();
    crate::text::escaped(&listed.join("; ")).into_owned()
}

/// An attempt's outcome label in the metrics.
fn outcome(finish: &Finish) -> &'static str {
    match finish {
        Finish::Handled => "handled",
        Finish::Retry { .. } => "retry",
        Finish::Dead { .. } => "dead",
    }
}
