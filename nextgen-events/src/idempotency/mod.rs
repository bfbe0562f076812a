//! Idempotency: deliveries come at least once, each handler runs once per event id.
//!
//! Per `(event id, handler)` a store holds a small state machine:
//!
//! ```text
//! absent --claim--> claimed(owner token, lease) --complete--> done (kept for the retention)
//!                          |  ^ renew                 \--release--> absent
//!                          \--lease lapses--> absent (a redelivery may claim it)
//! ```
//!
//! A claim returns an [`OwnerToken`]; [`renew`](IdempotencyStore::renew),
//! [`complete`](IdempotencyStore::complete) and [`release`](IdempotencyStore::release) act only
//! for the owner of the live claim, so a delivery whose lease lapsed can neither delete nor
//! complete the claim of the delivery that took over. Dispatch claims one handler at a time,
//! renews the lease while the handler runs, and records the outcome before the next handler
//! starts (see [`WebhookConfig::lease`](crate::WebhookConfig::lease)).
//!
//! # Newest state per object (`latest_only` handlers)
//!
//! A handler registered with `#[nextgen_event("customer.updated", latest_only)]` only ever
//! applies a state newer than the one it applied last. Per `(handler, data.object.id)` a store
//! also keeps an *object claim* and a [`Watermark`]: the `(created, event id)` of the newest
//! event the handler handled successfully for that object.
//!
//! ```text
//! free(newest) --claim_object--> claimed(owner token, lease, newest) --advance_object--> free(newer)
//!                                     |  ^ renew_object             \--release_object--> free(newest)
//!                                     \--lease lapses--> free(newest)
//! ```
//!
//! Dispatch takes the event's own claim first, as for every handler, then the object claim;
//! under it, it compares the event with the newest watermark. An event that is not newer (by
//! `created`, then by event id, so equal times are decided the same way whatever the arrival
//! order) is acknowledged without running the handler: its done marker is written and the
//! object claim released. A newer one runs the handler; its success advances the watermark and
//! ends the object claim in one atomic step ([`advance_object`](ObjectClaims::advance_object)),
//! then completes the event; a failure releases both, so an older retry can still apply. The
//! object claim carries an [`OwnerToken`] and a renewed lease exactly like the per-event claim,
//! so the deliveries of one object run a `latest_only` handler one at a time.
//!
//! Watermarks are kept for the store's retention after their last advance (like done
//! markers), so an event older than the newest one handled within the last 72 h (by default)
//! is recognised as stale.
//!
//! Every store passes one contract: [`MemoryStore`] (the default, one process),
//! `RedisIdempotencyStore` (replicas, feature `redis`), `SqliteStore` (kept across restarts,
//! feature `sqlite`).

mod memory;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite_tx;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub use memory::{MemoryStore, MemoryStoreStats};

/// The future an [`IdempotencyStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a claim holds by default before it must be renewed; dispatch renews it about every
/// third of it while the handler runs, so only a process that died lets it lapse.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long done markers are kept by default: NextGen retries for up to three days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(72 * 60 * 60);

/// How many entries the in-memory store holds by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Who holds a claim: a random value per claim, checked by every later operation on it.
///
/// Its text form (32 lowercase hex digits) is what stores that keep text (Redis) write.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerToken(u128);

impl OwnerToken {
    /// A token no other claim has: this run's random half ([`run`](Self::run)) and a
    /// per-claim counter, so tokens never repeat in one process and differ between processes.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        OwnerToken((u128::from(Self::this_run()) << 64) | u128::from(count))
    }

    /// The random id of this run of the process, the high half of every token it makes:
    /// recovery tells an earlier run's leftovers from this run's live work by it.
    pub fn this_run() -> u64 {
        static RUN: LazyLock<u64> = LazyLock::new(|| {
            let mut seed = [0; 8];
            // Without an OS source (never seen in practice), the time and the pid still make
            // collisions between processes sharing a store very unlikely.
            if getrandom::fill(&mut seed).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_nanos() as u64);
                seed = (nanos ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
            }
            u64::from_le_bytes(seed)
        });
        *RUN
    }

    /// The run that made this token (see [`this_run`](Self::this_run)).
    pub fn run(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The text every token of this run starts with: the first 16 of its 32 hex digits.
    pub fn this_run_prefix() -> String {
        format!("{:016x}", Self::this_run())
    }

    /// The token as a number, for stores that keep numbers.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The token from [`as_u128`](Self::as_u128).
    pub fn from_u128(value: u128) -> Self {
        OwnerToken(value)
    }
}

impl Default for OwnerToken {
    fn default() -> Self {
        OwnerToken::new()
    }
}

impl fmt::Display for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerToken({self})")
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The handler is ours to run now; later operations on the claim pass this token.
    Claimed(OwnerToken),
    /// The handler already succeeded for this event id: skip it.
    AlreadyDone,
    /// Another delivery holds a live claim on the handler for this event id right now.
    InProgress,
}

/// The newest event a `latest_only` handler handled for one object: compared by `created`,
/// then by event id.
///
/// ```
/// use nextgen_events::idempotency::Watermark;
///
/// let older = Watermark::new(1_700_000_000, "evt_b");
/// let newer = Watermark::new(1_700_000_060, "evt_a");
/// assert!(older < newer);
/// // Same `created`: the event id decides, whatever order they arrived in.
/// assert!(Watermark::new(1_700_000_000, "evt_a") < older);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Watermark {
    /// The event's `created` (seconds since the Unix epoch, as NextGen writes it).
    pub created: i64,
    /// The event's id, which breaks ties between events created in the same second.
    pub event_id: String,
}

impl Watermark {
    /// The watermark of an event.
    pub fn new(created: i64, event_id: impl Into<String>) -> Self {
        Watermark {
            created,
            event_id: event_id.into(),
        }
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (created {})", self.event_id, self.created)
    }
}

/// The answer to an object claim ([`ObjectClaims::claim_object`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectClaim {
    /// The object is ours for this handler now; later operations on the claim pass `token`.
    Claimed {
        /// The claim's owner token.
        token: OwnerToken,
        /// The newest event the handler handled for the object, if any is kept.
        newest: Option<Watermark>,
    },
    /// Another delivery holds a live claim on the object for this handler right now.
    InProgress,
}

/// Why an idempotency store did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or failed; the message says how (never a password).
    #[error("the idempotency store failed: {0}")]
    Unavailable(String),
    /// The store is full of live claims and cannot take another before one ends.
    #[error(
        "the idempotency store is full: all {capacity} entries are live claims; retry in {} s, or raise the store's capacity",
        retry_after.as_secs().max(1)
    )]
    Full {
        /// The store's capacity.
        capacity: usize,
        /// When a claim will have ended at the latest, as far as the store knows.
        retry_after: Duration,
    },
    /// Another process holds what this one needs to itself: the workers' lock of an inbox
    /// whose deliveries one process at a time may handle (a SQLite file). Says what is held,
    /// by whom, where to find the lock, and what to do.
    #[error("{resource} is in use by another process ({holder}; its lock: {lock}): {fix}")]
    Locked {
        /// What is held, e.g. "the workers of the SQLite inbox `webhooks.sqlite3`".
        resource: String,
        /// Who holds it, as the holder wrote it (process id, host, start time).
        holder: String,
        /// Where the lock is, to find the holder: e.g. "the lock file `webhooks.sqlite3.lock`".
        lock: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// A `latest_only` handler ran on a store that keeps no object claims (its
    /// [`IdempotencyStore::object_claims`] is `None`). Mounting the route refuses such a
    /// configuration first ([`ConfigError::NoObjectClaims`](crate::ConfigError::NoObjectClaims)).
    #[error(
        "the idempotency store keeps no object claims, which `latest_only` handlers need: implement `ObjectClaims` for it and return it from `IdempotencyStore::object_claims`, or use a store of nextgen-events (memory, SQLite, Redis)"
    )]
    NoObjectClaims,
    /// A duration setting of a store or an inbox is longer than its backend and the clocks
    /// that add it can hold (Redis refuses such a `PX`, and every done marker would be lost).
    #[error(
        "`{setting}` is {seconds} s, longer than the 10 years the store's backend and clocks can hold: give it a duration of hours to days (see its documentation for the default)"
    )]
    SettingTooLong {
        /// The setter, with its type (`RedisIdempotencyStore::with_retention`, say).
        setting: &'static str,
        /// The duration given, in whole seconds.
        seconds: u64,
    },
    /// A duration setting of a store or an inbox that must not be zero is.
    #[error(
        "`{setting}` is zero, so done markers would be forgotten at once and a redelivery would run its handlers again: give it a positive duration, at least as long as NextGen retries (72 h; see its documentation for the default)"
    )]
    ZeroSetting {
        /// The setter, with its type.
        setting: &'static str,
    },
}

/// Refuses a duration setting its backend cannot hold: zero (unless `zero_allowed`), or longer
/// than [`MAX_DURATION`](crate::limits::MAX_DURATION).
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) fn check_duration(
    setting: &'static str,
    duration: Duration,
    zero_allowed: bool,
) -> Result<(), StoreError> {
    if !zero_allowed && duration.is_zero() {
        return Err(StoreError::ZeroSetting { setting });
    }
    if duration > crate::limits::MAX_DURATION {
        return Err(StoreError::SettingTooLong {
            setting,
            seconds: duration.as_secs(),
        });
    }
    Ok(())
}

/// Where claims and done markers live, per `(event id, handler)`.
///
/// The in-memory [`MemoryStore`] serves one process; a store shared by several replicas
/// (Redis, a database) implements this trait with atomic operations. Every implementation
/// must keep the state machine of the [module docs](self): in particular, `renew`,
/// `complete` and `release` change nothing unless `token` owns the live claim, and answer
/// `false` then.
///
/// Object claims, which `latest_only` handlers need (see [the module
/// docs](self#newest-state-per-object-latest_only-handlers)), are a capability of their own,
/// [`ObjectClaims`], offered through [`object_claims`](Self::object_claims): a store without
/// them serves every other handler, and an endpoint with `latest_only` handlers refuses it
/// when mounted. A store that answers without waiting (in process, like [`MemoryStore`])
/// can also offer [`ImmediateClaims`], through [`immediate`](Self::immediate), which dispatch
/// then uses instead of making a future per call.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims the handler for this event id for `lease`, unless it is done or claimed live.
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim>;

    /// Extends the live claim owned by `token` to `lease` from now. `false` when `token` no
    /// longer owns a live claim (it lapsed, maybe taken over).
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Records that the handler succeeded, turning the claim owned by `token` into a done
    /// marker. `false` (and nothing written) when `token` no longer owns a live claim.
    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool>;

    /// Drops the claim owned by `token` after a failure, so a redelivery runs the handler
    /// again. `false` (and nothing changed) when `token` no longer owns a live claim.
    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool>;

    /// The store's object claims, which `latest_only` handlers need; `None` (the default)
    /// for a store that keeps none. An endpoint with `latest_only` handlers refuses a store
    /// without them when the route is mounted ([`WebhookConfig::check`](crate::WebhookConfig::check)).
    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        None
    }

    /// The store's claims answered at once, without a future; `None` (the default) for a
    /// store that must wait for an answer (over the network, from a file). Dispatch takes
    /// this path when it is there, and the store's futures otherwise.
    fn immediate(&self) -> Option<&dyn ImmediateClaims> {
        None
    }

    /// Refuses settings the store's backend cannot hold, each error naming the setter and
    /// the fix ([`StoreError::SettingTooLong`], [`StoreError::ZeroSetting`]): a retention too
    /// long for Redis's `PX` would make every `complete` fail, and every redelivery run its
    /// handlers again. Mounting the route calls it, before the first delivery. `Ok(())` (the
    /// default) for a store with nothing to check.
    fn check_settings(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The store's done markers written in a PostgreSQL transaction of the app's, for
    /// handlers that take one (`tx: &mut PgConnection`): `Some` for a
    /// [`PgStore`](crate::postgres::PgStore) (and a `PgInbox`'s store), `None` (the default) for
    /// stores whose markers cannot be in that transaction. Mounting refuses such handlers on a
    /// store without it.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    fn pg_transactions(&self) -> Option<&dyn PgTransactions> {
        None
    }

    /// The store's done markers written in one transaction with a handler's writes to the
    /// store's SQLite file, for handlers that take `tx: &mut SqliteTx`: `Some` for a
    /// [`SqliteStore`](crate::sqlite::SqliteStore) (and a `SqliteInbox`'s store), `None` (the
    /// default) otherwise. Mounting refuses such handlers on a store without it.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    fn sqlite_transactions(&self) -> Option<&dyn SqliteTransactions> {
        None
    }
}

/// Done markers written in one transaction with a handler's writes to the store's SQLite
/// file, so that they commit together or not at all: what makes a handler that takes
/// `&mut SqliteTx` run exactly once. A capability of its own, offered through
/// [`IdempotencyStore::sqlite_transactions`].
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub trait SqliteTransactions: Send + Sync {
    /// [`IdempotencyStore::complete`] and `writes`, in one transaction: both only while
    /// `token` holds a live claim; neither when it does not (`false`), or when a write fails
    /// (the write's error).
    fn complete_with<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        writes: sqlite_tx::SqliteTx,
    ) -> StoreFuture<'a, bool>;
}

/// Claims and done markers written in the transaction that carries a handler's own writes,
/// so that the handler's effects and its marker commit together or not at all: what makes a
/// handler that takes `&mut PgConnection` run exactly once. A capability of its own, offered
/// through [`IdempotencyStore::pg_transactions`].
///
/// The claim is taken inside the transaction: its row stays locked until the transaction
/// ends, so no other delivery can take it over while the handler runs (one that tries waits
/// for the end, then finds the marker, or the claim free again after a rollback), and a
/// process that dies mid-handler loses its connection, which rolls the claim back with the
/// writes.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub trait PgTransactions: Send + Sync {
    /// Begins a transaction on the database the markers are in with
    /// [`IdempotencyStore::claim`] taken in it, waiting at most `wait` for another delivery's
    /// transaction that holds the same claim; runs `work` in it; and, when `work` answers
    /// `true`, writes the done marker in it, fenced by the claim's owner, and commits. When
    /// `work` answers `false`, or the marker cannot be written, everything is rolled back,
    /// the claim included. When the claim is not this delivery's, `work` does not run and
    /// nothing is left open.
    fn run_claimed<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        wait: Duration,
        work: ClaimedWork,
    ) -> StoreFuture<'a, ClaimedRun>;
}

/// What [`PgTransactions::run_claimed`] runs in the transaction: the handler, given the
/// transaction's connection. `true` asks for the commit.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type ClaimedWork = Box<
    dyn for<'t> FnOnce(&'t mut sqlx::PgConnection) -> futures_util::future::BoxFuture<'t, bool>
        + Send,
>;

/// How [`PgTransactions::run_claimed`] ended.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimedRun {
    /// The claim was not this delivery's ([`Claim::AlreadyDone`] or [`Claim::InProgress`]):
    /// the work did not run.
    NotClaimed(Claim),
    /// The work asked for the commit: the claim, its writes and the done marker committed.
    Committed,
    /// The work asked for the rollback: nothing it wrote remains, and the claim is free.
    RolledBack,
    /// The work asked for the commit, but it did not happen (the reason): the marker could
    /// not be written, or the commit failed. A failed commit may have gone through after all;
    /// the next delivery then finds the marker.
    NotCommitted(String),
}

/// A shared store is a store: an `Arc<dyn IdempotencyStore>` (from
/// [`backend::open_store`](crate::backend::open_store), say) goes to
/// [`WebhookConfig::with_idempotency_store`](crate::WebhookConfig::with_idempotency_store) as
/// it is.
impl<T: IdempotencyStore + ?Sized> IdempotencyStore for Arc<T> {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        (**self).claim(event_id, handler, lease)
    }
    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).renew(event_id, handler, token, lease)
    }
    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        (**self).complete(event_id, handler, token)
    }
    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        (**self).release(event_id, handler, token)
    }
    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        (**self).object_claims()
    }
    fn immediate(&self) -> Option<&dyn ImmediateClaims> {
        (**self).immediate()
    }
    fn check_settings(&self) -> Result<(), StoreError> {
        (**self).check_settings()
    }
    #[cfg(feature = "postgres")]
    fn pg_transactions(&self) -> Option<&dyn PgTransactions> {
        (**self).pg_transactions()
    }
    #[cfg(feature = "sqlite")]
    fn sqlite_transactions(&self) -> Option<&dyn SqliteTransactions> {
        (**self).sqlite_transactions()
    }
}

/// Event claims answered at once, for a store that never waits (one in process, like
/// [`MemoryStore`]): the same state machine and the same answers as [`IdempotencyStore`]'s
/// methods of the same names, without making (and boxing) a future for each. A capability of
/// its own, offered through [`IdempotencyStore::immediate`]. Renewals, rare (only handlers
/// slower than a third of their lease renew), go through [`IdempotencyStore::renew`].
pub trait ImmediateClaims: Send + Sync {
    /// [`IdempotencyStore::claim`], answered at once.
    fn claim_now(
        &self,
        event_id: &str,
        handler: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// [`IdempotencyStore::complete`], answered at once.
    fn complete_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError>;

    /// [`IdempotencyStore::release`], answered at once.
    fn release_now(
        &self,
        event_id: &str,
        handler: &str,
        token: OwnerToken,
    ) -> Result<bool, StoreError>;
}

/// Object claims and watermarks, per `(object id, handler)`: what `latest_only` handlers need
/// to apply only the newest state of an object, one delivery at a time. A capability of its
/// own: a store offers it through [`IdempotencyStore::object_claims`], and only endpoints with
/// `latest_only` handlers require it. Arguments come in the order of [`IdempotencyStore`]'s:
/// the id, then the handler.
pub trait ObjectClaims: Send + Sync {
    /// Claims `object_id` for the `latest_only` handler `handler` for `lease`, unless another
    /// delivery holds a live claim on it; a claim answers the newest [`Watermark`] kept.
    ///
    /// A lapsed claim is taken over; the watermark survives it.
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim>;

    /// Extends the live object claim owned by `token` to `lease` from now. `false` when
    /// `token` no longer owns a live claim.
    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Ends the object claim owned by `token` without changing the watermark (after a
    /// failure, or a stale event). `false` (and nothing changed) when `token` no longer owns a
    /// live claim.
    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool>;

    /// Records `handled` as the object's newest watermark (unless the one kept is newer
    /// still), kept for the store's retention, and ends the claim owned by `token`: both in
    /// one atomic step. `false` (and nothing written) when `token` no longer owns a live claim.
    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool>;
}
