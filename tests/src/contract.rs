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

use nextgen_events::idempotency::{Claim, IdempotencyStore, OwnerToken};

/// A store to check, and a way to let time pass for it.
pub trait StoreUnderTest: Send + Sync + 'static {
    /// The store; clones share their entries.
    type Store: IdempotencyStore + Clone;
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
                done_markers_expire_after_the_retention, concurrent_claims_have_one_winner);
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
