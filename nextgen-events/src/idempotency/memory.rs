//! The in-memory idempotency store: one process, bounded in time and in size.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{
    Claim, DEFAULT_CAPACITY, DEFAULT_RETENTION, IdempotencyStore, ImmediateClaims, ObjectClaim,
    ObjectClaims, OwnerToken, StoreError, StoreFuture, Watermark,
};

#[derive(Debug, Clone)]
enum State {
    Claimed(OwnerToken),
    Done,
    /// An object claim of a `latest_only` handler, with the object's watermark, if any.
    ObjectClaimed(OwnerToken, Option<Box<Newest>>),
    /// An object's watermark, no claim on it.
    Newest(Box<Newest>),
}

/// About a century: how far "forever" is when a lease or retention overflows the clock.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + by`, saturated: a lease or retention too large for the clock (`Duration::MAX`)
/// ends in the far future instead of panicking inside the dispatch task.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(FAR_FUTURE.min(by)))
        .unwrap_or(now)
}

/// A watermark and the end of its retention (boxed: most entries have none).
#[derive(Debug, Clone)]
struct Newest {
    watermark: Watermark,
    until: Instant,
}

#[derive(Debug, Clone)]
struct Entry {
    state: State,
    /// The lease's end for a claim, the retention's end for a done marker or a watermark.
    until: Instant,
}

impl Entry {
    fn is_claim(&self) -> bool {
        matches!(self.state, State::Claimed(_) | State::ObjectClaimed(..))
    }

    /// Whether this is the done marker or watermark that an eviction-order item kept until
    /// `until` refers to (and not a claim or a later marker of the same key).
    fn is_kept(&self, until: Instant) -> bool {
        !self.is_claim() && self.until == until
    }

    /// Whether the entry still holds something at `now`; an object claim whose lease lapsed
    /// becomes its watermark.
    fn settle(&mut self, now: Instant) -> bool {
        if self.until > now {
            return true;
        }
        if let State::ObjectClaimed(_, newest) = &mut self.state
            && let Some(newest) = newest.take().filter(|newest| newest.until > now)
        {
            self.until = newest.until;
            self.state = State::Newest(newest);
            return true;
        }
        false
    }

    /// The object's watermark, while kept.
    fn newest(&self, now: Instant) -> Option<&Newest> {
        match &self.state {
            State::ObjectClaimed(_, Some(newest)) | State::Newest(newest) => {
                Some(&**newest).filter(|newest| newest.until > now)
            }
            _ => None,
        }
    }
}

/// An `(event id, handler)` pair as the store knows it: 128 bits of two independently seeded
/// hashes of the pair.
///
/// Keeping the pair's text would cost an allocation per claim and about three times the
/// memory. Two different pairs share a key only by chance: with 100,000 entries the odds are
/// about 2^-95. The seeds are random per store, and the pairs come from verified deliveries
/// (event ids are NextGen's, handler names ours), so no sender can search for a collision.
type Key = u128;

#[derive(Clone)]
struct Keys {
    high: foldhash::fast::RandomState,
    low: foldhash::fast::RandomState,
}

impl Keys {
    fn new() -> Self {
        Keys {
            high: foldhash::fast::RandomState::default(),
            low: foldhash::fast::RandomState::default(),
        }
    }

    fn key(&self, event_id: &str, handler: &str) -> Key {
        let half = |state: &foldhash::fast::RandomState| {
            let mut hasher = state.build_hasher();
            // The length first, so that the split between the two is unambiguous.
            hasher.write_usize(event_id.len());
            hasher.write(event_id.as_bytes());
            hasher.write(handler.as_bytes());
            hasher.finish()
        };
        (u128::from(half(&self.high)) << 64) | u128::from(half(&self.low))
    }

    /// The key of a `(handler, object id)` of a `latest_only` handler: hashed apart from the
    /// event keys by a marker no event key starts with.
    fn object_key(&self, handler: &str, object_id: &str) -> Key {
        let half = |state: &foldhash::fast::RandomState| {
            let mut hasher = state.build_hasher();
            hasher.write_usize(usize::MAX);
            hasher.write_usize(handler.len());
            hasher.write(handler.as_bytes());
            hasher.write(object_id.as_bytes());
            hasher.finish()
        };
        (u128::from(half(&self.high)) << 64) | u128::from(half(&self.low))
    }
}

/// Keys are uniformly random already: the table uses their low bits as they are.
#[derive(Default)]
struct KeyAsHash(u64);

impl Hasher for KeyAsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed (through `write_u128`); anything else still spreads.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry, BuildHasherDefault<KeyAsHash>>,
    /// Done markers and watermarks in the order they were written, with the end they were
    /// written with: all share the store's retention, so this is the order their retention
    /// ends, and a full store evicts from its front without scanning the table. An item whose
    /// entry has changed since (taken over, advanced, gone) is skipped when it comes up.
    order: VecDeque<(Key, Instant)>,
    /// Entries inserted since the last sweep for lapsed claims, which `order` does not hold.
    inserted_since_sweep: usize,
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
    /// Objects of `latest_only` handlers with a newest watermark within its retention.
    pub watermarks: usize,
    /// How many entries the store holds at most.
    pub capacity: usize,
    /// How many entries the table has room for without growing (its allocation).
    pub table_capacity: usize,
    /// Done markers (and watermarks) evicted before their retention ended because the store
    /// was full, since it was created.
    pub evicted_done_markers: u64,
}

/// The default store: in memory, bounded in time (retention) and in size (capacity).
///
/// When full, it first drops what has expired, then the oldest done markers and watermarks of
/// `latest_only` handlers (counted in [`stats`](Self::stats) and logged with how to size it;
/// an evicted watermark lets an older event of that object run its handler again); it never
/// evicts a live claim, event or object, and
/// a claim that finds it full of live claims fails with [`StoreError::Full`] (answered 503
/// with `Retry-After`). Clones share the same entries.
///
/// Done markers and watermarks are kept in the order they were written (32 bytes each,
/// beside the table's entry), so expired ones leave as new ones come in and a full store
/// evicts the oldest without scanning the table.
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
    keys: Keys,
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
            keys: Keys::new(),
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
        let (mut live_claims, mut done_markers, mut watermarks) = (0, 0, 0);
        for entry in entries.map.values() {
            watermarks += usize::from(entry.newest(now).is_some());
            if entry.until > now {
                match entry.state {
                    State::Claimed(_) | State::ObjectClaimed(..) => live_claims += 1,
                    State::Done => done_markers += 1,
                    State::Newest(_) => {}
                }
            }
        }
        MemoryStoreStats {
            entries: entries.map.len(),
            live_claims,
            done_markers,
            watermarks,
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

    fn claim_key(&self, key: Key, lease: Duration) -> Result<Claim, StoreError> {
        let now = (self.clock)();
        let token = OwnerToken::new();
        let claimed = Entry {
            state: State::Claimed(token),
            until: later(now, lease),
        };
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity && !entries.map.contains_key(&key) {
            entries.make_room(now, self.capacity)?;
        }
        // One lookup: an expired entry is taken over in place, a new one inserted.
        match entries.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut occupied) => {
                let entry = occupied.get_mut();
                if entry.until > now {
                    return Ok(match entry.state {
                        State::Done | State::Newest(_) => Claim::AlreadyDone,
                        State::Claimed(_) | State::ObjectClaimed(..) => Claim::InProgress,
                    });
                }
                *entry = claimed;
            }
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(claimed);
                entries.inserted_since_sweep += 1;
            }
        }
        Ok(Claim::Claimed(token))
    }

    /// Applies `change` to the entry of `key` when it is a live claim that `held` accepts;
    /// `change` says whether the entry stays. Whether it was such a claim.
    fn if_held(
        &self,
        key: Key,
        held: impl FnOnce(&State) -> bool,
        change: impl FnOnce(&mut Entry, Instant) -> bool,
    ) -> bool {
        let now = (self.clock)();
        let mut entries = self.lock();
        let std::collections::hash_map::Entry::Occupied(mut occupied) = entries.map.entry(key)
        else {
            return false;
        };
        let entry = occupied.get_mut();
        if !(held(&entry.state) && entry.until > now) {
            return false;
        }
        if !change(entry, now) {
            occupied.remove();
        } else if !entry.is_claim() {
            // A done marker or a watermark now: it joins the eviction order.
            let until = entry.until;
            entries.kept(key, until, now, self.capacity);
        }
        true
    }

    fn if_owner(
        &self,
        key: Key,
        token: OwnerToken,
        change: impl FnOnce(&mut Entry, Instant) -> bool,
    ) -> bool {
        self.if_held(
            key,
            |state| matches!(state, State::Claimed(owner) if *owner == token),
            change,
        )
    }

    fn claim_object_key(&self, key: Key, lease: Duration) -> Result<ObjectClaim, StoreError> {
        let now = (self.clock)();
        let token = OwnerToken::new();
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity && !entries.map.contains_key(&key) {
            entries.make_room(now, self.capacity)?;
        }
        let claimed = |newest: Option<Box<Newest>>| Entry {
            state: State::ObjectClaimed(token, newest),
            until: later(now, lease),
        };
        let watermark = match entries.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut occupied) => {
                let entry = occupied.get_mut();
                if entry.until > now && entry.is_claim() {
                    return Ok(ObjectClaim::InProgress);
                }
                // A lapsed claim is taken over with its watermark, if still kept.
                let newest = match std::mem::replace(&mut entry.state, State::Done) {
                    State::ObjectClaimed(_, newest) => newest,
                    State::Newest(newest) => Some(newest),
                    State::Claimed(_) | State::Done => None,
                }
                .filter(|newest| newest.until > now);
                let watermark = newest.as_ref().map(|newest| newest.watermark.clone());
                *entry = claimed(newest);
                watermark
            }
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(claimed(None));
                entries.inserted_since_sweep += 1;
                None
            }
        };
        Ok(ObjectClaim::Claimed {
            token,
            newest: watermark,
        })
    }

    fn if_object_owner(
        &self,
        key: Key,
        token: OwnerToken,
        change: impl FnOnce(&mut Entry, Instant) -> bool,
    ) -> bool {
        self.if_held(
            key,
            |state| matches!(state, State::ObjectClaimed(owner, _) if *owner == token),
            change,
        )
    }
}

/// Ends an object claim: the entry becomes its watermark (`handled`, when newer), or goes.
fn end_object_claim(
    entry: &mut Entry,
    now: Instant,
    handled: Option<(&Watermark, Duration)>,
) -> bool {
    let State::ObjectClaimed(_, newest) = &mut entry.state else {
        return false;
    };
    let mut newest = newest.take().filter(|newest| newest.until > now);
    if let Some((handled, retention)) = handled {
        let until = later(now, retention);
        match &mut newest {
            Some(kept) if kept.watermark >= *handled => kept.until = kept.until.max(until),
            _ => {
                newest = Some(Box::new(Newest {
                    watermark: handled.clone(),
                    until,
                }));
            }
        }
    }
    match newest {
        Some(newest) => {
            entry.until = newest.until;
            entry.state = State::Newest(newest);
            true
        }
        None => false,
    }
}

impl Entries {
    /// Notes that the entry of `key` became a done marker or a watermark kept until `until`.
    fn kept(&mut self, key: Key, until: Instant, now: Instant, capacity: usize) {
        self.order.push_back((key, until));
        // Expired markers leave from the front as new ones come in, so `order` holds only
        // markers within their retention, plus the stale items of watermarks advanced since
        // (dropped when they outnumber the table).
        self.drop_expired(now);
        if self.order.len() > 2 * capacity {
            let Entries { map, order, .. } = self;
            order.retain(|(key, until)| map.get(key).is_some_and(|entry| entry.is_kept(*until)));
        }
    }

    /// Removes the entry of an `order` item, when the entry is still what the item noted.
    fn remove_kept(&mut self, key: Key, until: Instant) -> bool {
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(occupied)
                if occupied.get().is_kept(until) =>
            {
                occupied.remove();
                true
            }
            _ => false,
        }
    }

    /// Drops the done markers and watermarks whose retention has ended.
    fn drop_expired(&mut self, now: Instant) {
        while let Some(&(key, until)) = self.order.front()
            && until <= now
        {
            self.order.pop_front();
            self.remove_kept(key, until);
        }
    }

    /// Drops every expired entry, lapsed claims included (`order` holds no claims); a lapsed
    /// object claim leaves its watermark.
    fn sweep(&mut self, now: Instant, capacity: usize) {
        let mut settled = Vec::new();
        self.map.retain(|&key, entry| {
            let was_claim = entry.is_claim();
            let live = entry.settle(now);
            if live && was_claim && !entry.is_claim() {
                settled.push((key, entry.until));
            }
            live
        });
        for (key, until) in settled {
            self.kept(key, until, now, capacity);
        }
        self.inserted_since_sweep = 0;
    }

    /// Evicts up to `batch` of the oldest live done markers and watermarks; how many it did.
    fn evict_oldest(&mut self, batch: usize) -> usize {
        let mut evicted = 0;
        while evicted < batch
            && let Some((key, until)) = self.order.pop_front()
        {
            evicted += usize::from(self.remove_kept(key, until));
        }
        evicted
    }

    /// Makes room for one more entry: drops expired entries, then the oldest done markers
    /// and watermarks (a batch, so a full store does not evict and log on every claim). Live
    /// claims are never evicted.
    fn make_room(&mut self, now: Instant, capacity: usize) -> Result<(), StoreError> {
        self.drop_expired(now);
        // Lapsed claims are found only by a pass over the whole table: made once per half a
        // table of new entries (so about two entries looked at per claim), and always before
        // a claim is refused.
        if self.map.len() >= capacity && self.inserted_since_sweep >= capacity / 2 {
            self.sweep(now, capacity);
        }
        if self.map.len() < capacity {
            return Ok(());
        }
        let batch = (capacity / 32).max(1);
        let mut evicted = self.evict_oldest(batch);
        if evicted == 0 {
            self.sweep(now, capacity);
            if self.map.len() < capacity {
                return Ok(());
            }
            evicted = self.evict_oldest(batch);
        }
        if evicted == 0 {
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
        self.evicted += evicted as u64;
        tracing::warn!(
            evicted,
            total_evicted = self.evicted,
            capacity,
            "the in-memory idempotency store is full: evicted the oldest done markers (and `latest_only` watermarks) before their retention ended, so a redelivery of those events (or an older event of those objects) would run their handlers again; raise its capacity to about the deliveries of 72 h times the handlers per event, or use a shared store"
        );
        Ok(())
    }
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(std::future::ready(self.claim_now(event_id, handler, lease)))
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let renewed = self.if_owner(self.keys.key(event_id, handler), token, |entry, now| {
            entry.until = later(now, lease);
            true
        });
        Box::pin(std::future::ready(Ok(renewed)))
    }

    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(
            self.complete_now(event_id, handler, token),
        ))
    }

    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(
            self.release_now(event_id, handler, token),
        ))
    }

    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        Some(self)
    }

    fn immediate(&self) -> Option<&dyn ImmediateClaims> {
        Some(self)
    }
}

impl ImmediateClaims for MemoryStore {
    fn claim_now(
        &self,
        event_id: &str,
        handler: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.claim_key(self.keys.key(event_id, handler), lease)
    }

    fn complete_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError> {
        let retention = self.retention;
        Ok(
            self.if_owner(self.keys.key(event_id, handler), token, |entry, now| {
                *entry = Entry {
                    state: State::Done,
                    until: later(now, retention),
                };
                true
            }),
        )
    }

    fn release_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError> {
        Ok(self.if_owner(self.keys.key(event_id, handler), token, |_, _| false))
    }
}

impl ObjectClaims for MemoryStore {
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim> {
        let claim = self.claim_object_key(self.keys.object_key(handler, object_id), lease);
        Box::pin(std::future::ready(claim))
    }
    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let key = self.keys.object_key(handler, object_id);
        let renewed = self.if_object_owner(key, token, |entry, now| {
            entry.until = later(now, lease);
            true
        });
        Box::pin(std::future::ready(Ok(renewed)))
    }
    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        let key = self.keys.object_key(handler, object_id);
        let released =
            self.if_object_owner(key, token, |entry, now| end_object_claim(entry, now, None));
        Box::pin(std::future::ready(Ok(released)))
    }
    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool> {
        let key = self.keys.object_key(handler, object_id);
        let retention = self.retention;
        let advanced = self.if_object_owner(key, token, |entry, now| {
            end_object_claim(entry, now, Some((handled, retention)))
        });
        Box::pin(std::future::ready(Ok(advanced)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// A store whose clock moves only when the test moves it.
    fn store_at(retention: Duration, capacity: usize) -> (MemoryStore, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = Arc::clone(&now);
        let store = MemoryStore::new(retention, capacity)
            .with_clock(move || *clock.lock().unwrap_or_else(PoisonError::into_inner));
        (store, now)
    }

    fn advance(now: &Mutex<Instant>, by: Duration) {
        *now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    fn done(store: &MemoryStore, event_id: &str) {
        let lease = Duration::from_secs(60);
        let Some(Ok(Claim::Claimed(token))) = store.claim(event_id, "h", lease).now_or_never()
        else {
            panic!("{event_id} could not be claimed");
        };
        assert_eq!(
            store.complete(event_id, "h", token).now_or_never(),
            Some(Ok(true))
        );
    }

    #[test]
    fn expired_done_markers_leave_as_new_ones_come_in_long_before_the_store_is_full() {
        let (store, now) = store_at(Duration::from_secs(10), 1_000);
        for n in 0..100 {
            done(&store, &format!("evt_{n}"));
            advance(&now, Duration::from_secs(1));
        }
        // Only the last ten seconds' markers are held, and the order holds no more.
        let stats = store.stats();
        assert!(stats.entries <= 11, "{stats:?}");
        assert!(store.lock().order.len() <= 11);
        assert_eq!(stats.evicted_done_markers, 0);
    }

    #[test]
    fn a_watermark_advanced_many_times_keeps_the_eviction_order_bounded() {
        let (store, now) = store_at(Duration::from_secs(3600), 8);
        let lease = Duration::from_secs(60);
        for n in 0..1_000_i64 {
            let Some(Ok(ObjectClaim::Claimed { token, .. })) =
                store.claim_object("cus_1", "h", lease).now_or_never()
            else {
                panic!("claim {n} refused");
            };
            let handled = Watermark::new(n, format!("evt_{n}"));
            assert_eq!(
                store
                    .advance_object("cus_1", "h", token, &handled)
                    .now_or_never(),
                Some(Ok(true))
            );
            advance(&now, Duration::from_millis(10));
        }
        assert_eq!(store.len(), 1);
        assert!(store.lock().order.len() <= 2 * 8 + 1);
    }

    #[test]
    fn a_full_store_drops_lapsed_claims_before_it_evicts_a_live_done_marker() {
        let (store, now) = store_at(Duration::from_secs(3600), 4);
        let lease = Duration::from_secs(60);
        done(&store, "evt_kept");
        for id in ["evt_crashed_1", "evt_crashed_2", "evt_crashed_3"] {
            let claim = store.claim(id, "h", lease).now_or_never();
            assert!(matches!(claim, Some(Ok(Claim::Claimed(_)))));
        }
        advance(&now, 2 * lease);
        done(&store, "evt_new");
        assert_eq!(store.stats().evicted_done_markers, 0);
        assert_eq!(
            store.claim("evt_kept", "h", lease).now_or_never(),
            Some(Ok(Claim::AlreadyDone))
        );
    }

    #[test]
    fn keys_tell_pairs_apart_where_the_texts_run_together() {
        let keys = Keys::new();
        assert_ne!(keys.key("evt_ab", "c"), keys.key("evt_a", "bc"));
        assert_ne!(keys.key("evt_1", "h"), keys.key("evt_1", "g"));
        assert_eq!(keys.key("evt_1", "h"), keys.key("evt_1", "h"));
        // Another store draws other seeds.
        assert_ne!(Keys::new().key("evt_1", "h"), keys.key("evt_1", "h"));
    }
}
