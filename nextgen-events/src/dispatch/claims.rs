//! The claim protocol dispatch follows for each handler: claim, run while renewing, record.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{Either, select};

use crate::idempotency::{
    Claim, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken, StoreError, Watermark,
};

/// What a claim decided for one handler of one delivery.
pub(crate) enum Turn<'s> {
    /// Ours to run, under this lease.
    Run(Lease<'s>),
    /// It already succeeded for this event id.
    AlreadyDone,
    /// Another delivery holds it right now.
    InProgress,
}

/// A live claim on one `(event id, handler)`, held by this delivery.
pub(crate) struct Lease<'s> {
    store: &'s dyn IdempotencyStore,
    event_id: &'s str,
    handler: &'s str,
    token: OwnerToken,
    duration: Duration,
}

/// Claims `handler` for `event_id`.
pub(crate) async fn take_turn<'s>(
    store: &'s dyn IdempotencyStore,
    event_id: &'s str,
    handler: &'s str,
    duration: Duration,
) -> Result<Turn<'s>, StoreError> {
    Ok(match store.claim(event_id, handler, duration).await? {
        Claim::Claimed(token) => Turn::Run(Lease {
            store,
            event_id,
            handler,
            token,
            duration,
        }),
        Claim::AlreadyDone => Turn::AlreadyDone,
        Claim::InProgress => Turn::InProgress,
    })
}

impl Lease<'_> {
    /// Runs `work`, renewing the lease about every third of it until `work` ends, so a
    /// handler slower than the lease is never started a second time meanwhile.
    pub(crate) fn hold_while<W: Future>(
        &self,
        work: Pin<&mut W>,
    ) -> impl Future<Output = W::Output> {
        let renew = || {
            self.store
                .renew(self.event_id, self.handler, self.token, self.duration)
        };
        let held = Held::Handler {
            handler: self.handler,
            what: "claim",
        };
        hold_while(work, self.duration, held, renew)
    }

    /// Records the handler's outcome: a done marker on success, the claim dropped otherwise.
    pub(crate) async fn record(self, succeeded: bool) {
        let recorded = if succeeded {
            self.store
                .complete(self.event_id, self.handler, self.token)
                .await
        } else {
            self.store
                .release(self.event_id, self.handler, self.token)
                .await
        };
        crate::metrics::lease_kept("claim", "finish", &recorded);
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                handler = self.handler,
                succeeded,
                "the handler's claim had lapsed when its outcome was recorded: nothing was written, and a redelivery may run it again; raise `WebhookConfig::lease`"
            ),
            // The handler's own outcome stands; at worst its claim lapses and a redelivery
            // runs it again.
            Err(error) => {
                tracing::error!(
                handler = self.handler,
                succeeded,
                %error,
                "could not record the handler's outcome"
                );
            }
        }
    }
}

/// Turns taken by deliveries of one event id in this process: a redelivery that arrives while
/// the event is being dispatched waits for that dispatch, then finds its handlers done,
/// instead of being refused.
///
/// Keyed by a 64-bit hash of the event id rather than its text: no allocation for the key, and
/// a collision (odds about 2^-64 per pair of events in flight together) only makes two events
/// take turns, which changes nothing but their order.
#[derive(Debug, Default)]
pub(crate) struct EventLocks {
    hasher: foldhash::fast::RandomState,
    locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>, BuildHasherDefault<IdentityHash>>>,
}

/// The keys are hashes already: the table uses them as they are.
#[derive(Default)]
pub(crate) struct IdentityHash(u64);

impl Hasher for IdentityHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed (through `write_u64`); anything else still spreads.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// This delivery's turn on its event id; the next delivery of the id goes when it drops.
pub(crate) struct EventTurn {
    locks: Arc<EventLocks>,
    key: u64,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl EventLocks {
    /// Waits for this process's other deliveries of `event_id` to finish.
    pub(crate) async fn lock(self: &Arc<Self>, event_id: &str) -> EventTurn {
        // Built before waiting, so that a wait given up still removes the entry it added.
        let mut turn = EventTurn {
            locks: Arc::clone(self),
            key: self.hasher.hash_one(event_id),
            guard: None,
        };
        let mutex = Arc::clone(self.map().entry(turn.key).or_default());
        // Uncontended (the usual case): taken at once, without going through the waiter queue.
        turn.guard = Some(match Arc::clone(&mutex).try_lock_owned() {
            Ok(guard) => guard,
            // Boxed: the wait's state is most of this future's, and it is rarely needed.
            Err(_) => Box::pin(mutex.lock_owned()).await,
        });
        turn
    }

    #[allow(clippy::type_complexity)]
    fn map(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        HashMap<u64, Arc<tokio::sync::Mutex<()>>, BuildHasherDefault<IdentityHash>>,
    > {
        // Every update is one insert or remove: consistent whatever panicked.
        self.locks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for EventTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Only the map holds it: no delivery runs or waits, so the entry goes.
        if map
            .get(&self.key)
            .is_some_and(|mutex| Arc::strong_count(mutex) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// Where a dispatch keeps its handlers' claims.
#[derive(Clone)]
pub(crate) struct Claims {
    pub(crate) store: Arc<dyn IdempotencyStore>,
    pub(crate) lease: Duration,
    pub(crate) locks: Arc<EventLocks>,
    /// Turns taken by deliveries of one object for one `latest_only` handler in this process,
    /// keyed by [`object_lock_key`].
    pub(crate) object_locks: Arc<EventLocks>,
}

/// The in-process lock key of `(handler, object id)`: the handler's length first, so the
/// split between the two is unambiguous.
pub(crate) fn object_lock_key(handler: &str, object_id: &str) -> String {
    format!("{}:{handler}:{object_id}", handler.len())
}

/// What an object claim decided for one `latest_only` handler of one delivery.
pub(crate) enum ObjectTurn<'s> {
    /// Ours, with the newest event handled so far for the object.
    Held(ObjectLease<'s>, Option<Watermark>),
    /// Another delivery holds the object for this handler right now.
    InProgress,
}

/// A live object claim on one `(handler, object id)`, held by this delivery.
pub(crate) struct ObjectLease<'s> {
    store: &'s dyn ObjectClaims,
    handler: &'s str,
    object_id: &'s str,
    token: OwnerToken,
    duration: Duration,
}

/// Claims `object_id` for the `latest_only` handler `handler`, on a store that keeps object
/// claims (mounting refuses one that does not; other ways in get [`StoreError::NoObjectClaims`]).
pub(crate) async fn take_object_turn<'s>(
    store: &'s dyn IdempotencyStore,
    handler: &'s str,
    object_id: &'s str,
    duration: Duration,
) -> Result<ObjectTurn<'s>, StoreError> {
    let store = store.object_claims().ok_or(StoreError::NoObjectClaims)?;
    Ok(
        match store.claim_object(object_id, handler, duration).await? {
            ObjectClaim::Claimed { token, newest } => ObjectTurn::Held(
                ObjectLease {
                    store,
                    handler,
                    object_id,
                    token,
                    duration,
                },
                newest,
            ),
            ObjectClaim::InProgress => ObjectTurn::InProgress,
        },
    )
}

impl ObjectLease<'_> {
    /// Runs `work`, renewing the object claim about every third of its lease until `work`
    /// ends.
    pub(crate) fn hold_while<W: Future>(
        &self,
        work: Pin<&mut W>,
    ) -> impl Future<Output = W::Output> {
        let renew = || {
            self.store
                .renew_object(self.object_id, self.handler, self.token, self.duration)
        };
        let held = Held::Handler {
            handler: self.handler,
            what: "object claim",
        };
        hold_while(work, self.duration, held, renew)
    }

    /// Ends the claim: advancing the object's watermark to `handled` after a success, leaving
    /// it as it was otherwise. Whether the store recorded it (`false` is logged).
    pub(crate) async fn end(self, handled: Option<&Watermark>) -> bool {
        let ended = match handled {
            Some(handled) => {
                self.store
                    .advance_object(self.object_id, self.handler, self.token, handled)
                    .await
            }
            None => {
                self.store
                    .release_object(self.object_id, self.handler, self.token)
                    .await
            }
        };
        let advanced = handled.is_some();
        crate::metrics::lease_kept("object claim", "finish", &ended);
        match ended {
            Ok(true) => true,
            Ok(false) => {
                tracing::error!(
                    handler = self.handler,
                    advanced,
                    "the handler's object claim had lapsed when it ended: nothing was written; raise `WebhookConfig::lease`"
                );
                false
            }
            Err(error) => {
                tracing::error!(
                    handler = self.handler,
                    advanced,
                    %error,
                    "could not end the handler's object claim"
                );
                false
            }
        }
    }
}

/// What a lease is held on, for the logs and the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Held<'a> {
    /// A handler's claim on an event (`what`: "claim" or "object claim").
    Handler {
        handler: &'a str,
        what: &'static str,
    },
    /// An inbox entry's lease, held by a worker.
    InboxEntry { event_id: &'a str },
}

impl Held<'_> {
    /// The `lease` label of the metrics.
    fn label(self) -> &'static str {
        match self {
            Held::Handler { what, .. } => what,
            Held::InboxEntry { .. } => "inbox entry",
        }
    }
}

/// Runs `work`, calling `renew` about every third of `lease` until `work` ends: the one lease
/// loop, for handlers' claims and inbox entries alike. A lapsed lease is logged and counted
/// once, and renewing stops (another delivery or worker may hold it now); a failed renewal is
/// logged and counted, and the next one may get through.
///
/// `work` is pinned by the caller, so the handler's future is not moved into (and its room
/// not repeated in) every layer of this one.
pub(crate) async fn hold_while<W, F>(
    mut work: Pin<&mut W>,
    lease: Duration,
    held: Held<'_>,
    renew: impl Fn() -> F,
) -> W::Output
where
    W: Future,
    F: Future<Output = Result<bool, StoreError>>,
{
    // Most handlers finish within their first poll: those never build the renewal loop,
    // whose timer would make every claimed run's state larger. Without a tokio runtime there
    // is no timer: the lease simply runs its course.
    let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
    if let Poll::Ready(output) = first {
        return output;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return work.await;
    }
    let renewals = Box::pin(renew_forever(lease, held, renew));
    match select(work, renewals).await {
        Either::Left((output, _)) => output,
        Either::Right((never, _)) => match never {},
    }
}

async fn renew_forever<F>(
    lease: Duration,
    held: Held<'_>,
    renew: impl Fn() -> F,
) -> std::convert::Infallible
where
    F: Future<Output = Result<bool, StoreError>>,
{
    let period = (lease / 3).max(Duration::from_millis(1));
    let mut holding = true;
    loop {
        tokio::time::sleep(period).await;
        if !holding {
            continue;
        }
        let renewed = renew().await;
        crate::metrics::lease_kept(held.label(), "renew", &renewed);
        match (renewed, held) {
            (Ok(true), _) => {}
            (Ok(false), Held::Handler { handler, what }) => {
                holding = false;
                tracing::error!(
                    handler,
                    "the handler's {what} lapsed before it could be renewed (the process stalled for longer than the lease?): another delivery may run it too; raise `WebhookConfig::lease`"
                );
            }
            (Ok(false), Held::InboxEntry { event_id }) => {
                holding = false;
                tracing::error!(
                    event_id,
                    "the inbox lease lapsed mid-dispatch (the process stalled for longer than the lease?): another worker may take the delivery; raise `WebhookConfig::lease`"
                );
            }
            // Until the lease ends the claim holds.
            (Err(error), held) => {
                tracing::warn!(?held, %error, "could not renew the {} lease", held.label())
            }
        }
    }
}
