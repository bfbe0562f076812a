//! What on-call reads of an inbox: its gauges through the `metrics` facade (entries by state,
//! the oldest pending entry's age, workers alive), refreshed by the endpoint on its cadence and
//! read here from a real recorder, and `Endpoint::health`, whose verdicts turn when the workers
//! stop, when a backlog outgrows its threshold, and when the store stops answering (a
//! redis-server of the test's own, stopped mid-test and started again).
//!
//! SQLite's run in `cargo test --workspace`; Redis's need `--features redis` and
//! `NEXTGEN_TEST_REDIS_URL` (`.ci/run` sets both), and `redis-server` on the `PATH` for the
//! server the test stops.
//!
//! The cost of one refresh on an inbox of a million entries is measured by an ignored test:
//!
//! ```text
//! cargo test --release -p nextgen-tests --test inbox_health -- --ignored --nocapture refresh_cost
//! ```

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use nextgen_events::inbox::{Inbox, InboxEntry, InboxOperator, InboxStats, RetryPolicy};
use nextgen_events::metrics::{INBOX_ENTRIES, INBOX_OLDEST_PENDING, INBOX_WORKERS_ALIVE};
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{ConfigError, Endpoint, LockHealth, StoreHealth, WebhookConfig};
use nextgen_tests::contract::unique;
use nextgen_tests::hooked::HookedInbox;
use nextgen_tests::services::TempFile;
use support::{SECRET, delivery};

/// The inbox clock's start (Unix milliseconds).
const START_MS: u64 = 1_800_000_000_000;

/// How often the endpoints here refresh their gauges: often, so that the tests wait little.
const CADENCE: Duration = Duration::from_millis(20);

/// How long a test waits for a change before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The event ids whose handler fails, every time.
static FAILING: Mutex<Option<HashSet<String>>> = Mutex::new(None);
/// The event ids whose handler waits, holding its worker, until released.
static HELD: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn set(ids: &Mutex<Option<HashSet<String>>>, id: &str, on: bool) {
    let mut ids = ids.lock().unwrap();
    let ids = ids.get_or_insert_with(HashSet::new);
    if on {
        ids.insert(id.to_owned());
    } else {
        ids.remove(id);
    }
}

fn has(ids: &Mutex<Option<HashSet<String>>>, id: &str) -> bool {
    ids.lock()
        .unwrap()
        .as_ref()
        .is_some_and(|ids| ids.contains(id))
}

#[nextgen_event("charge.succeeded")]
async fn book_charge(event: Event<Charge>) -> Result<(), String> {
    while has(&HELD, &event.id) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match has(&FAILING, &event.id) {
        true => Err("the ledger is down".to_owned()),
        false => Ok(()),
    }
}

/// The recorder of this test binary, installed once: the refresher runs on a thread of its
/// own, so a recorder local to the test's thread would not see it.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        snapshotter
    })
}

/// The gauges of the inbox named `inbox` in one snapshot: `pending`, `retrying`, `running`,
/// `handled`, `dead` (its entries), `oldest` (seconds) and `workers`.
fn gauges(inbox: &str) -> HashMap<String, f64> {
    let mut found = HashMap::new();
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let DebugValue::Gauge(value) = value else {
            continue;
        };
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|label| label.key() == name)
                .map(|label| label.value().to_owned())
        };
        if label("inbox").as_deref() != Some(inbox) {
            continue;
        }
        let name = match key.name() {
            INBOX_ENTRIES => label("state").unwrap(),
            INBOX_OLDEST_PENDING => "oldest".to_owned(),
            INBOX_WORKERS_ALIVE => "workers".to_owned(),
            other => panic!("an unexpected gauge {other}"),
        };
        found.insert(name, value.into_inner());
    }
    found
}

/// Waits until one snapshot shows every gauge of `inbox` at the value `want` gives it.
///
/// A snapshot of the debugging recorder resets the gauges it reads to 0 (the tests of this
/// binary share it), so the values are waited for in a snapshot taken after a refresh, which
/// sets them all at once: every `want` holds a value other than 0 that proves it.
async fn until_gauges(inbox: &str, want: &[(&str, f64)]) {
    let started = Instant::now();
    loop {
        let found = gauges(inbox);
        if want
            .iter()
            .all(|(name, value)| found.get(*name).copied().unwrap_or(0.0) == *value)
        {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the gauges of {inbox} never read {want:?}; last {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the inbox's counts are `want`.
async fn until_stats(inbox: &dyn InboxOperator, want: impl Fn(&InboxStats) -> bool) {
    let started = Instant::now();
    loop {
        let stats = inbox.stats().await.unwrap();
        if want(&stats) {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "stuck at {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the endpoint's health satisfies `want`; the health then.
async fn until_health(
    endpoint: &Endpoint,
    what: &str,
    want: impl Fn(&nextgen_events::Health) -> bool,
) -> nextgen_events::Health {
    let started = Instant::now();
    loop {
        let health = endpoint.health();
        if want(&health) {
            return health;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "never {what}: {health:?} ({health})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Delivers a signed `charge.succeeded` with id `id` to the endpoint.
async fn deliver(endpoint: &Endpoint, id: &str) {
    let (body, signature) = delivery(id, "charge.succeeded");
    endpoint
        .receive(&body, Some(&signature), &Context::new())
        .await
        .unwrap();
}

/// A configuration in inbox mode on `inbox`, named `name`, refreshing its gauges every
/// [`CADENCE`], its workers polling often, giving up a failing delivery an hour after its first
/// failure.
fn config(inbox: impl Inbox, name: &str, workers: usize) -> WebhookConfig {
    WebhookConfig::new(SECRET)
        .with_inbox(inbox)
        .with_inbox_name(name)
        .with_inbox_workers(workers)
        .with_inbox_poll(Duration::from_millis(10))
        .with_inbox_gauges(CADENCE)
        .with_retry_policy(
            RetryPolicy::default()
                .with_give_up_after(Duration::from_secs(3600))
                .with_jitter(0.0),
        )
}

/// Three deliveries handled, one retried, then dead after the retry policy's hour, another
/// retrying: each step in the gauges. The inbox reads `clock`.
async fn gauges_follow_the_inbox<I: Inbox + InboxOperator + Clone>(
    inbox: I,
    clock: &AtomicU64,
    name: &str,
) {
    let endpoint = Endpoint::new(config(inbox.clone(), name, 2)).unwrap();
    let handled: Vec<String> = (0..3).map(|_| unique("gauges_ok")).collect();
    for id in &handled {
        deliver(&endpoint, id).await;
    }
    let retried = unique("gauges_retried");
    set(&FAILING, &retried, true);
    deliver(&endpoint, &retried).await;
    until_stats(&inbox, |stats| stats.handled == 3 && stats.retrying == 1).await;
    until_gauges(
        name,
        &[
            ("pending", 0.0),
            ("retrying", 1.0),
            ("running", 0.0),
            ("handled", 3.0),
            ("dead", 0.0),
            ("oldest", 0.0),
            ("workers", 2.0),
        ],
    )
    .await;

    // Two hours later the retry is due, fails again, and the policy gives up: a dead letter.
    clock.fetch_add(2 * 3600 * 1000, Ordering::SeqCst);
    until_stats(&inbox, |stats| stats.dead == 1 && stats.retrying == 0).await;
    let again = unique("gauges_retrying");
    set(&FAILING, &again, true);
    deliver(&endpoint, &again).await;
    until_stats(&inbox, |stats| stats.retrying == 1).await;
    until_gauges(
        name,
        &[
            ("pending", 0.0),
            ("retrying", 1.0),
            ("running", 0.0),
            ("handled", 3.0),
            ("dead", 1.0),
            ("oldest", 0.0),
            ("workers", 2.0),
        ],
    )
    .await;
    // Polled, as every verdict here: a refresher that a busy machine delays past 3 cadences
    // makes the store count as unreachable for a moment, as it should.
    until_health(&endpoint, "ready and alive", |health| {
        health.is_ready() && health.is_alive()
    })
    .await;

    let report = endpoint.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
}

/// A SQLite inbox in a fresh file on a clock the test moves.
fn sqlite_on_clock(label: &str) -> (SqliteInbox, Arc<AtomicU64>, TempFile) {
    let file = TempFile::new(label);
    let clock = Arc::new(AtomicU64::new(START_MS));
    let reader = Arc::clone(&clock);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap();
    (inbox, clock, file)
}

#[actix_rt::test]
async fn sqlite_gauges_count_deliveries_a_retry_and_a_dead_letter() {
    let (inbox, clock, _file) = sqlite_on_clock("gauges");
    gauges_follow_the_inbox(inbox, &clock, "sqlite-gauges").await;
}

/// An intake-only endpoint (no workers) still refreshes the gauges of the inbox it shares:
/// the oldest pending entry's age grows with the inbox's clock.
#[actix_rt::test]
async fn the_oldest_pending_age_grows_on_the_inbox_clock_without_workers() {
    let (inbox, clock, _file) = sqlite_on_clock("backlog-age");
    let name = "sqlite-backlog-age";
    let endpoint = Endpoint::new(config(inbox, name, 0)).unwrap();
    deliver(&endpoint, &unique("waiting")).await;
    clock.fetch_add(90_000, Ordering::SeqCst);
    until_gauges(
        name,
        &[("pending", 1.0), ("oldest", 90.0), ("workers", 0.0)],
    )
    .await;
    clock.fetch_add(60_000, Ordering::SeqCst);
    until_gauges(name, &[("pending", 1.0), ("oldest", 150.0)]).await;
    let health = until_health(&endpoint, "the age read", |health| {
        health.oldest_pending == Some(Duration::from_secs(150))
    })
    .await;
    // No workers: no lock, and a backlog this endpoint cannot drain does not make it dead.
    assert_eq!(health.workers_lock, LockHealth::NotNeeded);
    assert!(health.is_ready() && health.is_alive(), "{health}");
}

/// Health with SQLite's workers: ready and alive with the lock held; not alive while a
/// pending entry waits longer than the threshold behind a stalled worker, alive again once it
/// is taken; neither ready nor alive after `shutdown`, the lock let go.
#[actix_rt::test]
async fn sqlite_health_follows_the_lock_the_backlog_and_the_stop() {
    let (inbox, clock, _file) = sqlite_on_clock("health");
    let config =
        config(inbox.clone(), "sqlite-health", 1).with_backlog_threshold(Duration::from_secs(60));
    let endpoint = Endpoint::new(config).unwrap();
    let health = until_health(&endpoint, "ready", |health| health.is_ready()).await;
    assert!(health.is_alive(), "{health}");
    assert_eq!(health.workers_lock, LockHealth::Held);
    // Ready: the store answered the last read (within 3 cadences).
    assert!(
        matches!(health.store, StoreHealth::Reachable { .. }),
        "{health:?}"
    );
    assert!(
        health
            .summary()
            .starts_with("ok: 1 of 1 inbox workers running, the workers' lock held"),
        "{health}"
    );

    // The one worker is stuck in a handler; the next delivery waits behind it.
    let (stuck, waiting) = (unique("stuck"), unique("behind"));
    set(&HELD, &stuck, true);
    deliver(&endpoint, &stuck).await;
    until_stats(&inbox, |stats| stats.running == 1).await;
    deliver(&endpoint, &waiting).await;
    clock.fetch_add(120_000, Ordering::SeqCst);
    let stalled = until_health(&endpoint, "ready, not alive", |health| {
        health.is_ready() && !health.is_alive()
    })
    .await;
    assert_eq!(stalled.oldest_pending, Some(Duration::from_secs(120)));
    assert!(
        stalled.summary().contains(
            "the oldest pending entry has waited 120.0 s, over the backlog threshold of 60.0 s"
        ),
        "{stalled}"
    );

    set(&HELD, &stuck, false);
    until_health(&endpoint, "alive again", |health| {
        health.is_ready() && health.is_alive()
    })
    .await;

    let report = endpoint.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    let health = endpoint.health();
    assert!(!health.is_ready() && !health.is_alive(), "{health}");
    assert_eq!(health.workers_lock, LockHealth::NotHeld);
    assert_eq!(health.workers_alive, 0);
    let summary = health.summary();
    assert!(
        summary.starts_with("not ready, not alive: stopping"),
        "{summary}"
    );
    assert!(
        summary.contains("0 of 1 inbox workers running"),
        "{summary}"
    );
    assert!(
        summary.contains("the workers' lock is not held"),
        "{summary}"
    );
}

/// A stop does not wait for the refresher's next cadence, however long (nor for the few
/// seconds a stop gives the refresher's thread at most).
#[actix_rt::test]
async fn a_stop_does_not_wait_for_the_next_refresh() {
    let (inbox, _clock, _file) = sqlite_on_clock("hourly-gauges");
    let config = config(inbox, "sqlite-hourly", 1).with_inbox_gauges(Duration::from_secs(3600));
    let endpoint = Endpoint::new(config).unwrap();
    // The first read is made at the start, not a cadence later.
    until_health(&endpoint, "ready", |health| health.is_ready()).await;
    let started = Instant::now();
    let report = endpoint.shutdown(Duration::from_secs(30)).await;
    assert!(report.is_clean(), "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the stop took {:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn an_inbox_without_an_operator_view_has_the_workers_gauge_only() {
    let (inbox, _clock, _file) = sqlite_on_clock("no-operator");
    let name = "sqlite-no-operator";
    // Without an operator view, its store is not read: the endpoint reports the workers gauge
    // only, and its health does not judge the store.
    let endpoint = Endpoint::new(config(HookedInbox::new(inbox), name, 2)).unwrap();
    // Not read, so not waited for: ready from the start.
    let health = endpoint.health();
    assert_eq!(health.store, StoreHealth::NotChecked);
    assert!(health.is_ready() && health.is_alive(), "{health}");
    assert_eq!(health.workers_lock, LockHealth::Held);
    deliver(&endpoint, &unique("no_operator")).await;
    until_gauges(name, &[("workers", 2.0)]).await;
    for _ in 0..5 {
        let found = gauges(name);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["workers"], "{found:?}");
        tokio::time::sleep(CADENCE).await;
    }
    assert_eq!(endpoint.health().oldest_pending, None);
}

#[test]
fn the_cadence_the_threshold_and_the_name_are_checked() {
    let zero = WebhookConfig::new(SECRET).with_inbox_gauges(Duration::ZERO);
    let refused = zero.check().unwrap_err();
    assert_eq!(
        refused,
        ConfigError::ZeroDuration {
            setting: "with_inbox_gauges"
        }
    );
    assert!(
        refused.to_string().contains("give it a positive duration"),
        "{refused}"
    );
    let zero = WebhookConfig::new(SECRET).with_backlog_threshold(Duration::ZERO);
    assert_eq!(
        zero.check().unwrap_err(),
        ConfigError::ZeroDuration {
            setting: "with_backlog_threshold"
        }
    );
    let blank = WebhookConfig::new(SECRET).with_inbox_name(" ");
    let refused = blank.check().unwrap_err();
    assert_eq!(refused, ConfigError::BlankInboxName);
    assert!(refused.to_string().contains("with_inbox_name"), "{refused}");
    let defaults = WebhookConfig::new(SECRET);
    assert_eq!(defaults.inbox_name(), "inbox");
    assert_eq!(defaults.inbox_gauges(), Duration::from_secs(15));
    assert_eq!(defaults.backlog_threshold(), Duration::from_secs(300));
}

/// The cost of one refresh (the counts' read; setting seven gauges adds microseconds) on a
/// SQLite inbox of a million entries, in two shapes: all pending (a backlog), and the steady
/// state of a retention window (nearly all handled). Run it in a release build (see the
/// module docs); the figures go in `docs/performance.md`.
#[test]
#[ignore = "a measurement: fills a million entries; run it in a release build"]
fn refresh_cost_on_a_million_sqlite_entries() {
    const ENTRIES: u64 = 1_000_000;
    let file = TempFile::new("refresh-cost");
    let inbox =
        SqliteInbox::open_with(&file.0, nextgen_events::sqlite::Durability::Normal).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let filled = Instant::now();
    runtime.block_on(async {
        // Many appends at once: the writer commits every one waiting in one transaction.
        let ids: Vec<u64> = (0..ENTRIES).collect();
        for chunk in ids.chunks(5_000) {
            let appends = chunk.iter().map(|&n| {
                inbox.append(InboxEntry {
                    event_id: format!("evt_{n:08}"),
                    event_type: "charge.succeeded".to_owned(),
                    body: format!(
                        r#"{{"id":"evt_{n:08}","object":"event","type":"charge.succeeded"}}"#
                    )
                    .into_bytes(),
                    signed_at: 1_800_000_000,
                    received_at_ms: START_MS + n,
                    signature: None,
                })
            });
            for appended in futures_util::future::join_all(appends).await {
                appended.unwrap();
            }
        }
    });
    println!("filled {ENTRIES} entries in {:?}", filled.elapsed());
    let measure = |shape: &str| {
        let mut took: Vec<Duration> = (0..21)
            .map(|_| {
                let started = Instant::now();
                let stats = runtime.block_on(inbox.stats()).unwrap();
                let took = started.elapsed();
                assert_eq!(
                    stats.pending + stats.retrying + stats.running + stats.handled + stats.dead,
                    ENTRIES
                );
                took
            })
            .collect();
        took.sort();
        println!(
            "one refresh, {shape}: median {:?}, min {:?}, max {:?} (21 reads)",
            took[10], took[0], took[20]
        );
    };
    measure("1,000,000 pending");
    // The steady state: 99% handled within the retention, the rest a backlog, retries and
    // dead letters. Written straight into the file: a million takes and finishes would only
    // slow the fill.
    let connection = rusqlite::Connection::open(&file.0).unwrap();
    connection
        .execute_batch(
            "UPDATE nextgen_inbox SET state = 'handled', attempts = 1,
                 finished_at_ms = received_at_ms + 1000
             WHERE rowid % 100 != 0;
             UPDATE nextgen_inbox SET state = 'dead', attempts = 5,
                 first_failed_at_ms = received_at_ms, finished_at_ms = received_at_ms + 1000
             WHERE rowid % 1000 = 0;
             UPDATE nextgen_inbox SET attempts = 1, first_failed_at_ms = received_at_ms
             WHERE rowid % 1000 = 500;",
        )
        .unwrap();
    let stats = runtime.block_on(inbox.stats()).unwrap();
    assert_eq!(stats.handled, 990_000, "{stats:?}");
    assert_eq!(stats.dead, 1_000, "{stats:?}");
    assert_eq!(stats.retrying, 1_000, "{stats:?}");
    measure("990,000 handled, 8,000 pending, 1,000 retrying, 1,000 dead");
}

#[cfg(feature = "redis")]
mod redis {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use nextgen_events::redis::RedisInbox;
    use nextgen_events::{Endpoint, LockHealth, StoreHealth};
    use nextgen_tests::services::{redis_url, unique_prefix};

    use super::{START_MS, config, gauges_follow_the_inbox, until_health};

    #[actix_rt::test]
    async fn redis_gauges_count_deliveries_a_retry_and_a_dead_letter() {
        let Some(url) = redis_url("the Redis inbox's gauges") else {
            return;
        };
        let clock = Arc::new(AtomicU64::new(START_MS));
        let reader = Arc::clone(&clock);
        let inbox = RedisInbox::connect(&url, unique_prefix("gauges"))
            .await
            .unwrap()
            .with_clock(move || reader.load(Ordering::SeqCst));
        gauges_follow_the_inbox(inbox, &clock, "redis-gauges").await;
    }

    /// A redis-server of the test's own, on a free loopback port, without persistence: the
    /// test stops it and starts it again on the same port. Stopped when dropped.
    struct OwnRedis {
        port: u16,
        server: Option<Child>,
    }

    impl OwnRedis {
        fn start() -> OwnRedis {
            for _ in 0..20 {
                // A port the system just gave out, free again: another process may take it
                // meanwhile, and then the server exits and another port is tried.
                let port = TcpListener::bind(("127.0.0.1", 0))
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                if let Some(server) = serve(port) {
                    return OwnRedis {
                        port,
                        server: Some(server),
                    };
                }
            }
            panic!("could not start a redis-server on a free loopback port");
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        /// Kills the server, as a crash would.
        fn stop(&mut self) {
            if let Some(mut server) = self.server.take() {
                let _ = server.kill();
                let _ = server.wait();
            }
        }

        /// Starts it again on the same port.
        fn start_again(&mut self) {
            let started = Instant::now();
            // The port may linger a moment after the kill: tried again until it is free.
            while self.server.is_none() {
                self.server = serve(self.port);
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "could not start redis-server again on port {}",
                    self.port
                );
            }
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// A redis-server on `port`, once it answers `PING`; `None` when it exited (the port was
    /// taken).
    fn serve(port: u16) -> Option<Child> {
        let mut server = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(server) => server,
            Err(error) => panic!(
                "could not run redis-server ({error}): install it (`apt-get install redis-server`; .ci/run does)"
            ),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if server.try_wait().ok().flatten().is_some() {
                return None;
            }
            if pong(port) {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = server.kill();
        let _ = server.wait();
        None
    }

    /// Whether a Redis on `port` answers `PING`.
    fn pong(port: u16) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// The store stops answering: not ready (a restart would not help, so still alive), and
    /// ready again once it is back; after `shutdown`, neither.
    #[actix_rt::test]
    async fn redis_health_turns_with_the_server_and_back() {
        // Skipped with the other Redis tests, though this one brings its own server.
        if redis_url("the Redis inbox's health").is_none() {
            return;
        }
        let mut server = OwnRedis::start();
        let inbox = RedisInbox::connect(&server.url(), unique_prefix("health"))
            .await
            .unwrap();
        let endpoint = Endpoint::new(config(inbox, "redis-health", 1)).unwrap();
        let health = until_health(&endpoint, "ready", |health| health.is_ready()).await;
        assert!(health.is_alive(), "{health}");
        // Replicas share a Redis inbox: no lock.
        assert_eq!(health.workers_lock, LockHealth::NotNeeded);

        server.stop();
        let down = until_health(&endpoint, "not ready", |health| !health.is_ready()).await;
        assert!(
            matches!(
                down.store,
                StoreHealth::Unreachable { .. } | StoreHealth::Stale { .. }
            ),
            "{down:?}"
        );
        assert!(
            down.summary().starts_with("not ready: the inbox's store"),
            "{down}"
        );
        assert!(
            down.is_alive(),
            "a store outage must not restart the replica: {down}"
        );

        server.start_again();
        let back = until_health(&endpoint, "ready again", |health| health.is_ready()).await;
        assert!(back.is_alive(), "{back}");

        let report = endpoint.shutdown(Duration::from_secs(10)).await;
        assert!(report.is_clean(), "{report:?}");
        let stopped = endpoint.health();
        assert!(!stopped.is_ready() && !stopped.is_alive(), "{stopped}");
    }
}
