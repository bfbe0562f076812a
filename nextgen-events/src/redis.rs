//! A Redis-backed [`IdempotencyStore`]: several replicas of a receiver share their claims and
//! done markers, so an event delivered to two of them at once runs each handler once. And
//! [`RedisInbox`], an [`Inbox`](crate::inbox::Inbox) on a Redis stream that replicas share in
//! inbox mode (see [below](#the-inbox)).
//!
//! Enabled by the cargo feature `redis`. Built on the [`redis`](https://docs.rs/redis) crate's
//! async [`ConnectionManager`] (tokio, which actix runs on): one multiplexed connection,
//! re-established in the background after it drops.
//!
//! # What is stored
//!
//! One string key per `(event id, handler)`: `<prefix>:<event id>:<handler path>`, for example
//! `payments:evt_1Oq2nA9Zt8x3Jk2L:my_service::handlers::on_charge`. In the event id, `%` and
//! `:` are written `%25` and `%3A` (NextGen's ids contain neither), so keys never collide.
//!
//! | value | written by | expires after |
//! |---|---|---|
//! | the claim's owner token (32 hex digits) | a claim, when the key is absent | the lease ([`WebhookConfig::lease`](crate::WebhookConfig::lease), 60 s by default, renewed while the handler runs) |
//! | `done` | a handler's success, by the claim's owner | the retention ([`RedisIdempotencyStore::with_retention`], 72 h by default) |
//!
//! For `latest_only` handlers, two more keys per `(handler, object id)`, where the object id is
//! escaped like an event id and the segment `%latest` cannot be an escaped event id (a `%`
//! there is always followed by `25` or `3A`), so these keys never meet the ones above:
//!
//! | key | value | written by | expires after |
//! |---|---|---|---|
//! | `<prefix>:%latest:<handler>:<object id>:claim` | the object claim's owner token | an object claim, when the key is absent | the lease, renewed while the handler runs |
//! | `<prefix>:%latest:<handler>:<object id>:newest` | a hash: `created`, `event` (the newest event handled) | a success, by the object claim's owner, atomically with deleting the claim | the retention, from the last success |
//!
//! A failed handler's claim is deleted, so a redelivery runs it again. Every operation is a
//! Lua script, atomic on the server, and renew, complete and release act only while the key
//! still holds the caller's token: a delivery whose lease lapsed cannot touch the claim of the
//! delivery that took over.
//!
//! # Failures
//!
//! Every Redis error becomes a [`StoreError`] naming the operation, with any password
//! removed. A claim that fails answers the delivery 500 without running a handler, so the
//! sender delivers it again; a success that was recorded as `done` is never run again, whatever
//! happens to the connection. A command that could not reach the server (connection refused
//! or dropped) is sent once more on a fresh connection before it fails.
//!
//! ```no_run
//! use nextgen_events::WebhookConfig;
//! use nextgen_events::redis::RedisIdempotencyStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Inside any tokio runtime: the connection's background task lives on a thread of this
//! // module's own, which a graceful stop never blocks.
//! let store = RedisIdempotencyStore::connect("redis://127.0.0.1:6379/", "payments").await?;
//! let config = WebhookConfig::from_env()?.with_idempotency_store(store);
//! # let _ = config; Ok(()) }
//! ```
//!
//! # The inbox
//!
//! In inbox mode ([`WebhookConfig::with_inbox`](crate::WebhookConfig::with_inbox)) with a
//! [`RedisInbox`], the route answers 200 once the delivery is written to Redis, and the
//! workers of whichever replica takes it handle it; one that a replica that died was handling
//! is taken over by another after an idle timeout. Its keys start with `<prefix>:inbox:`; the
//! handlers' markers are this store's keys, under the same prefix. See [`RedisInbox`] for
//! the keys and how a delivery moves between them.
//!
//! **Persistence.** Redis acknowledges a write once it is in its memory: that a delivery
//! answered 200 survives a crash of Redis or a power cut depends on Redis's persistence. For
//! the promise the SQLite inbox makes, run Redis with `appendonly yes` and
//! `appendfsync always` (every write on disk before Redis answers). With `appendfsync
//! everysec` (Redis's default with AOF) up to about the last second of acknowledged
//! deliveries can be lost, and NextGen does not send them again; RDB snapshots alone, or an
//! asynchronous replica alone, lose more. (The inbox does not send `WAITAOF`: it would block
//! the one multiplexed connection that every other command shares.) Keep
//! `maxmemory-policy noeviction`.
//!
//! ```no_run
//! use nextgen_events::WebhookConfig;
//! use nextgen_events::redis::RedisInbox;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The same prefix on every replica of the endpoint.
//! let inbox = RedisInbox::connect("redis://127.0.0.1:6379/", "payments").await?;
//! let config = WebhookConfig::from_env()?.with_inbox(inbox);
//! # let _ = config; Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, Script};

use crate::idempotency::{
    Claim, DEFAULT_RETENTION, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken, StoreError,
    StoreFuture, Watermark,
};

mod inbox;
mod runtime;

pub use inbox::RedisInbox;
use runtime::on_redis_runtime;

/// The value of a done marker.
pub const DONE: &str = "done";

/// `KEYS[1]`: the key; `ARGV[1]`: the new owner's token; `ARGV[2]`: the lease in ms.
/// Returns 0 when claimed now (or already by this very token: a retried claim), 1 when done,
/// 2 when claimed by another delivery.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local value = redis.call('GET', KEYS[1])
if value == 'done' then return 1 end
if value and value ~= ARGV[1] then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
",
    )
});

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token; `ARGV[2]`: the new lease in ms.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token; `ARGV[2]`: the retention in ms.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
return 1
",
    )
});

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// `KEYS[1]`: the object claim key; `KEYS[2]`: the watermark key; `ARGV[1]`: the new owner's
/// token; `ARGV[2]`: the lease in ms. Returns `{'claimed'}` or `{'claimed', created, event id}`
/// when claimed now (or already by this token), `{'busy'}` when another delivery holds it.
static CLAIM_OBJECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return {'busy'} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local newest = redis.call('HMGET', KEYS[2], 'created', 'event')
if newest[1] and newest[2] then return {'claimed', newest[1], newest[2]} end
return {'claimed'}
",
    )
});

/// `KEYS[1]`: the object claim key; `KEYS[2]`: the watermark key; `ARGV[1]`: the owner's
/// token; `ARGV[2]`: the handled event's `created`; `ARGV[3]`: its id; `ARGV[4]`: the
/// retention in ms. The watermark only moves forward (a defensive check: under its claim,
/// dispatch only advances to a newer watermark than the one the claim answered), in
/// [`Watermark`]'s order: `created` compared as the decimal i64 it is (Lua's numbers are
/// doubles, which do not hold every i64 beyond 2^53), then the id bytewise (Lua's `<` on
/// strings follows the server's locale).
static ADVANCE_OBJECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local function bytes(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  if #a == #b then return 0 end
  return #a < #b and -1 or 1
end
local function integers(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  local order = #a == #b and bytes(a, b) or (#a < #b and -1 or 1)
  return na and -order or order
end
local newest = redis.call('HMGET', KEYS[2], 'created', 'event')
local by_created = newest[1] and integers(newest[1], ARGV[2])
if not newest[2] or not by_created or by_created < 0 or (by_created == 0 and bytes(newest[2], ARGV[3]) < 0) then
  redis.call('HSET', KEYS[2], 'created', ARGV[2], 'event', ARGV[3])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// Claims and done markers in Redis, shared by every replica using the same Redis and prefix.
///
/// Clones share the connection. See the [module documentation](self) for the keys it writes.
#[derive(Clone)]
pub struct RedisIdempotencyStore {
    connection: ConnectionManager,
    prefix: String,
    retention: Duration,
    /// The password of the URL connected to, removed from every error message.
    password: Option<String>,
}

impl fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotencyStore")
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisIdempotencyStore {
    /// A store on an existing connection, writing keys that start with `<key_prefix>:`.
    ///
    /// Replicas of one endpoint use the same prefix; endpoints sharing one Redis use
    /// different ones.
    ///
    /// The connection's driver task stays on the runtime it was made on; reconnections and
    /// every command run on this module's own thread. In inbox mode make it where a stop does
    /// not block (not on the thread that drops the last configuration), or use
    /// [`connect`](Self::connect), which does.
    pub fn new(connection: ConnectionManager, key_prefix: impl Into<String>) -> Self {
        RedisIdempotencyStore {
            connection,
            prefix: key_prefix.into(),
            retention: DEFAULT_RETENTION,
            password: None,
        }
    }

    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where the `redis` crate is built with TLS) and checks that it answers.
    ///
    /// The connection gives up on a command after 500 ms and on a connection attempt after
    /// 1 s, and re-connects with one retry, so a delivery arriving while Redis is down is
    /// answered 500 within about a second instead of waiting. For other settings, build a
    /// [`ConnectionManager`] yourself and use [`new`](Self::new).
    ///
    /// The error never contains the URL's password.
    pub async fn connect(url: &str, key_prefix: impl Into<String>) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let client = ::redis::Client::open(url).map_err(|error| {
            StoreError::Unavailable(scrub(
                format!("invalid Redis URL {shown}: {error}"),
                password_in(url).as_deref(),
            ))
        })?;
        let password = client
            .get_connection_info()
            .redis_settings()
            .password()
            .map(str::to_owned);
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let connection = on_redis_runtime(ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|error| {
                StoreError::Unavailable(scrub(
                    format!("could not connect to Redis at {shown}: {error}"),
                    password.as_deref(),
                ))
            })?;
        let mut store = RedisIdempotencyStore::new(connection, key_prefix);
        store.password = password;
        store
            .run("ping", |mut connection| async move {
                ::redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await?;
        Ok(store)
    }

    /// How long done markers are kept (default 72 h, as long as NextGen retries an event).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `(event_id, handler)`: `<prefix>:<event id>:<handler>`, with `%` and `:` in
    /// the event id written `%25` and `%3A`.
    pub fn key(&self, event_id: &str, handler: &str) -> String {
        key(&self.prefix, event_id, handler)
    }

    /// The underlying connection (cheap to clone), e.g. for health checks.
    pub fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    /// Runs `command` on a clone of the connection; once more if the connection was refused
    /// or dropped (the manager reconnects meanwhile); any error becomes a [`StoreError`].
    /// What it spawns (a reconnection) runs on the Redis thread, never on a caller's runtime.
    async fn run<T, F, Fut>(&self, operation: &str, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_redis(command)
            .await
            .map_err(|error| self.failure(operation, &error))
    }

    /// [`run`](Self::run), keeping Redis's own error for callers that act on its kind.
    async fn run_redis<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        on_redis_runtime(async {
            match command(self.connection.clone()).await {
                Err(error) if worth_retrying(&error) => command(self.connection.clone()).await,
                result => result,
            }
        })
        .await
    }

    /// A Redis error as a [`StoreError`] naming the operation, without the password.
    fn failure(&self, operation: &str, error: &RedisError) -> StoreError {
        StoreError::Unavailable(scrub(
            format!("Redis {operation} failed: {error}"),
            self.password.as_deref(),
        ))
    }
}

fn key(prefix: &str, event_id: &str, handler: &str) -> String {
    format!("{prefix}:{}:{handler}", escape(event_id))
}

/// `%` and `:` written `%25` and `%3A`.
fn escape(id: &str) -> Cow<'_, str> {
    if id.contains([':', '%']) {
        id.replace('%', "%25").replace(':', "%3A").into()
    } else {
        id.into()
    }
}

/// The keys of `(handler, object id)` of a `latest_only` handler: its claim and its watermark.
fn object_keys(prefix: &str, handler: &str, object_id: &str) -> (String, String) {
    let base = format!("{prefix}:%latest:{handler}:{}", escape(object_id));
    (format!("{base}:claim"), format!("{base}:newest"))
}

/// Whether the connection was refused or dropped: worth one more try on a new connection.
///
/// Sending again is safe: every script is idempotent for its token. A claim that did reach
/// Redis before the connection dropped finds its own token and is claimed still; a complete
/// or release sent twice finds `done` or nothing the second time and changes nothing.
fn worth_retrying(error: &RedisError) -> bool {
    error.is_connection_refusal() || error.is_connection_dropped()
}

/// Milliseconds for `PX`, which refuses 0.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl RedisIdempotencyStore {
    /// Runs an ownership script (`RENEW`, `COMPLETE`, `RELEASE`): whether the token owned
    /// the live claim. (A complete or release that went through just before the connection
    /// dropped, and is sent again, answers `false` the second time: dispatch then logs a lost
    /// claim that was in fact recorded.)
    async fn owned(
        &self,
        operation: &str,
        script: &Script,
        key: &str,
        token: OwnerToken,
        millis: Option<u64>,
    ) -> Result<bool, StoreError> {
        let token = token.to_string();
        let answer: i64 = self
            .run(operation, |mut connection| {
                let mut invocation = script.key(key);
                invocation.arg(&token);
                if let Some(millis) = millis {
                    invocation.arg(millis);
                }
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await?;
        Ok(answer == 1)
    }
}

impl IdempotencyStore for RedisIdempotencyStore {
    fn claim<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let key = self.key(event_id, handler);
            let token = OwnerToken::new();
            let text = token.to_string();
            let lease = millis(lease);
            let answer: i64 = self
                .run("claim", |mut connection| {
                    let mut invocation = CLAIM.key(&key);
                    invocation.arg(&text).arg(lease);
                    async move { invocation.invoke_async(&mut connection).await }
                })
                .await?;
            match answer {
                0 => Ok(Claim::Claimed(token)),
                1 => Ok(Claim::AlreadyDone),
                2 => Ok(Claim::InProgress),
                other => Err(StoreError::Unavailable(format!(
                    "Redis claim failed: unexpected answer {other}"
                ))),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(event_id, handler);
            self.owned("renew", &RENEW, &key, token, Some(millis(lease)))
                .await
        })
    }

    fn complete<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(event_id, handler);
            let retention = millis(self.retention);
            self.owned("complete", &COMPLETE, &key, token, Some(retention))
                .await
        })
    }

    fn release<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(event_id, handler);
            self.owned("release", &RELEASE, &key, token, None).await
        })
    }

    fn object_claims(&self) -> Option<&dyn ObjectClaims> {
        Some(self)
    }
}

impl ObjectClaims for RedisIdempotencyStore {
    fn claim_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ObjectClaim> {
        Box::pin(async move {
            let (claim, newest) = object_keys(&self.prefix, handler, object_id);
            let token = OwnerToken::new();
            let text = token.to_string();
            let lease = millis(lease);
            let answer: Vec<String> = self
                .run("object claim", |mut connection| {
                    let mut invocation = CLAIM_OBJECT.key(&claim);
                    invocation.key(&newest).arg(&text).arg(lease);
                    async move { invocation.invoke_async(&mut connection).await }
                })
                .await?;
            let unexpected = || {
                StoreError::Unavailable(format!(
                    "Redis object claim failed: unexpected answer {answer:?}"
                ))
            };
            match answer.as_slice() {
                [busy] if busy == "busy" => Ok(ObjectClaim::InProgress),
                [claimed] if claimed == "claimed" => Ok(ObjectClaim::Claimed {
                    token,
                    newest: None,
                }),
                [claimed, created, event_id] if claimed == "claimed" => {
                    let created = created.parse().map_err(|_| unexpected())?;
                    Ok(ObjectClaim::Claimed {
                        token,
                        newest: Some(Watermark::new(created, event_id.as_str())),
                    })
                }
                _ => Err(unexpected()),
            }
        })
    }
    fn renew_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (claim, _) = object_keys(&self.prefix, handler, object_id);
            self.owned("object renew", &RENEW, &claim, token, Some(millis(lease)))
                .await
        })
    }
    fn release_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (claim, _) = object_keys(&self.prefix, handler, object_id);
            self.owned("object release", &RELEASE, &claim, token, None)
                .await
        })
    }
    fn advance_object<'a>(
        &'a self,
        object_id: &'a str,
        handler: &'a str,
        token: OwnerToken,
        handled: &'a Watermark,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (claim, newest) = object_keys(&self.prefix, handler, object_id);
            let token = token.to_string();
            let retention = millis(self.retention);
            let answer: i64 = self
                .run("object advance", |mut connection| {
                    let mut invocation = ADVANCE_OBJECT.key(&claim);
                    invocation
                        .key(&newest)
                        .arg(&token)
                        .arg(handled.created)
                        .arg(&handled.event_id)
                        .arg(retention);
                    async move { invocation.invoke_async(&mut connection).await }
                })
                .await?;
            Ok(answer == 1)
        })
    }
}

/// `url` with its password (and a bare `user@` credential, which Redis reads as one) replaced
/// by `***`: safe to log.
///
/// ```
/// use nextgen_events::redis::redact_url;
///
/// assert_eq!(redact_url("redis://app:s3cret@cache:6379/0"), "redis://app:***@cache:6379/0");
/// assert_eq!(redact_url("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
/// assert_eq!(redact_url("redis+unix:///run/redis.sock?pass=s3cret"), "redis+unix:///run/redis.sock?pass=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_password_parameter(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

fn is_password_parameter(name: &str) -> bool {
    name.eq_ignore_ascii_case("pass") || name.eq_ignore_ascii_case("password")
}

/// The password a URL carries, before it is parsed (so a URL that fails to parse is scrubbed
/// from the error too).
fn password_in(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then(|| password.to_owned())
}

/// `message` with every occurrence of `password` replaced by `***`.
fn scrub(message: String, password: Option<&str>) -> String {
    match password {
        Some(password) if !password.is_empty() && message.contains(password) => {
            message.replace(password, "***")
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        let cases = [
            (
                "redis://app:s3cret@cache:6379/0",
                "redis://app:***@cache:6379/0",
            ),
            ("redis://:s3cret@cache", "redis://:***@cache"),
            ("rediss://s3cret@cache:6380", "rediss://***@cache:6380"),
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            ("redis://a:b@c@host/", "redis://a:***@host/"),
            (
                "unix:///tmp/r.sock?db=1&password=s3cret",
                "unix:///tmp/r.sock?db=1&password=***",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"), "{url}");
        }
        assert_eq!(
            password_in("redis://app:s3cret@cache/").as_deref(),
            Some("s3cret")
        );
        assert_eq!(password_in("redis://cache/"), None);
        assert_eq!(
            scrub("bad s3cret here".to_owned(), Some("s3cret")),
            "bad *** here"
        );
    }

    #[test]
    fn keys_are_readable_and_never_collide() {
        assert_eq!(
            key("p", "evt_1", "app::on_charge"),
            "p:evt_1:app::on_charge"
        );
        // An id ending in `x:` would otherwise meet a handler path ending in `x::h`.
        assert_ne!(key("p", "evt_1:x:", "m::h"), key("p", "evt_1", "x::m::h"));
        assert_eq!(key("p", "a:b%c", "m::h"), "p:a%3Ab%25c:m::h");
        let (claim, newest) = object_keys("p", "m::h", "cus:1");
        assert_eq!(claim, "p:%latest:m::h:cus%3A1:claim");
        assert_eq!(newest, "p:%latest:m::h:cus%3A1:newest");
        // No event id escapes to `%latest`.
        assert!(!key("p", "%latest", "m::h").starts_with("p:%latest:"));
    }

    #[test]
    fn durations_become_positive_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
