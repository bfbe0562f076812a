//! `RedisIdempotencyStore`: claims and done markers as Redis keys, each operation one Lua script.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Script};

use crate::idempotency::{
    Claim, DEFAULT_RETENTION, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken, StoreError,
    StoreFuture, Watermark, check_duration,
};

use super::connection::{Connection, millis};

/// The value of a done marker.
pub const DONE: &str = "done";

/// `KEYS[1]`: the key; `ARGV[1]`: the new owner's token; `ARGV[2]`: the lease in ms.
/// Returns 0 when claimed now (or already by this very token: a retried claim), 1 when done,
/// 2 when claimed by another delivery.
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/claim.lua")));

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token; `ARGV[2]`: the new lease in ms.
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token; `ARGV[2]`: the retention in ms.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/complete.lua")));

/// `KEYS[1]`: the key; `ARGV[1]`: the owner's token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));

/// `KEYS[1]`: the object claim key; `KEYS[2]`: the watermark key; `ARGV[1]`: the new owner's
/// token; `ARGV[2]`: the lease in ms. Returns `{'claimed'}` or `{'claimed', created, event id}`
/// when claimed now (or already by this token), `{'busy'}` when another delivery holds it.
static CLAIM_OBJECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/claim_object.lua")));

/// `KEYS[1]`: the object claim key; `KEYS[2]`: the watermark key; `ARGV[1]`: the owner's
/// token; `ARGV[2]`: the handled event's `created`; `ARGV[3]`: its id; `ARGV[4]`: the
/// retention in ms. The watermark only moves forward (a defensive check: under its claim,
/// dispatch only advances to a newer watermark than the one the claim answered), in
/// [`Watermark`]'s order: `created` compared as the decimal i64 it is (Lua's numbers are
/// doubles, which do not hold every i64 beyond 2^53), then the id bytewise (Lua's `<` on
/// strings follows the server's locale).
static ADVANCE_OBJECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/advance_object.lua")));

/// Claims and done markers in Redis, shared by every replica using the same Redis and prefix.
///
/// Clones share the connection. See the [module documentation](crate::redis) for the keys it writes.
#[derive(Clone)]
pub struct RedisIdempotencyStore {
    connection: Connection,
    prefix: String,
    retention: Duration,
    /// The setter that gave `retention`, for the check's error: the inbox's own when the
    /// store belongs to a `RedisInbox`.
    retention_setter: &'static str,
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
            connection: Connection::new(connection),
            prefix: key_prefix.into(),
            retention: DEFAULT_RETENTION,
            retention_setter: RETENTION_SETTER,
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
        let connection = Connection::open(url).await?;
        Ok(RedisIdempotencyStore {
            connection,
            prefix: key_prefix.into(),
            retention: DEFAULT_RETENTION,
            retention_setter: RETENTION_SETTER,
        })
    }

    /// How long done markers are kept (default 72 h, as long as NextGen retries an event).
    /// Zero, or more than 10 years (which Redis's `PX` cannot take), is refused when the
    /// route is mounted ([`IdempotencyStore::check_settings`]).
    pub fn with_retention(self, retention: Duration) -> Self {
        self.with_retention_by(retention, RETENTION_SETTER)
    }

    /// `with_retention`, naming `setter` in the check's error.
    pub(crate) fn with_retention_by(mut self, retention: Duration, setter: &'static str) -> Self {
        self.retention = retention;
        self.retention_setter = setter;
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
        self.connection.manager()
    }

    /// Runs `command` on the shared connection (see [`Connection::run`]).
    pub(crate) async fn run<T, F, Fut>(&self, operation: &str, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.connection.run(operation, command).await
    }

    /// The connection the store and the inbox on it share.
    pub(crate) fn shared_connection(&self) -> &Connection {
        &self.connection
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

/// The setter of a store's retention, as the check names it.
const RETENTION_SETTER: &str = "RedisIdempotencyStore::with_retention";

impl IdempotencyStore for RedisIdempotencyStore {
    fn check_settings(&self) -> Result<(), StoreError> {
        check_duration(self.retention_setter, self.retention, false)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
