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
    let claim = match store.immediate() {
        Some(store) => store.claim_now(event_id, handler, duration)?,
        None => store.claim(event_id, handler, duration).await?,
    };
    Ok(match claim {
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

impl<'s> Lease<'s> {
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

    /// The store, the event id, the handler's name and the claim's token.
    #[cfg(feature = "sqlite")]
    pub(crate) fn parts(&self) -> (&'s dyn IdempotencyStore, &'s str, &'s str, OwnerToken) {
        (self.store, self.event_id, self.handler, self.token)
    }

    /// Records the handler's outcome: a done marker on success, the claim dropped otherwise.
    pub(crate) async fn record(self, succeeded: bool) {
        let (store, event_id, handler, token) =
            (self.store, self.event_id, self.handler, self.token);
        let recorded = match (store.immediate(), succeeded) {
            (Some(store), true) => store.complete_now(event_id, handler, token),
            (Some(store), false) => store.release_now(event_id, handler, token),
            (None, true) => match store.complete(event_id, handler, token).await {
                Err(error) => {
                    complete_again(store, event_id, handler, token, self.duration, error).await
                }
                recorded => recorded,
            },
            (None, false) => store.release(event_id, handler, token).await,
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

/// How long a done marker that failed to be written is tried again at most: a store back
/// from a moment's outage (a database restarting) records it, and the handler is not run a
/// second time for want of one write; a store down for longer is not waited on past a
/// sender's patience.
const COMPLETE_AGAIN_FOR: Duration = Duration::from_secs(5);

/// Writes the done marker again after `error`, while the claim's lease surely holds (two
/// thirds of it are left after the last renewal) and for at most [`COMPLETE_AGAIN_FOR`].
#[cold]
async fn complete_again(
    store: &dyn IdempotencyStore,
    event_id: &str,
    handler: &str,
    token: OwnerToken,
    lease: Duration,
    error: StoreError,
) -> Result<bool, StoreError> {
    let deadline = (lease / 3).min(COMPLETE_AGAIN_FOR);
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut last = error;
    while started.elapsed() + pause < deadline {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        match store.complete(event_id, handler, token).await {
            Err(error) => last = error,
            recorded => return recorded,
        }
    }
    Err(last)
}

/// Turns taken by deliveries of one event id in this process: a redelivery that arrives while
/// the event is being dispatched waits for that dispatch, then finds its handlers done,
/// instead of being refused.
///
/// Keyed by a 64-bit hash of the event id rather than its text: no allocation for the key, and
/// a collision (odds about 2^-64 per pair of events in flight together) only makes two events
/// take turns, which changes nothing but their order. An uncontended turn is one entry in the
/// table and nothing else; the queue a waiter sleeps on is made only when one waits.
#[derive(Debug, Default)]
pub(crate) struct EventLocks {
    hasher: foldhash::fast::RandomState,
    turns: Mutex<HashMap<u64, Waiting, BuildHasherDefault<IdentityHash>>>,
}

/// The deliveries waiting for the turn of one key, whose entry exists while one holds it.
#[derive(Debug, Default)]
struct Waiting {
    count: usize,
    /// Where the holder hands the turn on: one permit is one waiter's turn.
    handover: Option<Arc<tokio::sync::Semaphore>>,
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
pub(crate) struct EventTurn<'l> {
    locks: &'l EventLocks,
    key: u64,
}

/// A delivery waiting for its turn; dropped before the turn came, it leaves the queue (and
/// hands on a turn given to it meanwhile).
struct Waiter<'l> {
    locks: &'l EventLocks,
    key: u64,
    handover: Arc<tokio::sync::Semaphore>,
    waiting: bool,
}

impl<'l> Waiter<'l> {
    /// Waits for the holder (or a waiter before this one) to hand the turn on.
    async fn turn(mut self) -> EventTurn<'l> {
        // The semaphore is never closed: a permit is the turn, handed on by its holder.
        if let Ok(permit) = self.handover.acquire().await {
            permit.forget();
        }
        self.waiting = false;
        EventTurn {
            locks: self.locks,
            key: self.key,
        }
    }
}

impl EventLocks {
    /// Waits for this process's other deliveries of `event_id` to finish.
    pub(crate) async fn lock(&self, event_id: &str) -> EventTurn<'_> {
        let key = self.hasher.hash_one(event_id);
        let handover = {
            let mut turns = self.turns();
            match turns.entry(key) {
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    // Uncontended (the usual case): the turn is ours at once.
                    vacant.insert(Waiting::default());
                    return EventTurn { locks: self, key };
                }
                std::collections::hash_map::Entry::Occupied(mut occupied) => {
                    let waiting = occupied.get_mut();
                    waiting.count += 1;
                    Arc::clone(
                        waiting
                            .handover
                            .get_or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(0))),
                    )
                }
            }
        };
        let waiter = Waiter {
            locks: self,
            key,
            handover,
            waiting: true,
        };
        // Boxed: the wait's state is most of this future's, and it is rarely needed.
        Box::pin(waiter.turn()).await
    }

    fn turns(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting, BuildHasherDefault<IdentityHash>>> {
        // Every update is made whole under the lock: consistent whatever panicked.
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the turn on `key`: handed to a waiter, or the entry removed when none waits.
    fn pass_on(
        &self,
        key: u64,
        turns: &mut HashMap<u64, Waiting, BuildHasherDefault<IdentityHash>>,
    ) {
        match turns.get_mut(&key) {
            Some(waiting) if waiting.count > 0 => {
                waiting.count -= 1;
                if let Some(handover) = &waiting.handover {
                    handover.add_permits(1);
                }
            }
            _ => {
                turns.remove(&key);
            }
        }
    }
}

impl Drop for EventTurn<'_> {
    fn drop(&mut self) {
        let mut turns = self.locks.turns();
        self.locks.pass_on(self.key, &mut turns);
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        // Still waiting (the wait was given up): leave the queue, under the lock that every
        // hand-over takes, so a turn handed to this waiter in the meantime is handed on.
        if !self.waiting {
            return;
        }
        let mut turns = self.locks.turns();
        match self.handover.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.locks.pass_on(self.key, &mut turns);
            }
            Err(_) => {
                if let Some(waiting) = turns.get_mut(&self.key) {
                    waiting.count -= 1;
                }
            }
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
                    event_id = %crate::text::Escaped(event_id),
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::EventLocks;

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// The turn on `event_id`, which must be free.
    fn taken<'l>(locks: &'l EventLocks, event_id: &str) -> super::EventTurn<'l> {
        let Some(turn) = futures_util::FutureExt::now_or_never(locks.lock(event_id)) else {
            panic!("the turn on {event_id} was not free");
        };
        turn
    }

    fn entries(locks: &EventLocks) -> usize {
        locks.turns().len()
    }

    #[test]
    fn an_uncontended_turn_is_taken_at_once_and_leaves_nothing_behind() {
        let locks = EventLocks::default();
        let turn = pin!(locks.lock("evt_1"));
        let Poll::Ready(turn) = poll_once(turn) else {
            panic!("an uncontended turn waited");
        };
        assert_eq!(entries(&locks), 1);
        drop(turn);
        assert_eq!(entries(&locks), 0);
    }

    #[test]
    fn deliveries_of_one_event_take_turns_in_order_and_other_events_do_not_wait() {
        let locks = EventLocks::default();
        let first = taken(&locks, "evt_1");
        let mut second = pin!(locks.lock("evt_1"));
        let mut third = pin!(locks.lock("evt_1"));
        assert!(poll_once(second.as_mut()).is_pending());
        assert!(poll_once(third.as_mut()).is_pending());
        drop(taken(&locks, "evt_2"));

        drop(first);
        let Poll::Ready(second) = poll_once(second.as_mut()) else {
            panic!("the turn was not handed on");
        };
        assert!(
            poll_once(third.as_mut()).is_pending(),
            "two deliveries hold one turn"
        );
        drop(second);
        let Poll::Ready(third) = poll_once(third.as_mut()) else {
            panic!("the turn was not handed on to the last waiter");
        };
        drop(third);
        assert_eq!(entries(&locks), 0);
    }

    #[test]
    fn a_wait_given_up_hands_on_a_turn_it_was_given_and_leaves_the_queue() {
        let locks = EventLocks::default();
        let first = taken(&locks, "evt_1");
        let mut given_up = Box::pin(locks.lock("evt_1"));
        let mut last = pin!(locks.lock("evt_1"));
        assert!(poll_once(given_up.as_mut()).is_pending());
        assert!(poll_once(last.as_mut()).is_pending());
        // The turn goes to the first waiter, which gives up before it runs.
        drop(first);
        drop(given_up);
        let Poll::Ready(last) = poll_once(last.as_mut()) else {
            panic!("a turn handed to a waiter that gave up was lost");
        };
        drop(last);
        assert_eq!(entries(&locks), 0);

        // A waiter that gives up before the holder ends leaves no one to hand the turn to.
        let holder = taken(&locks, "evt_1");
        let mut gone = Box::pin(locks.lock("evt_1"));
        assert!(poll_once(gone.as_mut()).is_pending());
        drop(gone);
        drop(holder);
        assert_eq!(entries(&locks), 0);
        drop(taken(&locks, "evt_1"));
    }

    #[test]
    fn a_lock_entry_leaves_once_every_waiter_has_had_its_turn_or_given_up() {
        // Many waiters, some giving up, each leaving its count: the table ends empty, so
        // event ids that come and go leave nothing behind.
        let locks = EventLocks::default();
        for round in 0..3 {
            let holder = taken(&locks, "evt_1");
            let mut kept = Vec::new();
            for n in 0..4 {
                let mut waiter = Box::pin(locks.lock("evt_1"));
                assert!(poll_once(waiter.as_mut()).is_pending());
                if (n + round) % 2 == 0 {
                    drop(waiter);
                } else {
                    kept.push(waiter);
                }
            }
            assert_eq!(entries(&locks), 1);
            drop(holder);
            for mut waiter in kept {
                let Poll::Ready(turn) = poll_once(waiter.as_mut()) else {
                    panic!("a waiter was skipped");
                };
                drop(turn);
            }
            assert_eq!(entries(&locks), 0, "round {round}");
        }
    }

    #[test]
    fn object_lock_keys_tell_handlers_and_objects_apart() {
        use super::object_lock_key;
        let keys = [
            object_lock_key("crm.sync", "cus_1"),
            object_lock_key("crm.sync", "cus_2"),
            object_lock_key("crm.audit", "cus_1"),
            // The same text split differently between handler and object.
            object_lock_key("a:b", "c"),
            object_lock_key("a", "b:c"),
        ];
        for (i, one) in keys.iter().enumerate() {
            for other in &keys[i + 1..] {
                assert_ne!(one, other);
            }
        }
        assert_eq!(keys[0], object_lock_key("crm.sync", "cus_1"));

        // So one object's turn leaves another's free.
        let locks = EventLocks::default();
        let _first = taken(&locks, &keys[0]);
        drop(taken(&locks, &keys[1]));
    }

    #[test]
    fn held_labels_name_the_lease_for_the_metrics() {
        use super::Held;
        let claim = Held::Handler {
            handler: "crm.sync",
            what: "claim",
        };
        let object = Held::Handler {
            handler: "crm.sync",
            what: "object claim",
        };
        let entry = Held::InboxEntry { event_id: "evt_1" };
        assert_eq!(claim.label(), "claim");
        assert_eq!(object.label(), "object claim");
        assert_eq!(entry.label(), "inbox entry");
    }
}
