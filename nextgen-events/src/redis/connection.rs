//! The Redis connection the store and the inbox share: opening it, sending a command (once more
//! after a dropped connection), and errors without the URL's password.

use std::time::Duration;

use ::redis::RedisError;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::backend_runtime::on_backend_runtime;
use crate::idempotency::StoreError;

/// One multiplexed connection, and the password to keep out of its errors. Clones share it.
#[derive(Clone)]
pub(crate) struct Connection {
    manager: ConnectionManager,
    /// The password of the URL connected to, removed from every error message.
    password: Option<String>,
}

impl Connection {
    /// A connection made by the caller (whose password its errors cannot know).
    pub(crate) fn new(manager: ConnectionManager) -> Self {
        Connection {
            manager,
            password: None,
        }
    }

    /// Connects to the Redis at `url` and checks that it answers; see
    /// [`RedisIdempotencyStore::connect`](super::RedisIdempotencyStore::connect).
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
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
        let manager = on_backend_runtime(ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|error| {
                StoreError::Unavailable(scrub(
                    format!("could not connect to Redis at {shown}: {error}"),
                    password.as_deref(),
                ))
            })?;
        let connection = Connection { manager, password };
        connection
            .run("ping", |mut connection| async move {
                ::redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await?;
        Ok(connection)
    }

    /// The underlying connection manager (cheap to clone).
    pub(crate) fn manager(&self) -> &ConnectionManager {
        &self.manager
    }

    /// Runs `command` on a clone of the connection; once more if the connection was refused
    /// or dropped (the manager reconnects meanwhile); any error becomes a [`StoreError`].
    /// What it spawns (a reconnection) runs on the Redis thread, never on a caller's runtime.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &str, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_redis(command)
            .await
            .map_err(|error| self.failure(operation, &error))
    }

    /// [`run`](Self::run), keeping Redis's own error for callers that act on its kind.
    pub(crate) async fn run_redis<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        on_backend_runtime(async {
            match command(self.manager.clone()).await {
                Err(error) if worth_retrying(&error) => command(self.manager.clone()).await,
                result => result,
            }
        })
        .await
    }

    /// A Redis error as a [`StoreError`] naming the operation, without the password.
    pub(crate) fn failure(&self, operation: &str, error: &RedisError) -> StoreError {
        StoreError::Unavailable(scrub(
            format!("Redis {operation} failed: {error}"),
            self.password.as_deref(),
        ))
    }
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
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
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
    fn durations_become_positive_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
