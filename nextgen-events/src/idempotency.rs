//! Idempotency: deliveries come at least once, each handler runs once per event id.
//!
//! Before a handler runs for an event id it is *claimed* with a lease; after it succeeds the
//! claim becomes a *done* marker kept for the retention time; after it fails the claim is
//! *released* so a redelivery runs it again. A second delivery of the same id arriving while
//! the first is still running finds the claim and does not run the handler; if the process
//! dies mid-handler, the lease expires and a redelivery runs it, so the event is not lost.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The future an [`IdempotencyStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a claim holds by default: a handler still running after it may be run again.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

/// How long done markers are kept by default: NextGen retries for up to three days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(72 * 60 * 60);

/// How many markers the in-memory store keeps by default before evicting the oldest.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The handler is ours to run now.
    Claimed,
    /// The handler already succeeded for this event id: skip it.
    AlreadyDone,
    /// Another delivery of this event id is running the handler right now.
    InProgress,
}

/// The idempotency store could not be reached or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the idempotency store failed: {0}")]
pub struct StoreError(pub String);

/// Where claims and done markers live, per `(event id, handler)`.
///
/// The in-memory [`MemoryStore`] serves one process; a store shared by several replicas
/// (Redis, a database) implements this trait with atomic operations.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims the handler for this event id for `lease`, unless it is done or claimed.
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim>;

    /// Records that the handler succeeded for this event id (and drops the claim).
    fn complete<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, ()>;

    /// Drops the claim after a failure, so a redelivery runs the handler again.
    fn release<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, ()>;
}

#[derive(Debug, Clone, Copy)]
enum State {
    Claimed { until: Instant },
    Done { until: Instant },
}

impl State {
    fn until(self) -> Instant {
        match self {
            State::Claimed { until } | State::Done { until } => until,
        }
    }
}

#[derive(Default)]
struct Entries {
    // One allocation per key, shared with `order`; lookups build no key (see `with_key`).
    states: HashMap<Arc<str>, (State, u64)>,
    // Insertion order, oldest first, with the sequence number each key had when queued: a
    // key removed and inserted again leaves a stale record here, recognised by its number.
    order: VecDeque<(u64, Arc<str>)>,
    next: u64,
}

/// The default store: in memory, bounded in time (retention) and in size (capacity, oldest
/// evicted first). Clones share the same entries.
///
/// ```
/// use std::time::Duration;
/// use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore};
///
/// # actix_rt::System::new().block_on(async {
/// let store = MemoryStore::new(Duration::from_secs(3600), 10_000);
/// let lease = Duration::from_secs(60);
/// assert_eq!(store.claim("evt_1", "on_charge", lease).await?, Claim::Claimed);
/// assert_eq!(store.claim("evt_1", "on_charge", lease).await?, Claim::InProgress);
/// store.complete("evt_1", "on_charge").await?;
/// assert_eq!(store.claim("evt_1", "on_charge", lease).await?, Claim::AlreadyDone);
/// # Ok::<(), nextgen_events::idempotency::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    entries: Arc<Mutex<Entries>>,
    retention: Duration,
    capacity: usize,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_RETENTION, DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("retention", &self.retention)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryStore {
    /// A store keeping done markers for `retention`, and at most `capacity` entries.
    pub fn new(retention: Duration, capacity: usize) -> Self {
        MemoryStore {
            entries: Arc::default(),
            retention,
            capacity: capacity.max(1),
            clock: Arc::new(Instant::now),
        }
    }

    /// Replaces the clock, e.g. to let leases and retention expire in tests without sleeping.
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many claims and markers are held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().states.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent whatever panicked while holding the lock: every update
        // is a single insert or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim_now(&self, key: &str, lease: Duration) -> Claim {
        let now = (self.clock)();
        let mut entries = self.lock();
        entries.sweep(now, usize::MAX);
        match entries.states.get(key) {
            Some((State::Done { until }, _)) if *until > now => return Claim::AlreadyDone,
            Some((State::Claimed { until }, _)) if *until > now => return Claim::InProgress,
            _ => {}
        }
        entries.sweep(now, self.capacity);
        entries.insert(key, State::Claimed { until: now + lease });
        Claim::Claimed
    }

    fn complete_now(&self, key: &str) {
        let now = (self.clock)();
        let until = now + self.retention;
        let mut entries = self.lock();
        match entries.states.get_mut(key) {
            Some((state, _)) => *state = State::Done { until },
            None => {
                entries.sweep(now, self.capacity);
                entries.insert(key, State::Done { until });
            }
        }
    }

    fn release_now(&self, key: &str) {
        let mut entries = self.lock();
        if matches!(entries.states.get(key), Some((State::Claimed { .. }, _))) {
            entries.states.remove(key);
        }
    }
}

impl Entries {
    fn insert(&mut self, key: &str, state: State) {
        let key: Arc<str> = Arc::from(key);
        let sequence = self.next;
        self.next += 1;
        self.order.push_back((sequence, Arc::clone(&key)));
        self.states.insert(key, (state, sequence));
    }

    /// Drops expired entries from the old end, then the oldest ones until one more fits
    /// within `capacity`.
    fn sweep(&mut self, now: Instant, capacity: usize) {
        while let Some((sequence, key)) = self.order.front() {
            let current = self
                .states
                .get(key.as_ref())
                .filter(|(_, s)| s == sequence)
                .copied();
            let evict = match current {
                None => true, // a stale record of a key since removed or re-inserted
                Some((state, _)) => state.until() <= now || self.states.len() >= capacity,
            };
            if !evict {
                break;
            }
            if current.is_some() {
                self.states.remove(key.as_ref());
            }
            self.order.pop_front();
        }
    }
}

/// Runs `f` with the key of `(event id, handler)`, built in a reused per-thread buffer.
fn with_key<T>(event_id: &str, handler: &str, f: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    KEY.with_borrow_mut(|key| {
        key.clear();
        // A NUL cannot occur in a handler's Rust path, so the pair is unambiguous.
        key.push_str(event_id);
        key.push('\0');
        key.push_str(handler);
        f(key)
    })
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        let claim = with_key(event_id, handler, |key| self.claim_now(key, lease));
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn complete<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, ()> {
        with_key(event_id, handler, |key| self.complete_now(key));
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, ()> {
        with_key(event_id, handler, |key| self.release_now(key));
        Box::pin(std::future::ready(Ok(())))
    }
}
