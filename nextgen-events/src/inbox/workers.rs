//! The inbox's workers: threads started with the app that take due deliveries and dispatch
//! them, and stop with it, finishing what they hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};
use tokio::sync::Notify;
use tracing::Instrument;

use super::{Finish, HandlerFailure, Inbox, InboxEntry, RetryPolicy, Taken};
use crate::context::{AppData, Context};
use crate::dispatch;
use crate::idempotency::Claims;
use crate::registry::Registry;

/// What inbox mode needs, shared by every clone of a [`WebhookConfig`](crate::WebhookConfig).
/// The workers start on the first mount and stop when the last clone is dropped.
pub(crate) struct InboxMode {
    pub(crate) inbox: Arc<dyn Inbox>,
    wake: Arc<Notify>,
    workers: OnceLock<Workers>,
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
}

impl InboxMode {
    pub(crate) fn new(inbox: Arc<dyn Inbox>) -> Self {
        InboxMode {
            inbox,
            wake: Arc::new(Notify::new()),
            workers: OnceLock::new(),
        }
    }

    /// Starts the workers unless they run already.
    pub(crate) fn start(&self, settings: impl FnOnce() -> WorkerSettings) {
        self.workers.get_or_init(|| {
            Workers::start(Arc::clone(&self.inbox), Arc::clone(&self.wake), settings())
        });
    }

    /// Tells a waiting worker that a delivery arrived.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for InboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxMode")
            .field(
                "workers",
                &self.workers.get().map_or(0, |workers| workers.count()),
            )
            .finish_non_exhaustive()
    }
}

/// How often the first worker deletes handled entries past the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// The worker threads; dropping this stops them, each finishing the delivery it holds.
pub(crate) struct Workers {
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shutdown_timeout: Duration,
}

impl Workers {
    fn start(inbox: Arc<dyn Inbox>, wake: Arc<Notify>, settings: WorkerSettings) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..settings.count)
            .filter_map(|index| {
                let worker = Worker {
                    recovers: index == 0,
                    inbox: Arc::clone(&inbox),
                    wake: Arc::clone(&wake),
                    stop: Arc::clone(&stop),
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
        tracing::info!(workers = threads.len(), "inbox workers started");
        Workers {
            stop,
            wake,
            threads: Mutex::new(threads),
            shutdown_timeout: settings.shutdown_timeout,
        }
    }

    fn count(&self) -> usize {
        self.threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        let deadline = Instant::now() + self.shutdown_timeout;
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let mut unfinished = 0;
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                unfinished += 1;
            }
        }
        if unfinished > 0 {
            tracing::warn!(
                unfinished,
                "inbox workers still dispatching at shutdown were left: their deliveries' leases lapse and they are taken again at the next start"
            );
        } else {
            tracing::info!("inbox workers stopped");
        }
    }
}

struct Worker {
    /// Whether this worker recovers what the previous run left, before taking deliveries.
    recovers: bool,
    inbox: Arc<dyn Inbox>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    settings: WorkerSettings,
}

impl Worker {
    fn run(self) {
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
        tokio::task::LocalSet::new().block_on(&runtime, self.work());
    }

    async fn work(&self) {
        if self.recovers {
            match self.inbox.recover().await {
                Ok(0) => {}
                Ok(recovered) => tracing::warn!(
                    recovered,
                    "the previous run stopped while handling deliveries: they are taken again (handlers that succeeded stay skipped)"
                ),
                Err(error) => {
                    tracing::error!(%error, "could not recover the previous run's deliveries; their leases will lapse")
                }
            }
        }
        let mut pruned_at: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            if self.recovers && pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
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
        let failures = {
            let work = std::pin::pin!(self.dispatch(&entry));
            let renewals = std::pin::pin!(self.renew_forever(&entry.event_id, token));
            match select(work, renewals).await {
                Either::Left((failures, _)) => failures,
                Either::Right((never, _)) => match never {},
            }
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
        match self.inbox.finish(&entry.event_id, token, finish).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(event_id = %entry.event_id, "the inbox lease had lapsed when the delivery finished: it will be taken again (handlers that succeeded stay skipped)")
            }
            Err(error) => {
                tracing::error!(event_id = %entry.event_id, %error, "could not record the delivery's outcome in the inbox: it will be taken again")
            }
        }
    }

    /// Renews the delivery's lease about every third of it, until dropped.
    async fn renew_forever(
        &self,
        event_id: &str,
        token: crate::idempotency::OwnerToken,
    ) -> std::convert::Infallible {
        let lease = self.settings.claims.lease;
        let period = (lease / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(period).await;
            match self.inbox.renew(event_id, token, lease).await {
                Ok(true) => {}
                Ok(false) => tracing::error!(
                    event_id,
                    "the inbox lease lapsed mid-dispatch: another worker may take the delivery"
                ),
                Err(error) => tracing::warn!(%error, "could not renew the inbox lease"),
            }
        }
    }

    /// Dispatches one delivery; the failures, none when every handler succeeded.
    async fn dispatch(&self, entry: &InboxEntry) -> Vec<HandlerFailure> {
        let context = Context::from_app_data(&self.settings.data);
        let prepared = dispatch::prepare(&entry.body, Registry::global(), &context);
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
