//! The idempotency store contract: one suite every store passes (memory, Redis, ...).
//!
//! Each check takes a [`StoreUnderTest`], which gives the store and lets time pass for it (a
//! moved clock for the memory store, a short real wait for a server). Event ids are made
//! unique per call, so checks can share one server and run in parallel.
//! [`store_contract_tests!`](crate::store_contract_tests) turns the suite into one test each.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nextgen_events::idempotency::{
    Claim, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken, Watermark,
};

/// A store to check, and a way to let time pass for it.
pub trait StoreUnderTest: Send + Sync + 'static {
    /// The store; clones share their entries.
    type Store: IdempotencyStore + ObjectClaims + Clone;
    /// The store under test.
    fn store(&self) -> Self::Store;
    /// The lease claims are taken with.
    fn lease(&self) -> Duration;
    /// How long the store keeps done markers.
    fn retention(&self) -> Duration;
    /// Lets `duration` pass, as the store sees time.
    fn pass(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// An event id no other check uses.
pub fn unique(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = std::process::id();
    format!(
        "evt_{label}_{process}_{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn claimed(
    store: &impl IdempotencyStore,
    id: &str,
    handler: &str,
    lease: Duration,
) -> OwnerToken {
    match store.claim(id, handler, lease).await {
        Ok(Claim::Claimed(token)) => token,
        other => panic!("claiming a free ({id}, {handler}) answered {other:?}, not Claimed"),
    }
}

async fn claim(store: &impl IdempotencyStore, id: &str, handler: &str, lease: Duration) -> Claim {
    store
        .claim(id, handler, lease)
        .await
        .unwrap_or_else(|error| panic!("claim ({id}, {handler}) failed: {error}"))
}

/// Claimed, then in progress for everyone else; done after its owner completes it; a done
/// marker is never claimed, renewed or released again.
pub async fn claim_then_complete<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("complete"));
    let token = claimed(&store, &id, "h", lease).await;
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::InProgress);
    // Another handler of the same event is independent.
    claimed(&store, &id, "other", lease).await;
    assert_eq!(store.complete(&id, "h", token).await, Ok(true));
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::AlreadyDone);
    assert_eq!(store.renew(&id, "h", token, lease).await, Ok(false));
    assert_eq!(store.release(&id, "h", token).await, Ok(false));
    assert_eq!(store.complete(&id, "h", token).await, Ok(false));
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::AlreadyDone);
}

/// A released claim is free again, and the next claim has another token.
pub async fn release_frees_the_claim<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("release"));
    let first = claimed(&store, &id, "h", lease).await;
    assert_eq!(store.release(&id, "h", first).await, Ok(true));
    let second = claimed(&store, &id, "h", lease).await;
    assert_ne!(first, second, "two claims got one token");
    assert_eq!(
        store.release(&id, "h", first).await,
        Ok(false),
        "the first owner released the second's claim"
    );
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::InProgress);
}

/// Only the owner's token renews, completes or releases a live claim.
pub async fn only_the_owner_acts<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("owner"));
    let owner = claimed(&store, &id, "h", lease).await;
    let stranger = OwnerToken::new();
    assert_eq!(store.renew(&id, "h", stranger, lease).await, Ok(false));
    assert_eq!(store.complete(&id, "h", stranger).await, Ok(false));
    assert_eq!(store.release(&id, "h", stranger).await, Ok(false));
    assert_eq!(
        claim(&store, &id, "h", lease).await,
        Claim::InProgress,
        "a stranger changed the claim"
    );
    assert_eq!(store.renew(&id, "h", owner, lease).await, Ok(true));
    assert_eq!(store.release(&id, "h", owner).await, Ok(true));
}

/// A lapsed lease can be taken over; the stale owner then changes nothing.
pub async fn lapsed_lease_is_taken_over<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("lapse"));
    let stale = claimed(&store, &id, "h", lease).await;
    s.pass(lease + lease / 2).await;
    // Lapsed and not yet taken over: the stale owner cannot record anything either.
    assert_eq!(store.renew(&id, "h", stale, lease).await, Ok(false));
    assert_eq!(store.complete(&id, "h", stale).await, Ok(false));
    let fresh = claimed(&store, &id, "h", lease).await;
    assert_eq!(
        store.release(&id, "h", stale).await,
        Ok(false),
        "a stale owner deleted the live claim"
    );
    assert_eq!(
        store.complete(&id, "h", stale).await,
        Ok(false),
        "a stale owner completed the live claim"
    );
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::InProgress);
    assert_eq!(store.complete(&id, "h", fresh).await, Ok(true));
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::AlreadyDone);
}

/// Renewing keeps a claim past its first lease.
pub async fn renewal_extends_the_lease<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("renew"));
    let token = claimed(&store, &id, "h", lease).await;
    for _ in 0..3 {
        s.pass(lease * 2 / 3).await;
        assert_eq!(store.renew(&id, "h", token, lease).await, Ok(true));
    }
    // Twice the lease has passed since the claim.
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::InProgress);
    assert_eq!(store.complete(&id, "h", token).await, Ok(true));
}

/// Done markers are kept for the retention, then forgotten.
pub async fn done_markers_expire_after_the_retention<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("retention"));
    let token = claimed(&store, &id, "h", lease).await;
    assert_eq!(store.complete(&id, "h", token).await, Ok(true));
    s.pass(s.retention() / 2).await;
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::AlreadyDone);
    s.pass(s.retention()).await;
    claimed(&store, &id, "h", lease).await;
}

/// Of many concurrent claims of one key exactly one wins; claims of many keys at once each
/// win once.
pub async fn concurrent_claims_have_one_winner<S: StoreUnderTest>(s: &S) {
    let lease = s.lease();
    let ids: Arc<Vec<String>> = Arc::new((0..8).map(|_| unique("race")).collect());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, ids) = (s.store(), Arc::clone(&ids));
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for id in ids.iter() {
                if let Claim::Claimed(_) = claim(&store, id, "h", lease).await {
                    won.push(id.clone());
                }
            }
            won
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("a claiming task"));
    }
    winners.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(winners, expected, "each key must be claimed exactly once");
}

// ---- `latest_only`: object claims and watermarks -------------------------------------------

/// What one delivery of a `latest_only` handler did, following dispatch's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Newer than the newest kept: the handler ran and the watermark advanced.
    Ran,
    /// Not newer than this watermark: acknowledged without running.
    Stale(Watermark),
    /// Another delivery holds the object.
    Busy,
}

async fn object_claimed(
    store: &(impl IdempotencyStore + ObjectClaims),
    handler: &str,
    object: &str,
    lease: Duration,
) -> (OwnerToken, Option<Watermark>) {
    match store.claim_object(object, handler, lease).await {
        Ok(ObjectClaim::Claimed { token, newest }) => (token, newest),
        other => panic!("claiming a free object ({handler}, {object}) answered {other:?}"),
    }
}

async fn newest(
    store: &(impl IdempotencyStore + ObjectClaims),
    handler: &str,
    object: &str,
    lease: Duration,
) -> Option<Watermark> {
    let (token, newest) = object_claimed(store, handler, object, lease).await;
    assert_eq!(store.release_object(object, handler, token).await, Ok(true));
    newest
}

/// One delivery of `event` to a `latest_only` handler, as dispatch does it: claim the object,
/// compare, then advance (when `succeeds`) or release. `during` runs where the handler would.
pub async fn deliver(
    store: &(impl IdempotencyStore + ObjectClaims),
    handler: &str,
    object: &str,
    event: &Watermark,
    lease: Duration,
    succeeds: bool,
    during: impl Future<Output = ()>,
) -> Applied {
    let claim = store
        .claim_object(object, handler, lease)
        .await
        .unwrap_or_else(|error| panic!("object claim ({handler}, {object}) failed: {error}"));
    let (token, newest) = match claim {
        ObjectClaim::InProgress => return Applied::Busy,
        ObjectClaim::Claimed { token, newest } => (token, newest),
    };
    if let Some(newest) = newest.filter(|newest| event <= newest) {
        assert_eq!(store.release_object(object, handler, token).await, Ok(true));
        return Applied::Stale(newest);
    }
    during.await;
    if succeeds {
        assert_eq!(
            store.advance_object(object, handler, token, event).await,
            Ok(true),
            "the owner could not advance"
        );
        Applied::Ran
    } else {
        assert_eq!(store.release_object(object, handler, token).await, Ok(true));
        Applied::Busy
    }
}

async fn deliver_ok(
    store: &(impl IdempotencyStore + ObjectClaims),
    object: &str,
    event: &Watermark,
    lease: Duration,
) -> Applied {
    deliver(store, "h", object, event, lease, true, async {}).await
}

/// Events in order each run; the watermark follows the newest.
pub async fn latest_in_order<S: StoreUnderTest>(s: &S) {
    let (store, lease, object) = (s.store(), s.lease(), unique("cus_order"));
    assert_eq!(newest(&store, "h", &object, lease).await, None);
    let events = [
        Watermark::new(100, "evt_1"),
        Watermark::new(101, "evt_2"),
        Watermark::new(250, "evt_3"),
    ];
    for event in &events {
        assert_eq!(
            deliver_ok(&store, &object, event, lease).await,
            Applied::Ran
        );
        assert_eq!(
            newest(&store, "h", &object, lease).await.as_ref(),
            Some(event)
        );
    }
}

/// Newest first: the older ones are stale, the watermark stays at the newest, and a stale
/// delivery changes nothing.
pub async fn latest_out_of_order<S: StoreUnderTest>(s: &S) {
    let (store, lease, object) = (s.store(), s.lease(), unique("cus_reorder"));
    let (old, middle, new) = (
        Watermark::new(100, "evt_old"),
        Watermark::new(200, "evt_mid"),
        Watermark::new(300, "evt_new"),
    );
    assert_eq!(deliver_ok(&store, &object, &new, lease).await, Applied::Ran);
    assert_eq!(
        deliver_ok(&store, &object, &old, lease).await,
        Applied::Stale(new.clone())
    );
    assert_eq!(
        deliver_ok(&store, &object, &middle, lease).await,
        Applied::Stale(new.clone())
    );
    // A redelivery of the newest itself is not applied twice.
    assert_eq!(
        deliver_ok(&store, &object, &new, lease).await,
        Applied::Stale(new.clone())
    );
    assert_eq!(newest(&store, "h", &object, lease).await, Some(new.clone()));
    // An owner advancing to an older watermark (which dispatch never does) keeps the newer.
    let (token, _) = object_claimed(&store, "h", &object, lease).await;
    assert_eq!(
        store.advance_object(&object, "h", token, &old).await,
        Ok(true)
    );
    assert_eq!(newest(&store, "h", &object, lease).await, Some(new));
}

/// Equal `created`: the event id decides, so both arrival orders end the same way.
pub async fn latest_equal_created<S: StoreUnderTest>(s: &S) {
    let (store, lease) = (s.store(), s.lease());
    let (a, b) = (Watermark::new(500, "evt_a"), Watermark::new(500, "evt_b"));
    let first = unique("cus_tie_ab");
    assert_eq!(deliver_ok(&store, &first, &a, lease).await, Applied::Ran);
    assert_eq!(deliver_ok(&store, &first, &b, lease).await, Applied::Ran);
    let second = unique("cus_tie_ba");
    assert_eq!(deliver_ok(&store, &second, &b, lease).await, Applied::Ran);
    assert_eq!(
        deliver_ok(&store, &second, &a, lease).await,
        Applied::Stale(b.clone())
    );
    assert_eq!(newest(&store, "h", &first, lease).await, Some(b.clone()));
    assert_eq!(newest(&store, "h", &second, lease).await, Some(b));
}

/// A newer event whose handler failed leaves the watermark as it was: an older event (or a
/// retry) still applies, and the newer one applies after it.
pub async fn latest_failed_newer_does_not_block_older<S: StoreUnderTest>(s: &S) {
    let (store, lease, object) = (s.store(), s.lease(), unique("cus_fail"));
    let (old, new) = (
        Watermark::new(100, "evt_old"),
        Watermark::new(200, "evt_new"),
    );
    let failed = deliver(&store, "h", &object, &new, lease, false, async {}).await;
    assert_eq!(failed, Applied::Busy, "a failure releases the claim");
    assert_eq!(newest(&store, "h", &object, lease).await, None);
    assert_eq!(deliver_ok(&store, &object, &old, lease).await, Applied::Ran);
    assert_eq!(deliver_ok(&store, &object, &new, lease).await, Applied::Ran);
    assert_eq!(
        deliver_ok(&store, &object, &old, lease).await,
        Applied::Stale(new.clone())
    );
}

/// Objects, and handlers of one object, keep their own watermarks and claims; an object claim
/// is unrelated to the event claims.
pub async fn latest_objects_interleaved<S: StoreUnderTest>(s: &S) {
    let (store, lease) = (s.store(), s.lease());
    let objects: Vec<String> = (0..3).map(|_| unique("cus_many")).collect();
    // Interleaved: each object sees 300, then 100, then 200.
    for created in [300, 100, 200] {
        for object in &objects {
            let event = Watermark::new(created, format!("evt_{created}_{object}"));
            let applied = deliver_ok(&store, object, &event, lease).await;
            assert_eq!(
                applied == Applied::Ran,
                created == 300,
                "{object} {created}: {applied:?}"
            );
        }
    }
    for object in &objects {
        let kept = newest(&store, "h", object, lease).await;
        assert_eq!(kept.map(|kept| kept.created), Some(300));
        // Another handler of the same object starts from nothing.
        assert_eq!(newest(&store, "other", object, lease).await, None);
    }
    // Held objects do not hold each other, nor another handler, nor an event claim of the
    // same text.
    let (held, _) = object_claimed(&store, "h", &objects[0], lease).await;
    object_claimed(&store, "h", &objects[1], lease).await;
    object_claimed(&store, "other", &objects[0], lease).await;
    claimed(&store, &objects[0], "h", lease).await;
    assert_eq!(
        store.claim_object(&objects[0], "h", lease).await,
        Ok(ObjectClaim::InProgress)
    );
    assert_eq!(store.release_object(&objects[0], "h", held).await, Ok(true));
}

/// Only the owner of a live object claim renews, releases or advances it; a lapsed claim is
/// taken over with the watermark intact, and its stale owner changes nothing.
pub async fn latest_object_claims_have_owners<S: StoreUnderTest>(s: &S) {
    let (store, lease, object) = (s.store(), s.lease(), unique("cus_owner"));
    let kept = Watermark::new(100, "evt_kept");
    assert_eq!(
        deliver_ok(&store, &object, &kept, lease).await,
        Applied::Ran
    );
    let (owner, newest_seen) = object_claimed(&store, "h", &object, lease).await;
    assert_eq!(newest_seen.as_ref(), Some(&kept));
    let stranger = OwnerToken::new();
    let newer = Watermark::new(200, "evt_newer");
    assert_eq!(
        store.renew_object(&object, "h", stranger, lease).await,
        Ok(false)
    );
    assert_eq!(
        store.release_object(&object, "h", stranger).await,
        Ok(false)
    );
    assert_eq!(
        store.advance_object(&object, "h", stranger, &newer).await,
        Ok(false)
    );
    assert_eq!(
        store.claim_object(&object, "h", lease).await,
        Ok(ObjectClaim::InProgress)
    );
    // Renewed past its first lease, it holds.
    for _ in 0..2 {
        s.pass(lease * 2 / 3).await;
        assert_eq!(
            store.renew_object(&object, "h", owner, lease).await,
            Ok(true)
        );
    }
    assert_eq!(
        store.claim_object(&object, "h", lease).await,
        Ok(ObjectClaim::InProgress)
    );
    // Lapsed: taken over, and the watermark is still there.
    s.pass(lease + lease / 2).await;
    assert_eq!(
        store.renew_object(&object, "h", owner, lease).await,
        Ok(false)
    );
    let (fresh, newest_seen) = object_claimed(&store, "h", &object, lease).await;
    assert_eq!(newest_seen.as_ref(), Some(&kept));
    assert_ne!(fresh, owner);
    assert_eq!(
        store.advance_object(&object, "h", owner, &newer).await,
        Ok(false),
        "a stale owner advanced the watermark"
    );
    assert_eq!(store.release_object(&object, "h", owner).await, Ok(false));
    assert_eq!(
        store.advance_object(&object, "h", fresh, &newer).await,
        Ok(true)
    );
    assert_eq!(store.release_object(&object, "h", fresh).await, Ok(false));
    assert_eq!(newest(&store, "h", &object, lease).await, Some(newer));
}

/// Watermarks are kept for the retention after the last success, then forgotten.
pub async fn latest_watermarks_expire_after_the_retention<S: StoreUnderTest>(s: &S) {
    let (store, lease, object) = (s.store(), s.lease(), unique("cus_retention"));
    let new = Watermark::new(200, "evt_new");
    assert_eq!(deliver_ok(&store, &object, &new, lease).await, Applied::Ran);
    s.pass(s.retention() / 2).await;
    assert_eq!(newest(&store, "h", &object, lease).await, Some(new));
    s.pass(s.retention()).await;
    assert_eq!(newest(&store, "h", &object, lease).await, None);
}

/// Concurrent deliveries of one object: one at a time, and the handler only ever applies a
/// state newer than every one applied before, ending at the newest.
pub async fn latest_concurrent_deliveries<S: StoreUnderTest>(s: &S) {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Mutex, PoisonError};
    let lease = s.lease();
    let object = Arc::new(unique("cus_race"));
    let applied: Arc<Mutex<Vec<Watermark>>> = Arc::default();
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Twelve events with shuffled `created` (two share one), each delivered by its own task
    // until it is either applied or found stale.
    let created = [7, 3, 11, 1, 9, 5, 12, 2, 8, 4, 10, 7];
    for (n, created) in created.into_iter().enumerate() {
        let (store, object) = (s.store(), Arc::clone(&object));
        let (applied, inside) = (Arc::clone(&applied), Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            let event = Watermark::new(created, format!("evt_{n:02}"));
            loop {
                let during = async {
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                    applied
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(event.clone());
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                };
                match deliver(&store, "h", &object, &event, lease, true, during).await {
                    Applied::Busy => tokio::time::sleep(Duration::from_millis(2)).await,
                    _ => break,
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a delivering task");
    }
    let applied = applied
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        applied.windows(2).all(|pair| pair[0] < pair[1]),
        "an older state was applied after a newer one: {applied:?}"
    );
    let newest_event = Watermark::new(12, "evt_06");
    assert_eq!(applied.last(), Some(&newest_event));
    let store = s.store();
    assert_eq!(
        newest(&store, "h", &object, lease).await,
        Some(newest_event)
    );
}

/// For a store that offers [`ImmediateClaims`](nextgen_events::idempotency::ImmediateClaims): its immediate answers and its futures'
/// share one state machine, call for call, whichever way each step goes; a lapsed claim is
/// taken over by an immediate claim too.
pub async fn immediate_claims_agree<S: StoreUnderTest>(s: &S) {
    let (store, lease, id) = (s.store(), s.lease(), unique("immediate"));
    let now = store
        .immediate()
        .expect("the store under test offers no immediate claims");
    let Ok(Claim::Claimed(token)) = now.claim_now(&id, "h", lease) else {
        panic!("an immediate claim of a free (id, handler) was not Claimed");
    };
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::InProgress);
    assert_eq!(now.claim_now(&id, "h", lease), Ok(Claim::InProgress));
    assert_eq!(now.complete_now(&id, "h", OwnerToken::new()), Ok(false));
    assert_eq!(now.release_now(&id, "h", OwnerToken::new()), Ok(false));
    assert_eq!(store.renew(&id, "h", token, lease).await, Ok(true));
    assert_eq!(now.complete_now(&id, "h", token), Ok(true));
    assert_eq!(claim(&store, &id, "h", lease).await, Claim::AlreadyDone);
    assert_eq!(now.claim_now(&id, "h", lease), Ok(Claim::AlreadyDone));
    assert_eq!(now.complete_now(&id, "h", token), Ok(false));

    // Claimed through a future, released at once: free again for both ways in.
    let second = claimed(&store, &id, "other", lease).await;
    assert_eq!(now.release_now(&id, "other", second), Ok(true));
    assert_eq!(now.release_now(&id, "other", second), Ok(false));
    let Ok(Claim::Claimed(third)) = now.claim_now(&id, "other", lease) else {
        panic!("a released claim was not free for an immediate claim");
    };
    assert_ne!(second, third, "two claims got one token");

    // A lapsed claim is taken over at once; its stale owner changes nothing.
    s.pass(lease + Duration::from_secs(1)).await;
    let Ok(Claim::Claimed(fourth)) = now.claim_now(&id, "other", lease) else {
        panic!("a lapsed claim was not taken over by an immediate claim");
    };
    assert_eq!(now.complete_now(&id, "other", third), Ok(false));
    assert_eq!(store.complete(&id, "other", fourth).await, Ok(true));
}

/// One `#[tokio::test]` per contract check, for the harness `$make` builds (an expression
/// evaluated in each test).
///
/// ```ignore
/// nextgen_tests::store_contract_tests!(MemoryHarness::new());
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_contract_tests!(@each $make;
                claim_then_complete, release_frees_the_claim, only_the_owner_acts,
                lapsed_lease_is_taken_over, renewal_extends_the_lease,
                done_markers_expire_after_the_retention, concurrent_claims_have_one_winner,
                latest_in_order, latest_out_of_order, latest_equal_created,
                latest_failed_newer_does_not_block_older, latest_objects_interleaved,
                latest_object_claims_have_owners, latest_watermarks_expire_after_the_retention,
                latest_concurrent_deliveries);
        }
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $make;
                $crate::contract::$check(&harness).await;
            }
        )*
    };
}
