//! The Redis inbox: deliveries on a Redis stream read by a consumer group, so that several
//! replicas share one inbox. See [`RedisInbox`] for the keys and the scripts.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::ConnectionManager;
use ::redis::{FromRedisValue, RedisError, Script};

use super::RedisIdempotencyStore;
use super::connection::millis;
use crate::idempotency::{IdempotencyStore, OwnerToken, StoreError, StoreFuture, check_duration};
use crate::inbox::{
    Appended, DEFAULT_INBOX_RETENTION, DeadReplay, Finish, Inbox, InboxEntry, InboxOperator,
    InboxRecord, InboxState, InboxStats, ListFilter, RecordedRerun, Recovered, Rerun, Taken,
    UNREADABLE_PER_TAKE, WorkersLock, errors_from_json, errors_to_json, listed_state, log_rerun,
    reruns_from_json,
};

/// A clock in milliseconds since the Unix epoch.
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How many entries one call of a batched script (prune, replay of dead letters) handles.
const BATCH: usize = 500;

/// How many entries a filtered list reads per round trip.
const LIST_PAGE: usize = 200;

/// How long a consumer with nothing pending may stay silent, by default, before pruning removes
/// it from the group (the name of a process that stopped; live ones poll every second or so).
const DEFAULT_CONSUMER_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// The `KEYS` every script gets, in this order, and the first two `ARGV` (the prefix of the
/// per-entry keys, `P:inbox:`, and the group), with helpers. Each script below is this
/// prelude followed by its body.
const PRELUDE: &str = include_str!("lua/inbox_prelude.lua");

/// Builds a script from the prelude and `body`.
fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Appends a delivery unless its id is there. `ARGV[3..8]`: id, type, body, signed_at,
/// received_at_ms, signature header. Returns 1 when added, 0 for a duplicate (nothing written).
static APPEND: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/inbox_append.lua")));

/// Takes one delivery for the consumer `ARGV[4]` with the owner token `ARGV[6]`, at `ARGV[3]`
/// (now, ms): moves due retries back into the stream, then takes over an entry idle in the
/// group for at least `ARGV[5]` ms (its consumer stopped renewing: a dead replica), else reads
/// a new one. Returns nil, or {id, type, body, signed_at, received_at_ms, attempts,
/// first_failed_at_ms or '', signature header or ''}.
static TAKE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/inbox_take.lua")));

/// Renews the lease of `ARGV[3]` (id) for the token `ARGV[4]`: when that token still owns it,
/// re-claims its stream entry for the consumer `ARGV[5]`, which resets the entry's idle time.
/// Returns 1 when renewed, 0 when the token no longer holds it.
static RENEW: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/inbox_renew.lua")));

/// Ends the attempt the token `ARGV[4]` holds on `ARGV[3]` (id): `ARGV[5]` is `handled`,
/// `retry` (due at `ARGV[7]`) or `dead`; `ARGV[6]` is now (ms), `ARGV[8]` the errors (JSON).
/// Acknowledges and deletes the stream entry. Returns 1, or 0 (nothing changed) when the token
/// no longer holds the entry.
static FINISH: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/inbox_finish.lua")));

/// The replay of one entry, shared by `REPLAY` and `REPLAY_DEAD`: back to pending, due now
/// (`ARGV[3]`), attempts reset, unless it is running or unknown. Returns whether it was.
const REPLAY_ONE: &str = include_str!("lua/inbox_replay_one.lua");

/// Replays the ids `ARGV[4..]` at `ARGV[3]` (now); returns those replayed.
static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{REPLAY_ONE}\n{}",
        include_str!("lua/inbox_replay.lua")
    ))
});

/// Replays up to `ARGV[5]` dead letters received at or after `ARGV[4]` (`-inf` for all), at
/// `ARGV[3]` (now), oldest first. Every id read leaves the dead index, so the caller's loop
/// ends: an id whose entry is gone is dropped from every index (unknown), one whose entry is
/// not dead is filed under its own state. Returns `{replayed ids, unknown ids, ids read}`.
static REPLAY_DEAD: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{REPLAY_ONE}\n{}",
        include_str!("lua/inbox_replay_dead.lua")
    ))
});

/// Runs the handler whose done marker is the key `ARGV[5]` once more for `ARGV[4]` (id), at
/// `ARGV[3]` (now): unless the entry is unknown or running, or the marker is not there, deletes
/// the marker, replays the entry and appends `ARGV[6]` (the rerun, as JSON) to its `reruns`,
/// all in this one script. Returns `put_back`, `no_entry`, `running` or `not_done`.
static RERUN: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{REPLAY_ONE}\n{}",
        include_str!("lua/inbox_rerun.lua")
    ))
});

/// Of the keys `KEYS`, those that are done markers (strings holding `done`). Returns them.
static DONE_MARKERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/inbox_done_markers.lua")));

/// How many keys one `SCAN` step of [`RedisInbox::done_handlers`] asks Redis to look at.
const SCAN_COUNT: usize = 1000;

/// Reads up to `ARGV[4]` ids of the finished index finished before `ARGV[3]` (ms); each leaves
/// the index, and is deleted when it is a handled entry. Returns `{pruned, ids read}`.
static PRUNE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/inbox_prune.lua")));

/// Removes from the group the consumers other than `ARGV[3]` with nothing pending and silent
/// for more than `ARGV[4]` ms: the names of processes that stopped. (One with entries pending
/// stays: deleting it would drop them from the group.) Returns how many went.
static FORGET_CONSUMERS: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/inbox_forget_consumers.lua")));

/// How long (ms) a delivery must have been idle in the group, with leases of `lease`, before
/// another consumer takes it over: a lease and a half. The workers renew the delivery and the
/// handler's claim on the same rhythm (every third of the lease), so by then the claim the dead
/// worker held has lapsed too, and the replica taking over runs that handler instead of
/// finding it in progress (which would count as a failed attempt).
fn takeover_idle(lease: Duration) -> u64 {
    let lease = millis(lease);
    lease.saturating_add(lease / 2)
}

/// The keys of one inbox (prefix `P`).
#[derive(Debug)]
struct Keys {
    /// `P:inbox:stream`, then the sorted sets: `P:inbox:retry`, `P:inbox:received`,
    /// `P:inbox:finished`, and `P:inbox:state:<state>` for each [`InboxState`], in the order
    /// of [`InboxState::ALL`]. Passed to every script as `KEYS`.
    fixed: [String; 9],
    /// `P:inbox:`: the entry's keys are this, then `entry:` or `body:`, then the event id.
    inbox_prefix: String,
    /// The consumer group, `P:inbox:workers`.
    group: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let key = |name: &str| format!("{prefix}:inbox:{name}");
        let state = |state: InboxState| key(&format!("state:{}", state.as_str()));
        Keys {
            fixed: [
                key("stream"),
                key("retry"),
                key("received"),
                key("finished"),
                state(InboxState::Pending),
                state(InboxState::Retrying),
                state(InboxState::Running),
                state(InboxState::Handled),
                state(InboxState::Dead),
            ],
            inbox_prefix: key(""),
            group: key("workers"),
        }
    }

    fn stream(&self) -> &str {
        &self.fixed[0]
    }

    fn received(&self) -> &str {
        &self.fixed[2]
    }

    /// The index of the entries in `state`, scored by received time.
    fn state(&self, state: InboxState) -> &str {
        let index = InboxState::ALL
            .iter()
            .position(|listed| *listed == state)
            .unwrap_or(0);
        &self.fixed[4 + index]
    }

    fn entry(&self, event_id: &str) -> String {
        format!("{}entry:{event_id}", self.inbox_prefix)
    }

    fn body(&self, event_id: &str) -> String {
        format!("{}body:{event_id}", self.inbox_prefix)
    }
}

/// An [`Inbox`] in Redis, on a stream read by a consumer group: every replica connected with
/// the same key prefix shares it, each delivery is handled by one of them, and a delivery left
/// pending by a replica that died is taken over by another once it has been idle for a lease
/// and a half.
///
/// Enabled by the cargo feature `redis`. Every change of an entry is one Lua script, atomic on
/// the server, that keeps the entry and all the indexes below consistent.
///
/// ```no_run
/// use nextgen_events::WebhookConfig;
/// use nextgen_events::redis::RedisInbox;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Inside the runtime that serves the app (e.g. in `#[actix_web::main]`).
/// let inbox = RedisInbox::connect("redis://127.0.0.1:6379/", "payments").await?;
/// let config = WebhookConfig::from_env()?.with_inbox(inbox);
/// # let _ = config; Ok(()) }
/// ```
///
/// # Keys
///
/// With the prefix `P` (the same for every replica of one endpoint):
///
/// | key | type | holds |
/// |---|---|---|
/// | `P:inbox:entry:<event id>` | hash | `event_type`, `signed_at`, `received_at_ms`, `state` (`pending`, `running`, `handled`, `dead`), `attempts`, `due_at_ms`, `first_failed_at_ms`, `finished_at_ms`, `last_errors` (JSON), `reruns` (JSON, once a handler was [run again](InboxOperator::rerun)), `owner` (the lease's token, while running), `stream_id` (while on the stream) |
/// | `P:inbox:body:<event id>` | string | the raw body, byte for byte as signed (apart from the hash, so that the hash stays in Redis's compact encoding, which holds values of at most 64 bytes) |
/// | `P:inbox:stream` | stream | one entry (field `id`) per delivery to take: appended on arrival, again when a retry comes due or on a replay; acknowledged and deleted when the attempt ends |
/// | `P:inbox:workers` | consumer group of the stream | one consumer per `RedisInbox` value, shared by the process's workers ([`consumer`](Self::consumer)); its pending entries are the deliveries they are handling. Consumers with nothing pending and silent for a day ([`with_consumer_expiry`](Self::with_consumer_expiry)) are removed by the hourly prune |
/// | `P:inbox:retry` | sorted set | failed deliveries by due time (ms): streams cannot delay an entry |
/// | `P:inbox:received` | sorted set | every entry by received time: lists, newest first |
/// | `P:inbox:finished` | sorted set | handled entries by finish time: pruning |
/// | `P:inbox:state:<state>` | sorted sets | the entries in each listed state (`pending`, `retrying`, `running`, `handled`, `dead`) by received time: counts and lists by state |
///
/// The handlers' claims and done markers are the [`RedisIdempotencyStore`]'s keys
/// `P:<event id>:<handler>` ([`idempotency_store`](Inbox::idempotency_store)), kept as long
/// as handled entries (30 days by default, [`with_retention`](Self::with_retention)).
///
/// The scripts compute the per-entry keys from the prefix, so the inbox suits a single Redis
/// (or a primary with replicas), not Redis Cluster.
///
/// # Taking over from a replica that died
///
/// A worker takes a delivery by reading it for its consumer; it stays pending in the group,
/// and the worker re-claims it about every third of the lease (which resets its idle time)
/// for as long as its handlers run. A replica that dies stops doing so: once the entry has
/// been idle for a lease and a half ([`WebhookConfig::lease`](crate::WebhookConfig::lease),
/// 60 s by default: 90 s; the same lease on every replica), the next replica to look claims it
/// (`XAUTOCLAIM`) with a new owner token. The half lease lets the dead worker's handler claim
/// lapse first, so the handler it was running runs again on the new replica; the handlers
/// that had succeeded stay skipped. The idle time is Redis's own clock, in real time, whatever
/// [`with_clock`](Self::with_clock) says.
///
/// # Durability
///
/// [`append`](Inbox::append) answers once Redis has executed the write, so a 200 means the
/// delivery is in Redis's memory. That it survives a crash of Redis is Redis's persistence:
/// configure `appendonly yes` with `appendfsync always` for the promise the SQLite inbox
/// makes (every acknowledged write is on disk), or `appendfsync everysec` to risk the last
/// second of deliveries on a power cut or a crash of Redis. A replica (`replicaof`) alone is
/// not enough: replication is asynchronous. Keep `maxmemory-policy noeviction`. See the
/// [module docs](super#the-inbox).
#[derive(Clone)]
pub struct RedisInbox {
    store: RedisIdempotencyStore,
    keys: Arc<Keys>,
    consumer: Arc<str>,
    retention: Duration,
    consumer_expiry: Duration,
    clock: Clock,
}

impl fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInbox")
            .field("prefix", &self.store.prefix())
            .field("consumer", &self.consumer)
            .field("retention", &self.retention)
            .field("consumer_expiry", &self.consumer_expiry)
            .finish_non_exhaustive()
    }
}

/// The system clock, in Unix milliseconds.
fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A consumer name no other `RedisInbox` uses: the process id, this run's random id (replicas
/// in containers often share a process id, 1), and a count within the process.
fn consumer_name() -> String {
    let token = OwnerToken::new().as_u128();
    let (run, count) = ((token >> 64) as u64, token as u64);
    format!("{}-{run:016x}-{count}", std::process::id())
}

impl RedisInbox {
    /// Connects to the Redis at `url` as [`RedisIdempotencyStore::connect`] does (same
    /// timeouts, errors without the password) and creates the consumer group if it is not
    /// there. Keys start with `<key_prefix>:inbox:`; the handlers' markers with
    /// `<key_prefix>:`.
    pub async fn connect(url: &str, key_prefix: impl Into<String>) -> Result<Self, StoreError> {
        let inbox = Self::on(RedisIdempotencyStore::connect(url, key_prefix).await?);
        inbox.create_group().await?;
        Ok(inbox)
    }

    /// Connects to an inbox that is there already, as a tool looking into it does: creates
    /// nothing, and answers `None` when Redis has no inbox stream under `key_prefix` (a
    /// mistyped prefix is not an empty inbox).
    pub async fn connect_existing(
        url: &str,
        key_prefix: impl Into<String>,
    ) -> Result<Option<Self>, StoreError> {
        let inbox = Self::on(RedisIdempotencyStore::connect(url, key_prefix).await?);
        let stream = inbox.keys.stream();
        let exists: bool = inbox
            .store
            .run("lookup", |mut connection| async move {
                ::redis::cmd("EXISTS")
                    .arg(stream)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(exists.then_some(inbox))
    }

    /// An inbox on an existing connection; creates the consumer group if it is not there.
    pub async fn new(
        connection: ConnectionManager,
        key_prefix: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let inbox = Self::on(RedisIdempotencyStore::new(connection, key_prefix));
        inbox.create_group().await?;
        Ok(inbox)
    }

    fn on(store: RedisIdempotencyStore) -> Self {
        RedisInbox {
            keys: Arc::new(Keys::new(store.prefix())),
            store: store.with_retention_by(DEFAULT_INBOX_RETENTION, RETENTION_SETTER),
            consumer: consumer_name().into(),
            retention: DEFAULT_INBOX_RETENTION,
            consumer_expiry: DEFAULT_CONSUMER_EXPIRY,
            clock: Arc::new(system_now),
        }
    }

    /// How long handled entries and the handlers' done markers are kept (default 30 days).
    /// A replay within it skips the handlers that had succeeded, and a redelivery of a handled
    /// id is still recognised; it must outlast the retry policy's give-up time (3 days) plus
    /// the time you may take to fix and replay a dead letter.
    ///
    /// Zero, or more than 10 years (which Redis's `PX` cannot take), is refused when the
    /// workers start (mounting the route), naming this setter
    /// ([`check_settings`](Self::check_settings)).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.store = self.store.with_retention_by(retention, RETENTION_SETTER);
        self.retention = retention;
        self
    }

    /// Refuses settings Redis cannot hold, with the setter and the fix named
    /// ([`StoreError::SettingTooLong`], [`StoreError::ZeroSetting`]): a retention of zero or
    /// beyond 10 years, a consumer expiry beyond 10 years. The workers call it before they
    /// start, so a wrong setting stops the app at mount instead of failing every delivery.
    pub fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(RETENTION_SETTER, self.retention, false)?;
        check_duration(
            "RedisInbox::with_consumer_expiry",
            self.consumer_expiry,
            true,
        )
    }

    /// How long a consumer of the group with nothing pending may stay silent before the prune
    /// removes it (default a day). Every replica's `RedisInbox` is a consumer named after its
    /// process, so a fleet that starts and stops processes often leaves names behind; a live
    /// one polls about every second and is never silent that long, and one with deliveries
    /// pending stays, so that they can be taken over. Redis measures the silence, in real
    /// time, whatever [`with_clock`](Self::with_clock) says.
    pub fn with_consumer_expiry(mut self, expiry: Duration) -> Self {
        self.consumer_expiry = expiry;
        self
    }

    /// A clock in Unix milliseconds for the inbox's times (received, due, finished), e.g. to
    /// let retries come due in tests without waiting. Taking over from a dead replica goes by
    /// Redis's idle times, in real time, whatever this clock says.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.store.prefix()
    }

    /// This inbox's consumer name in the group: the process id, a random id of the process's
    /// run, and a count of the `RedisInbox` values the process made.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The underlying connection (cheap to clone), e.g. for health checks.
    pub fn connection(&self) -> &ConnectionManager {
        self.store.connection()
    }

    /// Creates the consumer group, and the stream with it, unless the group is there.
    async fn create_group(&self) -> Result<(), StoreError> {
        let (stream, group) = (self.keys.stream(), &self.keys.group);
        self.store
            .run("consumer group creation", |mut connection| async move {
                let created: Result<(), RedisError> = ::redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut connection)
                    .await;
                match created {
                    Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
                    other => other,
                }
            })
            .await
    }

    /// Runs `script` with the inbox's keys, its entry key prefix and group, then `args`.
    async fn eval<T: FromRedisValue>(
        &self,
        operation: &str,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        self.eval_redis(script, args)
            .await
            .map_err(|error| self.store.shared_connection().failure(operation, &error))
    }

    /// [`eval`](Self::eval), keeping Redis's own error.
    async fn eval_redis<T: FromRedisValue>(
        &self,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<T, RedisError> {
        self.store
            .shared_connection()
            .run_redis(|mut connection| {
                let mut invocation = script.prepare_invoke();
                for key in &self.keys.fixed {
                    invocation.key(key);
                }
                invocation
                    .arg(&self.keys.inbox_prefix)
                    .arg(&self.keys.group);
                for arg in args {
                    invocation.arg(*arg);
                }
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    async fn take_once(
        &self,
        lease: Duration,
        token: OwnerToken,
    ) -> Result<Option<Result<Taken, Unreadable>>, TakeFailed> {
        let now = self.now_ms().to_string();
        let owner = token.to_string();
        let min_idle = takeover_idle(lease).to_string();
        // Every field as Redis holds it, read here rather than by the reply's conversion: one
        // that does not read (changed outside nextgen-events) makes a dead letter naming it,
        // where a failed conversion would leave the entry running, to be taken again forever.
        let row: Option<Vec<Vec<u8>>> = self
            .eval_redis(
                &TAKE,
                &[
                    now.as_bytes(),
                    self.consumer.as_bytes(),
                    min_idle.as_bytes(),
                    owner.as_bytes(),
                ],
            )
            .await
            .map_err(|error| {
                if error.code() == Some("NOGROUP") {
                    TakeFailed::GroupMissing
                } else {
                    TakeFailed::Store(self.store.shared_connection().failure("take", &error))
                }
            })?;
        Ok(row.map(|fields| taken_from(fields, token)))
    }

    /// Turns an entry taken under `token` that cannot be read into a dead letter naming why.
    async fn bury(&self, unreadable: Unreadable, token: OwnerToken) -> Result<(), StoreError> {
        tracing::error!(
            event_id = %crate::text::escaped_bytes(&unreadable.event_id, 200),
            field = unreadable.field,
            problem = %unreadable.problem,
            "an inbox entry cannot be read: kept as a dead letter, never run"
        );
        let errors = errors_to_json(&crate::inbox::unreadable(
            unreadable.field,
            &unreadable.problem,
        ));
        let (token, now) = (token.to_string(), self.now_ms().to_string());
        let _: i64 = self
            .eval(
                "finish",
                &FINISH,
                &[
                    &unreadable.event_id,
                    token.as_bytes(),
                    b"dead",
                    now.as_bytes(),
                    b"",
                    errors.as_bytes(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The handlers with a done marker for `event_id`, sorted. The markers are the store's keys
    /// `P:<event id>:<handler>` with no index of an event's handlers, so this scans the keys
    /// (`SCAN MATCH`, step by step: Redis serves others between the steps); only a rerun that is
    /// refused asks, to name the handlers it would take.
    async fn done_handlers(&self, event_id: &str) -> Result<Vec<String>, StoreError> {
        // The key of an empty handler's name is the part every one of this event's markers
        // starts with.
        let start = self.store.key(event_id, "");
        let pattern = format!("{}*", glob_escaped(&start));
        let mut cursor = 0_u64;
        let mut done = Vec::new();
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .store
                .run("scan", |mut connection| {
                    let pattern = &pattern;
                    async move {
                        ::redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut connection)
                            .await
                    }
                })
                .await?;
            if !keys.is_empty() {
                let markers: Vec<Vec<u8>> = self
                    .store
                    .run("scan", |mut connection| {
                        let mut invocation = DONE_MARKERS.prepare_invoke();
                        for key in &keys {
                            invocation.key(key);
                        }
                        async move { invocation.invoke_async(&mut connection).await }
                    })
                    .await?;
                done.extend(
                    markers
                        .iter()
                        .filter_map(|key| key.strip_prefix(start.as_bytes()))
                        .map(|handler| String::from_utf8_lossy(handler).into_owned()),
                );
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // A key may be returned by more than one step of a scan.
        done.sort();
        done.dedup();
        Ok(done)
    }

    /// Reads the records of `ids`, skipping any gone meanwhile.
    async fn records(
        &self,
        ids: &[String],
        with_body: bool,
    ) -> Result<Vec<InboxRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Vec<Option<Vec<u8>>>> = self
            .store
            .run("read", |mut connection| {
                let mut pipe = ::redis::pipe();
                for id in ids {
                    pipe.cmd("HMGET")
                        .arg(self.keys.entry(id))
                        .arg(&RECORD_FIELDS);
                    if with_body {
                        // In a list of one, so that every answer has the same type.
                        pipe.cmd("MGET").arg(self.keys.body(id));
                    }
                }
                async move { pipe.query_async(&mut connection).await }
            })
            .await?;
        let mut rows = rows.into_iter();
        let mut records = Vec::new();
        for id in ids {
            let Some(row) = rows.next() else { break };
            let body = if with_body {
                rows.next().and_then(|mut body| body.pop().flatten())
            } else {
                None
            };
            if let Some(mut record) = record(id, row) {
                if with_body {
                    record.body =
                        Some(String::from_utf8_lossy(&body.unwrap_or_default()).into_owned());
                }
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// `text` with the characters a `SCAN MATCH` pattern gives a meaning (`*`, `?`, `[`, `]`, `\`)
/// escaped, so that it matches itself only.
fn glob_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A score of the indexes (a time in Unix milliseconds) as Redis writes it; `None` for one that
/// is not a time (a member added outside nextgen-events).
fn score_ms(score: &str) -> Option<u64> {
    score.parse::<u64>().ok().or_else(|| {
        let score: f64 = score.parse().ok()?;
        // Scores are whole milliseconds, exact in a double up to 2^53 (the year 285,000).
        (score.is_finite() && score >= 0.0).then_some(score as u64)
    })
}

/// The hash fields a record is read from, in this order.
const RECORD_FIELDS: [&str; 10] = [
    "event_type",
    "state",
    "attempts",
    "received_at_ms",
    "signed_at",
    "due_at_ms",
    "first_failed_at_ms",
    "finished_at_ms",
    "last_errors",
    "reruns",
];

/// The record of `id` (without its body) from its `HMGET` row; `None` when the entry is gone.
fn record(id: &str, row: Vec<Option<Vec<u8>>>) -> Option<InboxRecord> {
    let text = |index: usize| -> Option<String> {
        row.get(index)
            .cloned()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    };
    let number = |index: usize| -> Option<u64> { text(index).and_then(|text| text.parse().ok()) };
    let attempts = u32::try_from(number(2).unwrap_or(0)).unwrap_or(u32::MAX);
    let state = listed_state(&text(1)?, attempts);
    let waiting = matches!(state, InboxState::Pending | InboxState::Retrying);
    Some(InboxRecord {
        event_id: id.to_owned(),
        event_type: text(0).unwrap_or_default(),
        state,
        received_at_ms: number(3).unwrap_or(0),
        signed_at: number(4).unwrap_or(0),
        attempts,
        due_at_ms: if waiting { number(5) } else { None },
        first_failed_at_ms: number(6),
        finished_at_ms: number(7),
        last_errors: errors_from_json(text(8).as_deref()),
        reruns: reruns_from_json(text(9).as_deref()),
        body: None,
    })
}

/// A taken entry with a field that does not read: its id as stored, the field, and how.
#[derive(Debug, PartialEq, Eq)]
struct Unreadable {
    event_id: Vec<u8>,
    field: &'static str,
    problem: String,
}

/// The take script's answer read field by field: `{id, type, body, signed_at, received_at_ms,
/// attempts, first_failed_at_ms or '', signature or '', attempts as stored when it was not a
/// count or ''}`.
fn taken_from(fields: Vec<Vec<u8>>, token: OwnerToken) -> Result<Taken, Unreadable> {
    let mut fields = fields.into_iter();
    let event_id = fields.next().unwrap_or_default();
    let unreadable = |field: &'static str, problem: String| Unreadable {
        event_id: event_id.clone(),
        field,
        problem,
    };
    let mut next = |field: &'static str| {
        fields
            .next()
            .ok_or_else(|| unreadable(field, "the take script did not return it".to_owned()))
    };
    let (event_type, body, signed_at, received_at_ms, attempts, first_failed, signature, bad) = (
        next("event_type")?,
        next("body")?,
        next("signed_at")?,
        next("received_at_ms")?,
        next("attempts")?,
        next("first_failed_at_ms")?,
        next("signature")?,
        next("attempts")?,
    );
    let text = |field: &'static str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|error| {
            unreadable(
                field,
                format!(
                    "`{}` is not UTF-8",
                    crate::text::escaped_bytes(error.as_bytes(), 40)
                ),
            )
        })
    };
    let number = |field: &'static str, bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                unreadable(
                    field,
                    format!(
                        "`{}` is not a whole number of 0 or more",
                        crate::text::escaped_bytes(bytes, 40)
                    ),
                )
            })
    };
    if !bad.is_empty() {
        return Err(unreadable(
            "attempts",
            format!("`{}` is not a count", crate::text::escaped_bytes(&bad, 40)),
        ));
    }
    let entry = InboxEntry {
        event_id: text("event_id", event_id.clone())?,
        event_type: text("event_type", event_type)?,
        body,
        signed_at: number("signed_at", &signed_at)?,
        received_at_ms: number("received_at_ms", &received_at_ms)?,
        signature: match signature {
            empty if empty.is_empty() => None,
            signature => Some(text("signature", signature)?),
        },
    };
    Ok(Taken {
        entry,
        token,
        attempts: u32::try_from(number("attempts", &attempts)?).unwrap_or(u32::MAX),
        first_failed_at_ms: match first_failed {
            empty if empty.is_empty() => None,
            stored => Some(number("first_failed_at_ms", &stored)?),
        },
    })
}

/// Why a take failed: Redis says the group (or the stream with it) is gone, e.g. after a
/// `FLUSHDB`, which creating it again mends; or anything else.
enum TakeFailed {
    GroupMissing,
    Store(StoreError),
}

impl From<TakeFailed> for StoreError {
    fn from(failed: TakeFailed) -> StoreError {
        match failed {
            TakeFailed::GroupMissing => StoreError::Unavailable(
                "Redis take failed: the inbox's consumer group was gone (NOGROUP) again right after it was created: is something deleting the inbox's stream?".to_owned(),
            ),
            TakeFailed::Store(error) => error,
        }
    }
}

/// The setter of an inbox's retention, as the check names it.
const RETENTION_SETTER: &str = "RedisInbox::with_retention";

impl Inbox for RedisInbox {
    fn operator(&self) -> Option<Arc<dyn InboxOperator>> {
        Some(Arc::new(self.clone()))
    }
    fn lock_workers(&self) -> Result<Option<WorkersLock>, StoreError> {
        // Replicas share a Redis inbox, so there is no lock to take; but the workers are what
        // use the retention and the consumer expiry: refused here, at mount.
        self.check_settings()?;
        Ok(None)
    }

    fn append(&self, entry: InboxEntry) -> StoreFuture<'_, Appended> {
        Box::pin(async move {
            let signed_at = entry.signed_at.to_string();
            let received_at = entry.received_at_ms.to_string();
            let signature = entry.signature.unwrap_or_default();
            let added: i64 = self
                .eval(
                    "append",
                    &APPEND,
                    &[
                        entry.event_id.as_bytes(),
                        entry.event_type.as_bytes(),
                        &entry.body,
                        signed_at.as_bytes(),
                        received_at.as_bytes(),
                        signature.as_bytes(),
                    ],
                )
                .await?;
            Ok(if added == 1 {
                Appended::New
            } else {
                Appended::Duplicate
            })
        })
    }

    fn take(&self, lease: Duration) -> StoreFuture<'_, Option<Taken>> {
        Box::pin(async move {
            for _ in 0..UNREADABLE_PER_TAKE {
                let token = OwnerToken::new();
                let taken = match self.take_once(lease, token).await {
                    Err(TakeFailed::GroupMissing) => {
                        self.create_group().await?;
                        self.take_once(lease, token).await?
                    }
                    taken => taken?,
                };
                match taken {
                    None => return Ok(None),
                    Some(Ok(taken)) => return Ok(Some(taken)),
                    Some(Err(unreadable)) => self.bury(unreadable, token).await?,
                }
            }
            Ok(None)
        })
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        _lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let token = token.to_string();
            let renewed: i64 = self
                .eval(
                    "renew",
                    &RENEW,
                    &[
                        event_id.as_bytes(),
                        token.as_bytes(),
                        self.consumer.as_bytes(),
                    ],
                )
                .await?;
            Ok(renewed == 1)
        })
    }

    fn finish<'a>(
        &'a self,
        event_id: &'a str,
        token: OwnerToken,
        finish: Finish,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let token = token.to_string();
            let now = self.now_ms().to_string();
            let (outcome, at_ms, errors) = match finish {
                Finish::Handled => ("handled", String::new(), String::new()),
                Finish::Retry { at_ms, errors } => {
                    ("retry", at_ms.to_string(), errors_to_json(&errors))
                }
                Finish::Dead { errors } => ("dead", String::new(), errors_to_json(&errors)),
            };
            let finished: i64 = self
                .eval(
                    "finish",
                    &FINISH,
                    &[
                        event_id.as_bytes(),
                        token.as_bytes(),
                        outcome.as_bytes(),
                        now.as_bytes(),
                        at_ms.as_bytes(),
                        errors.as_bytes(),
                    ],
                )
                .await?;
            Ok(finished == 1)
        })
    }

    /// Nothing to do: another replica may be alive and handling what looks running, so a
    /// delivery a dead process held is taken over once idle for a lease, by any replica.
    fn recover(&self) -> StoreFuture<'_, Recovered> {
        Box::pin(async { Ok(Recovered::default()) })
    }

    fn prune(&self, before_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let before = before_ms.to_string();
            let batch = BATCH.to_string();
            let mut pruned = 0;
            loop {
                let (count, read): (u64, usize) = self
                    .eval("prune", &PRUNE, &[before.as_bytes(), batch.as_bytes()])
                    .await?;
                pruned += count;
                // Every id read left the index, pruned or not (an entry deleted by other
                // means): a full batch means there may be more.
                if read < BATCH {
                    break;
                }
            }
            let stale = millis(self.consumer_expiry).to_string();
            let forgotten: u64 = self
                .eval(
                    "prune",
                    &FORGET_CONSUMERS,
                    &[self.consumer.as_bytes(), stale.as_bytes()],
                )
                .await?;
            if forgotten > 0 {
                tracing::info!(
                    forgotten,
                    "removed consumers of stopped processes from the inbox's group"
                );
            }
            Ok(pruned)
        })
    }

    fn retention(&self) -> Duration {
        self.retention
    }

    fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(self.store.clone())
    }

    fn check_settings(&self) -> Result<(), StoreError> {
        RedisInbox::check_settings(self)
    }

    fn now_ms(&self) -> u64 {
        (self.clock)()
    }
}

impl InboxOperator for RedisInbox {
    fn stats(&self) -> StoreFuture<'_, InboxStats> {
        Box::pin(async move {
            type Counts = (u64, u64, u64, u64, u64, Vec<(String, String)>);
            let (pending, retrying, running, handled, dead, oldest): Counts = self
                .store
                .run("stats", |mut connection| {
                    let mut pipe = ::redis::pipe();
                    pipe.atomic();
                    for state in InboxState::ALL {
                        pipe.zcard(self.keys.state(state));
                    }
                    // The pending index holds the entries waiting for their first attempt,
                    // scored by received time: its lowest score is the oldest one's.
                    pipe.cmd("ZRANGE")
                        .arg(self.keys.state(InboxState::Pending))
                        .arg(0)
                        .arg(0)
                        .arg("WITHSCORES");
                    async move { pipe.query_async(&mut connection).await }
                })
                .await?;
            Ok(InboxStats {
                pending,
                retrying,
                running,
                handled,
                dead,
                oldest_pending_at_ms: oldest.first().and_then(|(_, score)| score_ms(score)),
            })
        })
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<InboxRecord>> {
        Box::pin(async move {
            let limit = if filter.limit == 0 { 50 } else { filter.limit };
            let index = filter
                .state
                .map_or(self.keys.received(), |state| self.keys.state(state));
            let page = if filter.event_type.is_some() || filter.handler.is_some() {
                LIST_PAGE
            } else {
                limit
            };
            let mut records = Vec::new();
            let mut seen = std::collections::HashSet::new();
            // Keyset pages on the index, whose order is the list's: by score (received time)
            // descending, and members of one score by id descending. A read starts at the
            // score `top` (inclusive) after the `skip` members of that score read before, which
            // are its first ones; so a read after a cursor starts at the cursor's score, and
            // the members there that do not come after the cursor are skipped one by one.
            let mut top = filter.after.as_ref().map_or_else(
                || "+inf".to_owned(),
                |after| after.received_at_ms.to_string(),
            );
            let mut skip = 0;
            while records.len() < limit {
                let (max, offset) = (&top, skip);
                let read: Vec<(String, String)> = self
                    .store
                    .run("list", |mut connection| async move {
                        ::redis::cmd("ZREVRANGEBYSCORE")
                            .arg(index)
                            .arg(max)
                            .arg("-inf")
                            .arg("WITHSCORES")
                            .arg("LIMIT")
                            .arg(offset)
                            .arg(page)
                            .query_async(&mut connection)
                            .await
                    })
                    .await?;
                let count = read.len();
                let mut ids = Vec::with_capacity(count);
                for (id, score) in read {
                    if score == top {
                        skip += 1;
                    } else {
                        top.clone_from(&score);
                        skip = 1;
                    }
                    let after_cursor = filter.after.as_ref().is_none_or(|after| {
                        score_ms(&score).is_some_and(|at| after.precedes(at, &id))
                    });
                    // A member added meanwhile at the score being read shifts the ones after
                    // it, so one may be read twice: never list one twice.
                    if after_cursor && seen.insert(id.clone()) {
                        ids.push(id);
                    }
                }
                for record in self.records(&ids, false).await? {
                    let wanted = filter.state.is_none_or(|state| record.state == state)
                        && filter
                            .event_type
                            .as_ref()
                            .is_none_or(|event_type| record.event_type == *event_type)
                        && filter.handler.as_ref().is_none_or(|handler| {
                            record
                                .last_errors
                                .iter()
                                .any(|failure| failure.handler == *handler)
                        });
                    if wanted && records.len() < limit {
                        records.push(record);
                    }
                }
                if count < page {
                    break;
                }
            }
            Ok(records)
        })
    }

    fn show<'a>(
        &'a self,
        event_id: &'a str,
        with_body: bool,
    ) -> StoreFuture<'a, Option<InboxRecord>> {
        Box::pin(async move {
            let mut records = self.records(&[event_id.to_owned()], with_body).await?;
            Ok(records.pop())
        })
    }

    fn replay<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let now = self.now_ms().to_string();
            let mut replayed = Vec::new();
            for ids in event_ids.chunks(BATCH) {
                let args: Vec<&[u8]> = std::iter::once(now.as_bytes())
                    .chain(ids.iter().map(|id| id.as_bytes()))
                    .collect();
                let done: Vec<String> = self.eval("replay", &REPLAY, &args).await?;
                replayed.extend(done);
            }
            Ok(replayed)
        })
    }

    fn rerun<'a>(&'a self, event_id: &'a str, handler: &'a str) -> StoreFuture<'a, Rerun> {
        Box::pin(async move {
            let now = self.now_ms();
            let recorded = serde_json::to_string(&RecordedRerun {
                handler: handler.to_owned(),
                at_ms: now,
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("could not write the rerun as JSON: {error}"))
            })?;
            let (now, marker) = (now.to_string(), self.store.key(event_id, handler));
            // The marker is the store's key in the same Redis as the entry, so one script
            // removes it and puts the entry back, atomically.
            let answer: String = self
                .eval(
                    "rerun",
                    &RERUN,
                    &[
                        now.as_bytes(),
                        event_id.as_bytes(),
                        marker.as_bytes(),
                        recorded.as_bytes(),
                    ],
                )
                .await?;
            let rerun = match answer.as_str() {
                "put_back" => Rerun::PutBack,
                "no_entry" => Rerun::NoEntry,
                "running" => Rerun::Running,
                _ => Rerun::NotDone {
                    done: self.done_handlers(event_id).await?,
                },
            };
            log_rerun(event_id, handler, &rerun);
            Ok(rerun)
        })
    }

    fn replay_dead(&self, since_ms: Option<u64>) -> StoreFuture<'_, DeadReplay> {
        Box::pin(async move {
            let now = self.now_ms().to_string();
            let since = since_ms.map_or_else(|| "-inf".to_owned(), |since| since.to_string());
            let batch = BATCH.to_string();
            let mut report = DeadReplay::default();
            loop {
                let (replayed, unknown, read): (Vec<String>, Vec<String>, usize) = self
                    .eval(
                        "replay",
                        &REPLAY_DEAD,
                        &[now.as_bytes(), since.as_bytes(), batch.as_bytes()],
                    )
                    .await?;
                report.replayed.extend(replayed);
                report.unknown.extend(unknown);
                // Every id read left the dead index: a full batch means there may be more.
                if read < BATCH {
                    break;
                }
            }
            if !report.unknown.is_empty() {
                tracing::warn!(
                    unknown = report.unknown.len(),
                    "the dead index listed entries that are gone: removed from it, not replayed"
                );
            }
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_taken_over_after_a_lease_and_a_half() {
        assert_eq!(takeover_idle(Duration::from_secs(60)), 90_000);
        assert_eq!(takeover_idle(Duration::from_millis(500)), 750);
        assert_eq!(takeover_idle(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_consumer_name_carries_the_random_id_of_the_run_not_only_the_pid() {
        let (first, second) = (consumer_name(), consumer_name());
        assert_ne!(first, second);
        let run = format!("{}-{:016x}-", std::process::id(), OwnerToken::this_run());
        assert!(
            first.starts_with(&run),
            "{first} does not name the run {run}"
        );
    }

    #[test]
    fn scores_read_as_whole_milliseconds() {
        assert_eq!(score_ms("1800000000000"), Some(1_800_000_000_000));
        assert_eq!(score_ms("1.8e12"), Some(1_800_000_000_000));
        for not_a_time in ["-1", "inf", "+inf", "nan", "abc", ""] {
            assert_eq!(score_ms(not_a_time), None, "{not_a_time}");
        }
    }

    #[test]
    fn a_scan_pattern_matches_the_text_itself_only() {
        assert_eq!(glob_escaped("p:evt_1:"), "p:evt_1:");
        assert_eq!(glob_escaped(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
    }

    #[test]
    fn keys_share_the_prefix() {
        let keys = Keys::new("payments");
        assert_eq!(keys.stream(), "payments:inbox:stream");
        assert_eq!(keys.group, "payments:inbox:workers");
        assert_eq!(keys.entry("evt_1"), "payments:inbox:entry:evt_1");
        assert_eq!(keys.body("evt_1"), "payments:inbox:body:evt_1");
        assert_eq!(
            keys.state(InboxState::Pending),
            "payments:inbox:state:pending"
        );
        assert_eq!(keys.state(InboxState::Dead), "payments:inbox:state:dead");
        assert_eq!(keys.received(), "payments:inbox:received");
    }

    #[test]
    fn records_read_from_hash_fields() {
        let field = |text: &str| Some(text.as_bytes().to_vec());
        let row = vec![
            field("charge.succeeded"),
            field("pending"),
            field("2"),
            field("1000"),
            field("1"),
            field("5000"),
            field("2000"),
            None,
            field(r#"[{"handler":"h","error":"down"}]"#),
        ];
        let record = record("evt_1", row).expect("a record");
        assert_eq!(record.state, InboxState::Retrying);
        assert_eq!(record.due_at_ms, Some(5000));
        assert_eq!(record.first_failed_at_ms, Some(2000));
        assert_eq!(record.last_errors.len(), 1);
        assert_eq!(record.body, None);
        assert!(super::record("evt_gone", vec![None; 9]).is_none());
    }
}
