//! An inbox that forwards to another with a test's hooks in the way: counting the workers'
//! looks, panicking as a store with a bug would, or recovering slowly.

use std::sync::Arc;
use std::time::Duration;

use nextgen_events::idempotency::{IdempotencyStore, OwnerToken, StoreError, StoreFuture};
use nextgen_events::inbox::{
    Appended, Arrivals, ArrivalsWatch, Finish, Inbox, InboxEntry, Recovered, Taken, WorkersLock,
};

/// A hook: called before the call it stands in front of.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// `inner`, with hooks before `take` and `finish` and a pause before `recover`; everything else
/// as `inner` does it, but it offers no operator view, so an endpoint on it reads no counts
/// from the store.
#[derive(Clone)]
pub struct HookedInbox<I> {
    inner: I,
    before_take: Option<Hook>,
    before_finish: Option<Hook>,
    recovery_pause: Duration,
}

impl<I> HookedInbox<I> {
    /// `inner` with no hook: as `inner`, without its operator view.
    pub fn new(inner: I) -> Self {
        HookedInbox {
            inner,
            before_take: None,
            before_finish: None,
            recovery_pause: Duration::ZERO,
        }
    }

    /// Calls `hook` before each `take` (it may panic).
    pub fn before_take(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_take = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` before each `finish` (it may panic).
    pub fn before_finish(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_finish = Some(Arc::new(hook));
        self
    }

    /// Sleeps `pause` before each `recover`, as a store on a slow disk takes its time.
    pub fn recovering_for(mut self, pause: Duration) -> Self {
        self.recovery_pause = pause;
        self
    }
}

impl<I: Inbox> Inbox for HookedInbox<I> {
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        self.inner.append(entry)
    }
    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        if let Some(hook) = &self.before_take {
            hook();
        }
        self.inner.take(lease)
    }
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.renew(event_id, token, lease)
    }
    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        if let Some(hook) = &self.before_finish {
            hook();
        }
        self.inner.finish(event_id, token, finish)
    }
    fn recover(&self) -> StoreFuture<'_, Recovered> {
        Box::pin(async move {
            if !self.recovery_pause.is_zero() {
                tokio::time::sleep(self.recovery_pause).await;
            }
            self.inner.recover().await
        })
    }
    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        self.inner.lock_workers()
    }
    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        self.inner.prune(before_ms)
    }
    fn retention(&self) -> Duration {
        self.inner.retention()
    }
    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        self.inner.idempotency_store()
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn check_settings(&self) -> Result<(), StoreError> {
        self.inner.check_settings()
    }
    fn watch_arrivals(&self, arrivals: Arrivals) -> Option<ArrivalsWatch> {
        self.inner.watch_arrivals(arrivals)
    }
}
