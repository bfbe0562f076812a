//! The in-memory idempotency store: one process, bounded in time and in size.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{
    Claim, DEFAULT_CAPACITY, DEFAULT_RETENTION, IdempotencyStore, OwnerToken, StoreError,
    StoreFuture,
};

#[derive(Debug, Clone, Copy)]
enum State {
    Claimed(OwnerToken),
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: State,
    /// The lease's end for a claim, the retention's end for a done marker.
    until: Instant,
}

#[derive(Default)]
struct Entries {
    // The only structure: its size is the number of entries, which never passes the capacity.
    map: HashMap<Box<str>, Entry>,
    evicted: u64,
}

/// What a [`MemoryStore`] holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStoreStats {
    /// Entries held, expired ones included until they are swept.
    pub entries: usize,
    /// Claims whose lease has not ended.
    pub live_claims: usize,
    /// Done markers within their retention.
    pub done_markers: usize,
    /// How many entries the store holds at most.
    pub capacity: usize,
    /// How many entries the table has room for without growing (its allocation).
    pub table_capacity: usize,
    /// Done markers evicted before their retention ended because the store was full, since
    /// it was created.
    pub evicted_done_markers: u64,
}

/// The default store: in memory, bounded in time (retention) and in size (capacity).
///
/// When full, it first drops what has expired, then the oldest done markers (counted in
/// [`stats`](Self::stats) and logged with how to size it); it never evicts a live claim, and
/// a claim that finds it full of live claims fails with [`StoreError::Full`] (answered 503
/// with `Retry-After`). Clones share the same entries.
///
/// ```
/// use std::time::Duration;
/// use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore};
///
/// # actix_rt::System::new().block_on(async {
/// let store = MemoryStore::new(Duration::from_secs(3600), 10_000);
/// let lease = Duration::from_secs(60);
/// let Claim::Claimed(token) = store.claim("evt_1", "on_charge", lease).await? else {
///     unreachable!("a new store has no claim")
/// };
/// assert_eq!(store.claim("evt_1", "on_charge", lease).await?, Claim::InProgress);
/// assert!(store.complete("evt_1", "on_charge", token).await?);
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
        self.lock().map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the store holds, for sizing it and for metrics.
    pub fn stats(&self) -> MemoryStoreStats {
        let now = (self.clock)();
        let entries = self.lock();
        let live = entries.map.values().filter(|entry| entry.until > now);
        let (live_claims, done_markers) =
            live.fold((0, 0), |(claims, done), entry| match entry.state {
                State::Claimed(_) => (claims + 1, done),
                State::Done => (claims, done + 1),
            });
        MemoryStoreStats {
            entries: entries.map.len(),
            live_claims,
            done_markers,
            capacity: self.capacity,
            table_capacity: entries.map.capacity(),
            evicted_done_markers: entries.evicted,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent whatever panicked while holding the lock: every update
        // is a single insert, overwrite or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim_now(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = (self.clock)();
        let token = OwnerToken::new();
        let claimed = Entry {
            state: State::Claimed(token),
            until: now + lease,
        };
        let mut entries = self.lock();
        match entries.map.get_mut(key) {
            Some(entry) if entry.until > now => {
                return Ok(match entry.state {
                    State::Done => Claim::AlreadyDone,
                    State::Claimed(_) => Claim::InProgress,
                });
            }
            // An expired entry is taken over in place: no allocation, no growth.
            Some(entry) => *entry = claimed,
            None => {
                if entries.map.len() >= self.capacity {
                    entries.make_room(now, self.capacity)?;
                }
                entries.map.insert(key.into(), claimed);
            }
        }
        Ok(Claim::Claimed(token))
    }

    /// Applies `change` to the entry of `key` when `token` owns its live claim.
    fn if_owner(
        &self,
        key: &str,
        token: OwnerToken,
        change: impl FnOnce(&mut Entries, Instant),
    ) -> bool {
        let now = (self.clock)();
        let mut entries = self.lock();
        let owned = matches!(
            entries.map.get(key),
            Some(Entry { state: State::Claimed(owner), until }) if *owner == token && *until > now
        );
        if owned {
            change(&mut entries, now);
        }
        owned
    }
}

impl Entries {
    /// Makes room for one more entry: drops expired entries, then the oldest done markers (a
    /// batch, so a full store does not scan on every claim). Live claims are never evicted.
    fn make_room(&mut self, now: Instant, capacity: usize) -> Result<(), StoreError> {
        self.map.retain(|_, entry| entry.until > now);
        if self.map.len() < capacity {
            return Ok(());
        }
        let mut done: Vec<Instant> = self
            .map
            .values()
            .filter(|entry| matches!(entry.state, State::Done))
            .map(|entry| entry.until)
            .collect();
        if done.is_empty() {
            let retry_after = self
                .map
                .values()
                .map(|entry| entry.until.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::ZERO);
            tracing::error!(
                capacity,
                "the in-memory idempotency store is full of live claims: deliveries are answered 503 until one ends; raise its capacity (`MemoryStore::new`)"
            );
            return Err(StoreError::Full {
                capacity,
                retry_after,
            });
        }
        // Done markers all live for the same retention: the oldest end first.
        let batch = (capacity / 32).clamp(1, done.len());
        let (_, &mut threshold, _) = done.select_nth_unstable(batch - 1);
        let before = self.map.len();
        self.map
            .retain(|_, entry| matches!(entry.state, State::Claimed(_)) || entry.until > threshold);
        let evicted = (before - self.map.len()) as u64;
        self.evicted += evicted;
        tracing::warn!(
            evicted,
            total_evicted = self.evicted,
            capacity,
            "the in-memory idempotency store is full: evicted the oldest done markers before their retention ended, so a redelivery of those events would run their handlers again; raise its capacity to about the deliveries of 72 h times the handlers per event, or use a shared store"
        );
        Ok(())
    }
}

/// Runs `f` with the key of `(event id, handler)`, built in a reused per-thread buffer.
fn with_key<T>(event_id: &str, handler: &str, f: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    KEY.with_borrow_mut(|key| {
        key.clear();
        // Handler names hold no NUL (the macro refuses control characters), so the pair is
        // unambiguous.
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
        Box::pin(std::future::ready(claim))
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let renewed = with_key(event_id, handler, |key| {
            self.if_owner(key, token, |entries, now| {
                if let Some(entry) = entries.map.get_mut(key) {
                    entry.until = now + lease;
                }
            })
        });
        Box::pin(std::future::ready(Ok(renewed)))
    }

    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        let retention = self.retention;
        let completed = with_key(event_id, handler, |key| {
            self.if_owner(key, token, |entries, now| {
                if let Some(entry) = entries.map.get_mut(key) {
                    *entry = Entry {
                        state: State::Done,
                        until: now + retention,
                    };
                }
            })
        });
        Box::pin(std::future::ready(Ok(completed)))
    }

    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        let released = with_key(event_id, handler, |key| {
            self.if_owner(key, token, |entries, _| {
                entries.map.remove(key);
            })
        });
        Box::pin(std::future::ready(Ok(released)))
    }
}
