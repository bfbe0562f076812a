//! The metered store and inbox: one wrapper the endpoint puts around each, which counts every
//! call (by operation and outcome), times those that wait, and counts the store's failures, so
//! that no caller counts them itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::metrics::{Key, Label, Level, Metadata};

use crate::idempotency::{
    Claim, IdempotencyStore, ImmediateClaims, ObjectClaim, ObjectClaims, OwnerToken, StoreError,
    StoreFuture, Watermark,
};
use crate::inbox::{
    Appended, Arrivals, ArrivalsWatch, Finish, Inbox, InboxEntry, InboxOperator, Recovered, Taken,
    WorkersLock,
};
use crate::metrics::{STORE_CALL_DURATION, STORE_CALLS, STORE_FAILURES};

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one store's metrics, built once: recording then builds no key.
struct Meter {
    /// Per operation: the calls that succeeded, the calls that failed, the durations.
    operations: Vec<[Key; 3]>,
    failures: Key,
}

impl Meter {
    fn new(store: &'static str, operations: &[&'static str]) -> Self {
        let key = |name: &'static str, labels: Vec<Label>| Key::from_parts(name, labels);
        let store_label = || Label::from_static_parts("store", store);
        Meter {
            operations: operations
                .iter()
                .map(|&operation| {
                    let calls = |outcome| {
                        key(
                            STORE_CALLS,
                            vec![
                                store_label(),
                                Label::from_static_parts("operation", operation),
                                Label::from_static_parts("outcome", outcome),
                            ],
                        )
                    };
                    [
                        calls("ok"),
                        calls("error"),
                        key(
                            STORE_CALL_DURATION,
                            vec![
                                store_label(),
                                Label::from_static_parts("operation", operation),
                            ],
                        ),
                    ]
                })
                .collect(),
            failures: key(STORE_FAILURES, vec![store_label()]),
        }
    }

    /// Counts one call of `operation` that ended with `result`.
    fn count<T>(&self, operation: usize, result: &Result<T, StoreError>) {
        let Some([ok, error, _]) = self.operations.get(operation) else {
            return;
        };
        ::metrics::with_recorder(|recorder| {
            let key = if result.is_ok() { ok } else { error };
            recorder.register_counter(key, &METADATA).increment(1);
            if result.is_err() {
                recorder
                    .register_counter(&self.failures, &METADATA)
                    .increment(1);
            }
        });
    }

    /// Counts and times one call of `operation` that waits for its answer.
    fn timed<'a, T: 'a>(
        &'a self,
        operation: usize,
        call: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let started = Instant::now();
            let result = call.await;
            self.time(operation, started.elapsed());
            self.count(operation, &result);
            result
        })
    }

    fn time(&self, operation: usize, took: Duration) {
        if let Some([_, _, duration]) = self.operations.get(operation) {
            ::metrics::with_recorder(|recorder| {
                recorder
                    .register_histogram(duration, &METADATA)
                    .record(took.as_secs_f64());
            });
        }
    }
}

/// The idempotency store's operations, in [`Meter`]'s order.
const STORE_OPERATIONS: [&str; 8] = [
    "claim",
    "renew",
    "complete",
    "release",
    "claim_object",
    "renew_object",
    "release_object",
    "advance_object",
];
const CLAIM: usize = 0;
const RENEW: usize = 1;
const COMPLETE: usize = 2;
const RELEASE: usize = 3;
const CLAIM_OBJECT: usize = 4;
const RENEW_OBJECT: usize = 5;
const RELEASE_OBJECT: usize = 6;
const ADVANCE_OBJECT: usize = 7;

/// An idempotency store whose every call is counted; it offers the capabilities (object
/// claims, immediate answers) its store offers, and no others.
pub(crate) struct MeteredStore {
    inner: Arc<dyn IdempotencyStore>,
    meter: Meter,
}

impl MeteredStore {
    pub(crate) fn new(inner: Arc<dyn IdempotencyStore>) -> Self {
        MeteredStore {
            inner,
            meter: Meter::new("idempotency", &STORE_OPERATIONS),
        }
    }
}

/// The error of a capability the wrapped store offered when asked, then no longer: never, for
/// a store whose capabilities are fixed, which every store of this crate's is.
fn lost<T>(capability: &str) -> Result<T, StoreError> {
    Err(StoreError::Unavailable(format!(
        "the idempotency store stopped offering its {capability}, which it offered a moment before: a store's capabilities must not change"
    )))
}

impl IdempotencyStore for MeteredStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        self.meter
            .timed(CLAIM, self.inner.claim(event_id, handler, lease))
    }
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.meter
            .timed(RENEW, self.inner.renew(event_id, handler, token, lease))
    }
    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        self.meter
            .timed(COMPLETE, self.inner.complete(event_id, handler, token))
    }
    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        self.meter
            .timed(RELEASE, self.inner.release(event_id, handler, token))
    }
    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        self.inner
            .object_claims()
            .map(|_| self as &dyn ObjectClaims)
    }
    fn immediate(&self) -> Option<&dyn ImmediateClaims> {
        self.inner.immediate().map(|_| self as &dyn ImmediateClaims)
    }
    // Not metered: the marker is one statement of the app's own transaction.
    #[cfg(feature = "postgres")]
    fn pg_transactions(&self) -> Option<&dyn crate::idempotency::PgTransactions> {
        self.inner.pg_transactions()
    }
    #[cfg(feature = "sqlite")]
    fn sqlite_transactions(&self) -> Option<&dyn crate::idempotency::SqliteTransactions> {
        self.inner.sqlite_transactions()
    }
    fn check_settings(&self) -> Result<(), StoreError> {
        self.inner.check_settings()
    }
}

impl ImmediateClaims for MeteredStore {
    fn claim_now(
        &self,
        event_id: &str,
        handler: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.immediate_call(CLAIM, |store| store.claim_now(event_id, handler, lease))
    }
    fn complete_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError> {
        self.immediate_call(COMPLETE, |store| {
            store.complete_now(event_id, handler, token)
        })
    }
    fn release_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError> {
        self.immediate_call(RELEASE, |store| store.release_now(event_id, handler, token))
    }
}

impl MeteredStore {
    /// The wrapped store's immediate answer, counted as `operation` (not timed: it waits for
    /// nothing).
    fn immediate_call<T>(
        &self,
        operation: usize,
        call: impl FnOnce(&dyn ImmediateClaims) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = match self.inner.immediate() {
            Some(store) => call(store),
            None => lost("immediate claims"),
        };
        self.meter.count(operation, &result);
        result
    }

    /// The wrapped store's object claims, timed and counted as `operation`.
    fn object<'a, T: Send + 'a>(
        &'a self,
        operation: usize,
        call: impl FnOnce(&'a dyn ObjectClaims) -> StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        match self.inner.object_claims() {
            Some(claims) => self.meter.timed(operation, call(claims)),
            None => Box::pin(std::future::ready(lost("object claims"))),
        }
    }
}

impl ObjectClaims for MeteredStore {
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim> {
        self.object(CLAIM_OBJECT, |claims| {
            claims.claim_object(object_id, handler, lease)
        })
    }
    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.object(RENEW_OBJECT, |claims| {
            claims.renew_object(object_id, handler, token, lease)
        })
    }
    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        self.object(RELEASE_OBJECT, |claims| {
            claims.release_object(object_id, handler, token)
        })
    }
    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool> {
        self.object(ADVANCE_OBJECT, |claims| {
            claims.advance_object(object_id, handler, token, handled)
        })
    }
}

/// The inbox's operations, in [`Meter`]'s order.
const INBOX_OPERATIONS: [&str; 6] = ["append", "take", "renew", "finish", "recover", "prune"];
const APPEND: usize = 0;
const TAKE: usize = 1;
const INBOX_RENEW: usize = 2;
const FINISH: usize = 3;
const RECOVER: usize = 4;
const PRUNE: usize = 5;

/// An inbox whose every call is counted.
pub(crate) struct MeteredInbox {
    inner: Arc<dyn Inbox>,
    meter: Meter,
}

impl MeteredInbox {
    pub(crate) fn new(inner: Arc<dyn Inbox>) -> Self {
        MeteredInbox {
            inner,
            meter: Meter::new("inbox", &INBOX_OPERATIONS),
        }
    }
}

impl Inbox for MeteredInbox {
    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        self.meter.timed(APPEND, self.inner.append(entry))
    }
    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        self.meter.timed(TAKE, self.inner.take(lease))
    }
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.meter
            .timed(INBOX_RENEW, self.inner.renew(event_id, token, lease))
    }
    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        self.meter
            .timed(FINISH, self.inner.finish(event_id, token, finish))
    }
    fn recover(&self) -> StoreFuture<'_, Recovered> {
        self.meter.timed(RECOVER, self.inner.recover())
    }
    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        self.inner.lock_workers()
    }
    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        self.meter.timed(PRUNE, self.inner.prune(before_ms))
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
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        self.inner.operator()
    }
}
