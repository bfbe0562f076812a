//! The inbox's workers: threads started with the app that take due deliveries and dispatch
//! them, and stop with it, finishing what they hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::future::select;
use tokio::sync::Notify;
use tracing::Instrument;

use super::{Finish, HandlerFailure, Inbox, InboxEntry, RetryPolicy, Taken, WorkersLock};
use crate::dispatch;
use crate::dispatch::{Claims, Held, hold_while};
use crate::handler::{AppData, Context};
use crate::idempotency::StoreError;
use crate::registry::Registry;
use crate::signature::Verifier;

/// What inbox mode needs, shared by every clone of a [`WebhookConfig`](crate::WebhookConfig).
/// The workers start on the first mount and stop when the last clone is dropped.
pub(crate) struct InboxMode {
    pub(crate) inbox: Arc<dyn Inbox>,
    /// The inbox's idempotency store, where its handlers' claims and markers live.
    pub(crate) store: Arc<dyn crate::idempotency::IdempotencyStore>,
    wake: Arc<Notify>,
    workers: Mutex<Option<Workers>>,
}

/// How the workers run; read from the configuration when they start.
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

impl InboxMode {
    pub(crate) fn new(inbox: Arc<dyn Inbox>) -> Self {
        InboxMode {
            store: inbox.idempotency_store(),
            inbox,
            wake: Arc::new(Notify::new()),
            workers: Mutex::new(None),
        }
    }

    /// Starts the workers unless they run already; fails when the inbox cannot be theirs
    /// alone (another process's workers hold a SQLite inbox).
    pub(crate) fn start(
        &self,
        settings: impl FnOnce() -> WorkerSettings,
    ) -> Result<(), StoreError> {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if workers.is_none() {
            *workers = Some(Workers::start(
                Arc::clone(&self.inbox),
                Arc::clone(&self.wake),
                settings(),
            )?);
        }
        Ok(())
    }

    /// Tells a waiting worker that a delivery arrived.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for InboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("InboxMode")
            .field(
                "workers",
                &workers.as_ref().map_or(0, |workers| {
                    workers
                        .threads
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .len()
                }),
            )
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

/// The worker threads; dropping this stops them, each finishing the delivery it holds.
pub(crate) struct Workers {
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    holding: Holding,
    shutdown_timeout: Duration,
    /// Released once every worker has stopped.
    lock: Option<WorkersLock>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(RecoveryGate::default());
        let holding: Holding = (0..settings.count).map(|_| Mutex::new(None)).collect();
        let threads = (0..settings.count)
            .filter_map(|index| {
                let worker = Worker {
                    index,
                    inbox: Arc::clone(&inbox),
                    wake: Arc::clone(&wake),
                    stop: Arc::clone(&stop),
                    gate: Arc::clone(&gate),
                    holding: Arc::clone(&holding),
                    settings: settings.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("nextgen-inbox-worker-{index}"))
                    .spawn(move || worker.run())
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
            stop,
            wake,
            threads: Mutex::new(threads),
            holding,
            shutdown_timeout: settings.shutdown_timeout,
            lock,
        })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        let deadline = Instant::now().checked_add(self.shutdown_timeout);
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let mut unfinished = Vec::new();
        for thread in threads {
            while !thread.is_finished() && deadline.is_none_or(|deadline| Instant::now() < deadline)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                unfinished.push(thread);
            }
        }
        if unfinished.is_empty() {
            tracing::info!("inbox workers stopped");
            return;
        }
        let left: Vec<String> = self
            .holding
            .iter()
            .filter_map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect();
        tracing::warn!(
            workers = unfinished.len(),
            deliveries = ?left,
            timeout_ms = u64::try_from(self.shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
            "the stop's timeout ran out while inbox workers were still dispatching these deliveries: they are left to the next start, which takes them again once their leases lapse (handlers that had succeeded stay skipped)"
        );
        // Another process's workers must not start on the inbox while these still run.
        if let Some(lock) = self.lock.take() {
            let _ = std::thread::Builder::new()
                .name("nextgen-inbox-stop".to_owned())
                .spawn(move || {
                    for thread in unfinished {
                        let _ = thread.join();
                    }
                    drop(lock);
                });
        }
    }
}

struct Worker {
    /// The first worker (0) recovers what an earlier run left and prunes.
    index: usize,
    inbox: Arc<dyn Inbox>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    gate: Arc<RecoveryGate>,
    holding: Holding,
    settings: WorkerSettings,
}

impl Worker {
    fn run(self) {
        let recovers = self.index == 0;
        let opens = recovers.then(|| OpenOnDrop(Arc::clone(&self.gate)));
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
        // A local set, as actix's workers have: handlers may spawn `!Send` tasks.
        tokio::task::LocalSet::new().block_on(&runtime, self.work(opens));
    }

    async fn work(&self, opens: Option<OpenOnDrop>) {
        if let Some(opens) = opens {
            self.recover().await;
            drop(opens);
        }
        let mut pruned_at: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            if self.index == 0 && pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                self.prune().await;
            }
            match self.inbox.take(self.settings.claims.lease).await {
                Ok(Some(taken)) => self.handle(taken).await,
                Ok(None) => self.idle().await,
                Err(error) => {
                    crate::metrics::store_failure("inbox");
                    tracing::error!(%error, "the inbox could not be read; trying again");
                    self.idle().await;
                }
            }
        }
    }

    /// Hands back what an earlier run left running; no worker of this run has taken anything.
    async fn recover(&self) {
        match self.inbox.recover().await {
            Ok(0) => {}
            Ok(recovered) => tracing::warn!(
                recovered,
                "an earlier run of this inbox's workers was killed while handling deliveries: they are taken again in their place in the queue (handlers that had succeeded stay skipped)"
            ),
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

    /// Waits for a delivery to arrive, or the poll interval.
    async fn idle(&self) {
        let woken = std::pin::pin!(self.wake.notified());
        let timer = std::pin::pin!(tokio::time::sleep(self.settings.poll));
        select(woken, timer).await;
    }

    async fn handle(&self, taken: Taken) {
        let Taken {
            entry,
            token,
            attempts,
            first_failed_at_ms,
        } = taken;
        self.hold(Some(&entry.event_id));
        if let Err(why) = self.verify(&entry) {
            crate::metrics::inbox_attempt(&entry.event_type, "dead");
            tracing::error!(
                event_id = %entry.event_id,
                "an inbox entry does not verify: kept as a dead letter, not dispatched; {why}"
            );
            let errors = vec![HandlerFailure {
                handler: "(signature)".to_owned(),
                error: why,
            }];
            if let Err(error) = self
                .inbox
                .finish(&entry.event_id, token, Finish::Dead { errors })
                .await
            {
                tracing::error!(event_id = %entry.event_id, %error, "could not record the unverified entry as a dead letter: it will be taken again");
            }
            self.hold(None);
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
        let outcome = match &finish {
            Finish::Handled => "handled",
            Finish::Retry { .. } => "retry",
            Finish::Dead { .. } => "dead",
        };
        crate::metrics::inbox_attempt(&entry.event_type, outcome);
        match &finish {
            Finish::Handled => {
                tracing::info!(event_id = %entry.event_id, attempts, "inbox delivery handled")
            }
            Finish::Retry { at_ms, errors } => tracing::warn!(
                event_id = %entry.event_id,
                attempts,
                failed = errors.len(),
                retry_in_ms = at_ms.saturating_sub(now),
                "inbox delivery failed; it will be retried"
            ),
            Finish::Dead { errors } => tracing::error!(
                event_id = %entry.event_id,
                attempts,
                failed = errors.len(),
                "inbox delivery failed for longer than the retry policy allows: kept as a dead letter; replay it once fixed"
            ),
        }
        let finished = self.inbox.finish(&entry.event_id, token, finish).await;
        crate::metrics::lease_kept("inbox entry", "finish", &finished);
        match finished {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(event_id = %entry.event_id, "the inbox lease had lapsed when the delivery finished: it will be taken again (handlers that succeeded stay skipped)")
            }
            Err(error) => {
                tracing::error!(event_id = %entry.event_id, %error, "could not record the delivery's outcome in the inbox: it will be taken again")
            }
        }
        self.hold(None);
    }

    /// Notes the delivery this worker holds, for a stop that runs out of time.
    fn hold(&self, event_id: Option<&str>) {
        if let Some(slot) = self.holding.get(self.index) {
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
        let prepared = dispatch::prepare(&entry.body, registry, &context);
        drop(context);
        let (prepared, span) = match prepared {
            Ok(prepared) => prepared,
            // API drift, or a body this version cannot read: kept and retried, not lost.
            Err(error) => {
                return vec![HandlerFailure {
                    handler: "(payload)".to_owned(),
                    error: error.to_string(),
                }];
            }
        };
        match prepared
            .run_claimed(&self.settings.claims)
            .instrument(span)
            .await
        {
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
