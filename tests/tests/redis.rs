//! The Redis idempotency store against a real `redis-server`: several replicas sharing one
//! Redis, failures handed from one replica to another, and Redis going away mid-test.
//!
//! Needs `--features redis` and `NEXTGEN_TEST_REDIS_URL` (`.ci/run` starts a server and sets
//! it). Without the variable the tests print that they were skipped, unless `CI` is set: then
//! they fail. The stop/start test also runs a `redis-server` of its own (from `PATH`).
//!
//! ```text
//! NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test -p nextgen-tests --features redis --test redis
//! ```

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::{
    Claim, IdempotencyStore, ObjectClaim, ObjectClaims, OwnerToken, Watermark,
};
use nextgen_events::prelude::*;
use nextgen_events::redis::RedisIdempotencyStore;
use nextgen_tests::contract::StoreUnderTest;
use nextgen_tests::services::{redis_url, unique_prefix};
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// A store on `url` keeping markers for ten minutes: test keys do not linger for days.
async fn store(url: &str, prefix: &str) -> RedisIdempotencyStore {
    RedisIdempotencyStore::connect(url, prefix)
        .await
        .unwrap()
        .with_retention(Duration::from_secs(600))
}

/// Gates a test sets up per event id: the handler says it entered, then waits to be let go.
/// An event id's gate: entered, release.
type Gate = (String, Arc<Notify>, Arc<Notify>);

static GATES: std::sync::Mutex<Vec<Gate>> = std::sync::Mutex::new(Vec::new());

fn gate(id: &str) -> (Arc<Notify>, Arc<Notify>) {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    GATES
        .lock()
        .unwrap()
        .push((id.to_owned(), entered.clone(), release.clone()));
    (entered, release)
}

async fn pass_gate(id: &str) {
    let gate = GATES
        .lock()
        .unwrap()
        .iter()
        .find(|(gated, ..)| gated == id)
        .map(|(_, entered, release)| (entered.clone(), release.clone()));
    if let Some((entered, release)) = gate {
        entered.notify_one();
        release.notified().await;
    }
}

#[nextgen_event("refund.created")]
async fn book_refund(event: Event<Refund>) {
    pass_gate(&event.id).await;
    ran(&event.id, "book_refund");
    // Long enough for the other replica's delivery to arrive while this one runs.
    actix_rt::time::sleep(Duration::from_millis(5)).await;
}

#[nextgen_event("refund.created")]
async fn notify_refund(event: Event<Refund>) {
    ran(&event.id, "notify_refund");
}

#[nextgen_event("refund.failed")]
async fn steady(event: Event<Refund>) {
    ran(&event.id, "steady");
}

/// Fails the first time it sees an event id, succeeds after.
#[nextgen_event("refund.failed")]
async fn flaky_once(event: Event<Refund>) -> Result<(), String> {
    let first = runs(&event.id, "flaky_once") == 0;
    ran(&event.id, "flaky_once");
    if first {
        Err("first attempt fails".to_owned())
    } else {
        Ok(())
    }
}

#[nextgen_event("refund.updated")]
async fn record_update(event: Event<Refund>) {
    ran(&event.id, "record_update");
}

/// A fresh event id, like NextGen's.
fn event_id(test: &str, n: usize) -> String {
    format!("evt_{test}_{}_{n}", std::process::id())
}

#[actix_rt::test]
async fn two_replicas_sharing_redis_run_each_handler_once_per_event() {
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    // Two replicas, each with its own connection to the same Redis.
    let a = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store(&url, &prefix).await),
        |_| {},
    );
    let b = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store(&url, &prefix).await),
        |_| {},
    );
    let (url_a, url_b) = (a.url("/webhook"), b.url("/webhook"));
    // First, certain overlaps: the second replica is asked while the first is inside the
    // handler, and must neither run it nor acknowledge the event.
    for n in 0..20 {
        let id = event_id("replicas", n);
        let (body, signature) = delivery(&id, "refund.created");
        let (first, second) = if n % 2 == 0 {
            (&url_a, &url_b)
        } else {
            (&url_b, &url_a)
        };
        let (entered, release) = gate(&id);
        let running = actix_rt::spawn({
            let (url, body, signature) = (first.clone(), body.clone(), signature.clone());
            async move { post(&url, body, Some(&signature)).await }
        });
        entered.notified().await;
        let busy = post(second, body.clone(), Some(&signature)).await;
        assert_eq!(
            (busy.status, busy.code()),
            (409, "event_in_progress"),
            "{id}: {:?}",
            busy.body
        );
        release.notify_one();
        let answer = running.await.unwrap();
        assert_eq!(answer.status, 200, "{id}: {:?}", answer.body);
        assert_eq!(runs(&id, "book_refund"), 1, "{id}");
        assert_eq!(runs(&id, "notify_refund"), 1, "{id}");
    }
    // Then 80 more, sent to both at once with no gate: whatever the interleaving, each
    // handler runs once per event.
    for n in 20..100 {
        let id = event_id("replicas", n);
        let (body, signature) = delivery(&id, "refund.created");
        let (first, second) = tokio::join!(
            post(&url_a, body.clone(), Some(&signature)),
            post(&url_b, body.clone(), Some(&signature))
        );
        for answer in [&first, &second] {
            assert!(
                answer.status == 200
                    || (answer.status == 409 && answer.code() == "event_in_progress"),
                "{id}: {} {:?}",
                answer.status,
                answer.body
            );
        }
        assert_eq!(runs(&id, "book_refund"), 1, "{id}");
        assert_eq!(runs(&id, "notify_refund"), 1, "{id}");
    }
    // Redelivered later to either replica: acknowledged, nothing runs again.
    for n in 0..100 {
        let id = event_id("replicas", n);
        let (body, signature) = delivery(&id, "refund.created");
        let url = if n % 2 == 0 { &url_a } else { &url_b };
        let answer = post(url, body, Some(&signature)).await;
        assert_eq!(answer.status, 200, "{id}: {:?}", answer.body);
        assert_eq!(runs(&id, "book_refund"), 1, "{id}");
        assert_eq!(runs(&id, "notify_refund"), 1, "{id}");
    }
}

#[actix_rt::test]
async fn a_handler_that_failed_on_one_replica_succeeds_on_redelivery_to_another() {
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    let prefix = unique_prefix("handover");
    let a = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store(&url, &prefix).await),
        |_| {},
    );
    let b = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store(&url, &prefix).await),
        |_| {},
    );
    let id = event_id("handover", 0);
    let (body, signature) = delivery(&id, "refund.failed");

    let first = post(&a.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(first.code(), "handler_failed");

    let second = post(&b.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(runs(&id, "flaky_once"), 2);
    assert_eq!(
        runs(&id, "steady"),
        1,
        "the handler that succeeded on A did not run on B"
    );

    let third = post(&a.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    assert_eq!(runs(&id, "flaky_once"), 2);
    assert_eq!(runs(&id, "steady"), 1);
}

/// The Redis store under the shared contract: real leases (Redis expires the keys), so time
/// passes by waiting. They are seconds long, not milliseconds: a check holds a claim across
/// several round trips and renews it a third of a lease before it lapses, which a loaded
/// machine must manage within the lease. The retention outlasts the longest run of leases a
/// check waits out after a success (about three). The checks run at once, so the suite waits
/// about one retention and a half.
struct RedisHarness {
    store: RedisIdempotencyStore,
}

impl RedisHarness {
    const LEASE: Duration = Duration::from_secs(2);
    const RETENTION: Duration = Duration::from_secs(8);

    async fn connect() -> Option<Self> {
        let url = redis_url("the Redis store")?;
        let store = RedisIdempotencyStore::connect(&url, unique_prefix("contract"))
            .await
            .unwrap()
            .with_retention(Self::RETENTION);
        Some(RedisHarness { store })
    }
}

impl StoreUnderTest for RedisHarness {
    type Store = RedisIdempotencyStore;
    fn store(&self) -> RedisIdempotencyStore {
        self.store.clone()
    }
    fn lease(&self) -> Duration {
        Self::LEASE
    }
    fn retention(&self) -> Duration {
        Self::RETENTION
    }
    async fn pass(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

nextgen_tests::store_contract_tests!(match RedisHarness::connect().await {
    Some(harness) => harness,
    None => return,
});

#[actix_rt::test]
async fn keys_and_values_are_the_documented_ones() {
    // What an operator finds in Redis: `<prefix>:<event id>:<handler>` holding the claim's
    // owner token, then `done`; the store's Debug names its prefix and retention.
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    let prefix = unique_prefix("keys");
    let store = store(&url, &prefix).await;
    assert_eq!(store.prefix(), prefix);
    let (id, handler) = ("evt_keys:1%", "app::on_charge");
    let key = store.key(id, handler);
    assert_eq!(key, format!("{prefix}:evt_keys%3A1%25:{handler}"));

    let mut connection = store.connection().clone();
    let Claim::Claimed(token) = store
        .claim(id, handler, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("a fresh key was not claimed")
    };
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value, Some(token.to_string()));
    assert!(store.complete(id, handler, token).await.unwrap());
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some(nextgen_events::redis::DONE));

    let debug = format!("{store:?}");
    for shown in ["RedisIdempotencyStore", prefix.as_str(), "600s"] {
        assert!(debug.contains(shown), "{shown:?} missing from {debug}");
    }
}

#[actix_rt::test]
async fn latest_only_keys_are_the_documented_ones() {
    // `<prefix>:%latest:<handler>:<object id>:claim` holds the object claim's token; a
    // success deletes it and writes the `:newest` hash, which expires after the retention.
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    let prefix = unique_prefix("latest-keys");
    let store = store(&url, &prefix).await;
    let mut connection = store.connection().clone();
    let (handler, object) = ("crm.sync_customer", "cus:1");
    let base = format!("{prefix}:%latest:{handler}:cus%3A1");
    let ObjectClaim::Claimed { token, newest } = store
        .claim_object(object, handler, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("a fresh object was not claimed")
    };
    assert_eq!(newest, None);
    let claim: Option<String> = redis::cmd("GET")
        .arg(format!("{base}:claim"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(claim, Some(token.to_string()));
    let handled = Watermark::new(1_700_000_200, "evt_2");
    assert!(
        store
            .advance_object(object, handler, token, &handled)
            .await
            .unwrap()
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{base}:claim"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!exists, "the claim outlived the advance");
    let fields: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(format!("{base}:newest"))
        .arg("created")
        .arg("event")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        fields,
        [Some("1700000200".to_owned()), Some("evt_2".to_owned())]
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{base}:newest"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0, "the watermark does not expire: {ttl}");
}

#[actix_rt::test]
async fn errors_name_the_operation_and_never_the_password() {
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    // A port nothing listens on.
    let port = free_port();
    let error = RedisIdempotencyStore::connect(
        &format!("redis://app:hunter2@127.0.0.1:{port}/"),
        "nextgen-test:errors",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("could not connect"), "{error}");
    assert!(error.contains("app:***@127.0.0.1"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");

    // The shared server has no password: AUTH fails, and says so without repeating it.
    let with_password = url.replacen("redis://", "redis://app:hunter2@", 1);
    let error = RedisIdempotencyStore::connect(&with_password, "nextgen-test:errors")
        .await
        .unwrap_err()
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");

    let error = RedisIdempotencyStore::connect("http://app:hunter2@example", "p")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid Redis URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");

    // An empty password has nothing to hide: the message stays as it is.
    let error = RedisIdempotencyStore::connect("redis+unix:///nonexistent/nextgen.sock?pass=", "p")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "the idempotency store failed: could not connect to Redis at redis+unix:///nonexistent/nextgen.sock?pass=***: "
        ),
        "{error}"
    );
}

/// A loopback port free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, without persistence, that it can stop and start again
/// on the same port. Killed when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
    /// `LC_ALL` for the server, when set: Lua's `<` on strings follows its collation.
    locale: Option<&'static str>,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        OwnRedis::start_in(None).await
    }

    async fn start_in(locale: Option<&'static str>) -> OwnRedis {
        let mut server = OwnRedis {
            port: free_port(),
            child: None,
            locale,
        };
        server.restart().await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn restart(&mut self) {
        let mut command = Command::new("redis-server");
        if let Some(locale) = self.locale {
            command.env("LC_ALL", locale);
        }
        let child = command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("could not start `redis-server` (install the redis-server package): {error}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut connection) = self.connect().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within 10 s",
                self.port
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many times the server ran `EVALSHA` (every store operation is one script call).
async fn script_calls(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[actix_rt::test]
async fn a_command_redis_does_not_answer_in_time_fails_and_is_not_sent_again() {
    // Only a connection that was refused or dropped is worth a second try: a command that
    // timed out may still run, and sending it again would only double the wait for the 500.
    if redis_url("the Redis store").is_none() {
        return;
    }
    let redis = OwnRedis::start().await;
    let store = store(&redis.url(), &unique_prefix("stalled")).await;
    let mut admin = redis.connect().await.unwrap();
    // The script is loaded, so each operation below is exactly one EVALSHA.
    store
        .claim("evt_stalled_warm", "h", Duration::from_secs(60))
        .await
        .unwrap();
    let before = script_calls(&mut admin).await;

    // Redis holds every client's commands for 2 s, beyond the store's 500 ms response timeout.
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let error = store
        .claim("evt_stalled", "h", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Redis claim failed"), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );

    // Once Redis answers again, it has run the claim once: it was not sent a second time.
    actix_rt::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
    assert_eq!(script_calls(&mut admin).await - before, 1);
}

#[actix_rt::test]
async fn losing_redis_answers_500_and_runs_nothing_until_it_is_back() {
    if redis_url("the Redis store").is_none() {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let prefix = unique_prefix("outage");
    let server = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store(&redis.url(), &prefix).await),
        |_| {},
    );
    let url = server.url("/webhook");

    // Handled once while Redis is up.
    let done = event_id("outage", 0);
    let (done_body, done_signature) = delivery(&done, "refund.updated");
    let answer = post(&url, done_body.clone(), Some(&done_signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(runs(&done, "record_update"), 1);

    // The connection drops (Redis keeps its data): the recorded success never runs again.
    let mut admin = redis.connect().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 1, "the store's connection was not killed");
    // The store sends the claim again on a fresh connection, so the sender is not even
    // asked to retry.
    for _ in 0..3 {
        let answer = post(&url, done_body.clone(), Some(&done_signature)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(runs(&done, "record_update"), 1);
    }
    drop(admin);

    // Redis stops: every delivery is answered 500 and no handler runs.
    redis.stop();
    let pending = event_id("outage", 1);
    let (body, signature) = delivery(&pending, "refund.updated");
    for _ in 0..3 {
        let started = Instant::now();
        let answer = post(&url, body.clone(), Some(&signature)).await;
        assert_eq!(answer.status, 500, "{:?}", answer.body);
        assert_eq!(answer.code(), "idempotency_store_failed");
        assert!(
            answer.message().contains("Redis claim failed"),
            "{}",
            answer.message()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a delivery waited {:?} for a Redis that is down",
            started.elapsed()
        );
        assert_eq!(
            runs(&pending, "record_update"),
            0,
            "a handler ran without its claim"
        );
    }

    // Redis is back (empty: it kept nothing): the redelivery runs the handler, once.
    redis.restart().await;
    let answer = post(&url, body.clone(), Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(runs(&pending, "record_update"), 1);
    let answer = post(&url, body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(runs(&pending, "record_update"), 1);
}

/// The numbers of docs/performance.md's "What a delivery keeps": memory per million done markers,
/// and the claim + complete round trip per delivery. On a Redis of its own, so other tests do
/// not disturb `used_memory`.
///
/// ```text
/// cargo test --release -p nextgen-tests --features redis --test redis -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_memory_and_round_trip() {
    let redis = OwnRedis::start().await;
    let mut admin = redis.connect().await.unwrap();
    let prefix = "payments";
    let handler = "payments_service::webhooks::on_charge_succeeded";
    let store = RedisIdempotencyStore::connect(&redis.url(), prefix)
        .await
        .unwrap();
    let retention_ms = 72 * 3600 * 1000_u64;

    // Memory: 100,000 done markers, written as `complete` writes them, in pipelined batches.
    let markers = 100_000;
    let before = used_memory(&mut admin).await;
    for batch in 0..markers / 1000 {
        let mut pipe = redis::pipe();
        for n in batch * 1000..(batch + 1) * 1000 {
            // A realistic id: `evt_` and 24 alphanumerics.
            let key = store.key(&format!("evt_1Pq{n:021}"), handler);
            pipe.cmd("SET")
                .arg(key)
                .arg("done")
                .arg("PX")
                .arg(retention_ms)
                .ignore();
        }
        pipe.query_async::<()>(&mut admin).await.unwrap();
    }
    let after = used_memory(&mut admin).await;
    let per_marker = (after - before) as f64 / markers as f64;
    let example_key = store.key("evt_1Pq000000000000000000000", handler);
    println!(
        "memory: {} bytes for {markers} markers = {per_marker:.0} bytes each = {:.0} MiB per million \
         (key `{example_key}`, {} bytes)",
        after - before,
        per_marker * 1e6 / 1_048_576.0,
        example_key.len()
    );

    // Round trip: claim + complete, as one delivery with one handler does, one after another.
    let lease = Duration::from_secs(300);
    let rounds = 10_000;
    for n in 0..500 {
        store
            .claim(&format!("evt_warm{n}"), handler, lease)
            .await
            .unwrap();
    }
    let started = Instant::now();
    for n in 0..rounds {
        let id = format!("evt_2Rt{n:021}");
        let Claim::Claimed(token) = store.claim(&id, handler, lease).await.unwrap() else {
            panic!("{id} was claimed already");
        };
        assert!(store.complete(&id, handler, token).await.unwrap());
    }
    let elapsed = started.elapsed();
    println!(
        "round trip: {rounds} claim+complete pairs in {elapsed:?} = {:.1} µs per delivery and handler",
        elapsed.as_secs_f64() * 1e6 / f64::from(rounds)
    );
}

async fn used_memory(connection: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Events of one object, in arrival order: `(created, event id)`. Rust's `Watermark` order
/// (`created` as an i64, then the id bytewise) must be the store's: at each claim the store
/// answers the greatest watermark advanced so far, and an `advance_object` to an older one
/// (the store's defensive "only forward" check) changes nothing.
const WATERMARK_EDGES: &[&[(i64, &str)]] = &[
    // Byte order, not a locale's collation: `B` (0x42) sorts before `a` (0x61).
    &[(1_700_000_000, "evt_a"), (1_700_000_000, "evt_B")],
    &[(1_700_000_000, "evt_B"), (1_700_000_000, "evt_a")],
    // Non-ASCII after ASCII, and a prefix before the longer id.
    &[(1_700_000_000, "evt_\u{e9}"), (1_700_000_000, "evt_z")],
    &[
        (1_700_000_000, "evt"),
        (1_700_000_000, "evt_"),
        (1_700_000_000, ""),
    ],
    // Beyond 2^53 a double no longer tells neighbouring integers apart.
    &[(1 << 53, "evt_b"), ((1 << 53) + 1, "evt_a")],
    &[((1 << 53) + 1, "evt_a"), (1 << 53, "evt_b")],
    &[
        (i64::MAX - 1, "evt_b"),
        (i64::MAX, "evt_a"),
        (i64::MAX - 1, "evt_c"),
    ],
    // Negative and extreme values: numbers, not text (`-2` < `-10` as text).
    &[
        (-2, "evt_a"),
        (-10, "evt_b"),
        (i64::MIN, "evt_c"),
        (0, "evt_d"),
    ],
    &[(9, "evt_a"), (10, "evt_a"), (9, "evt_b")],
];

/// Claims an object no one holds: its token and the watermark the store keeps.
async fn claim_free_object(
    name: &str,
    store: &dyn ObjectClaims,
    handler: &str,
    object: &str,
) -> (OwnerToken, Option<Watermark>) {
    match store
        .claim_object(object, handler, Duration::from_secs(60))
        .await
        .unwrap()
    {
        ObjectClaim::Claimed { token, newest } => (token, newest),
        ObjectClaim::InProgress => {
            panic!("{name}: the object is claimed, though every claim was ended")
        }
    }
}

async fn check_watermark_order(name: &str, store: &dyn ObjectClaims, events: &[(i64, &str)]) {
    let handler = "watermark.order";
    let object = unique_prefix("object");
    let mut newest: Option<Watermark> = None;
    // Twice: in order, advancing only newer events as dispatch does; then advancing every one.
    for advance_all in [false, true] {
        for &(created, id) in events {
            let event = Watermark::new(created, id);
            let (token, kept) = claim_free_object(name, store, handler, &object).await;
            assert_eq!(kept, newest, "{name}: before {event:?} of {events:?}");
            let newer = newest.as_ref().is_none_or(|newest| event > *newest);
            if newer || advance_all {
                assert!(
                    store
                        .advance_object(&object, handler, token, &event)
                        .await
                        .unwrap()
                );
                if newer {
                    newest = Some(event);
                }
            } else {
                assert!(store.release_object(&object, handler, token).await.unwrap());
            }
        }
    }
    let (token, kept) = claim_free_object(name, store, handler, &object).await;
    assert_eq!(kept, newest, "{name}: after {events:?}");
    assert!(store.release_object(&object, handler, token).await.unwrap());
}

/// The `latest_only` watermark order of the Redis store (compared in a Lua script) is Rust's,
/// as the in-process stores' is (the `watermark_order` fuzz target checks those): on edge
/// cases, then on pseudo-random sequences with many ties.
#[actix_rt::test]
async fn the_watermark_order_is_rusts() {
    let Some(url) = redis_url("the Redis store") else {
        return;
    };
    let shared = store(&url, &unique_prefix("watermark-order")).await;
    for events in WATERMARK_EDGES {
        check_watermark_order("redis", &shared, events).await;
    }
    let ids = [
        "", "a", "B", "b", "ab", "a\u{e9}", "\u{e9}", "Z", "a_", "evt",
    ];
    let createds = [0, 1, -1, 1 << 53, (1 << 53) + 1, i64::MAX, i64::MIN, 59, 60];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % bound as u64).unwrap()
    };
    for _ in 0..100 {
        let events: Vec<(i64, &str)> = (0..1 + next(8))
            .map(|_| (createds[next(createds.len())], ids[next(ids.len())]))
            .collect();
        check_watermark_order("redis", &shared, &events).await;
    }
    // A server under a locale whose collation is not byte order (`evt_a` < `evt_B` there),
    // where the machine has it; without it the C library falls back to byte order and this
    // half shows nothing, which is why the scripts compare no strings with `<` at all
    // (`the_watermark_scripts_compare_no_strings_with_the_locale`, which holds everywhere).
    let own = OwnRedis::start_in(Some("en_US.UTF-8")).await;
    let localized = store(&own.url(), &unique_prefix("watermark-locale")).await;
    let mut connection = own.connect().await.unwrap();
    let collated: i64 = redis::cmd("EVAL")
        .arg("return ('evt_a' < 'evt_B') and 1 or 0")
        .arg(0)
        .query_async(&mut connection)
        .await
        .unwrap();
    if collated == 0 {
        println!("en_US.UTF-8 is not installed: the server compared in byte order");
    }
    for events in WATERMARK_EDGES {
        check_watermark_order("redis under en_US.UTF-8", &localized, events).await;
    }
}

/// The Lua scripts' comparisons that order by text (`latest_only` event ids) are made on
/// bytes (`string.byte`) and lengths, never with `<` on strings, which follows the server's
/// locale (`strcoll`): so the order is Rust's on every server, with or without a locale
/// installed. Two checks that need no locale: every relational operator in every script is
/// one of the known numeric comparisons (a new one must be declared here, after making sure
/// it compares no strings), and the scripts' byte comparison, run on the real server, orders
/// ids as Rust does, `evt_B` before `evt_a` included.
#[actix_rt::test]
async fn the_watermark_scripts_compare_no_strings_with_the_locale() {
    let lua =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nextgen-events/src/redis/lua");
    let mut scripts = 0;
    for entry in std::fs::read_dir(&lua).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "lua") {
            continue;
        }
        scripts += 1;
        for (number, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
            assert!(
                !compares_unknown(line),
                "{}:{}: `{line}` compares with `<` or `>` something not known to be a number; strings compare by the server's locale: compare their bytes (`bytes` in advance_object.lua), then add the comparison to NUMERIC",
                path.display(),
                number + 1
            );
        }
    }
    assert!(scripts >= 10, "no scripts read from {}", lua.display());

    let Some(url) = redis_url("the Redis store's byte order") else {
        return;
    };
    let source = include_str!("../../nextgen-events/src/redis/lua/advance_object.lua");
    let start = source.find("local function bytes").unwrap();
    let end = source.find("local newest").unwrap();
    let compare = format!("{}\nreturn bytes(ARGV[1], ARGV[2])", &source[start..end]);
    let mut connection = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ids = [
        "",
        "evt",
        "evt_",
        "evt_a",
        "evt_B",
        "evt_b",
        "evt_\u{e9}",
        "evt_z",
        "Z",
        "a\u{e9}",
        "\u{e9}",
    ];
    for a in ids {
        for b in ids {
            let order: i64 = redis::cmd("EVAL")
                .arg(&compare)
                .arg(0)
                .arg(a)
                .arg(b)
                .query_async(&mut connection)
                .await
                .unwrap();
            let rust = match a.as_bytes().cmp(b.as_bytes()) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            };
            assert_eq!(order, rust, "{a:?} against {b:?}");
        }
    }
}

/// The relational comparisons of the Lua scripts, each known to compare numbers: bytes
/// (`string.byte`), lengths (`#`), a comparison's sign, a count, an idle time against
/// `tonumber`.
const NUMERIC: &[&str] = &[
    "x < y",
    "#a < #b",
    "by_created < 0",
    "bytes(newest[2], ARGV[3]) < 0",
    "fields.idle > tonumber(ARGV[4])",
    "#bad_attempts < 18",
];

/// Whether a Lua line compares with `<` or `>` anything but the known numeric comparisons.
fn compares_unknown(line: &str) -> bool {
    let left = NUMERIC
        .iter()
        .fold(without_comment_and_strings(line), |code, numeric| {
            code.replace(numeric, "")
        });
    left.contains('<') || left.contains('>')
}

/// A Lua line without its comment and with its string literals emptied: what is left is code.
fn without_comment_and_strings(line: &str) -> String {
    let mut code = String::new();
    let mut quote = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(open) => {
                if c == '\\' {
                    chars.next();
                } else if c == open {
                    quote = None;
                    code.push(c);
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                code.push(c);
            }
            None if c == '-' && chars.peek() == Some(&'-') => break,
            None => code.push(c),
        }
    }
    code
}

#[test]
fn lua_lines_lose_their_comments_and_strings() {
    assert_eq!(
        without_comment_and_strings("if a < b then -- x > y"),
        "if a < b then "
    );
    assert_eq!(
        without_comment_and_strings("redis.call('XREADGROUP', '>') -- '<'"),
        "redis.call('', '') "
    );
    assert_eq!(
        without_comment_and_strings(r#"x = "a\"<" .. y"#),
        r#"x = "" .. y"#
    );
}

/// `Duration::MAX` as a retention saturates to a `PX` Redis refuses: every `complete` would
/// fail and every redelivery run its handlers again. The store's check refuses it first,
/// naming the setter; zero (markers forgotten at once) too.
#[tokio::test]
async fn a_retention_redis_cannot_hold_is_refused_naming_the_setter() {
    use nextgen_events::idempotency::StoreError;

    let Some(url) = redis_url("the Redis store's checks") else {
        return;
    };
    let store = store(&url, &unique_prefix("too-long")).await;
    assert_eq!(store.check_settings(), Ok(()));
    let long = store.clone().with_retention(Duration::MAX);
    let refused = long.check_settings().unwrap_err();
    assert_eq!(
        refused,
        StoreError::SettingTooLong {
            setting: "RedisIdempotencyStore::with_retention",
            seconds: u64::MAX
        }
    );
    assert!(
        refused
            .to_string()
            .contains("`RedisIdempotencyStore::with_retention`"),
        "{refused}"
    );
    // What the check prevents: the marker cannot be written.
    let Claim::Claimed(token) = long
        .claim("evt_too_long", "handler", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("a fresh id is claimed")
    };
    assert!(
        long.complete("evt_too_long", "handler", token)
            .await
            .is_err()
    );
    assert_eq!(
        store.with_retention(Duration::ZERO).check_settings(),
        Err(StoreError::ZeroSetting {
            setting: "RedisIdempotencyStore::with_retention"
        })
    );
}
