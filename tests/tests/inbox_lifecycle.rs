//! The inbox's start and stop: recovery that touches only what an earlier run left, a
//! graceful stop that records every outcome it has (SQLite, and a real redis-server with
//! `--features redis`), and one process's workers per SQLite inbox.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nextgen_events::idempotency::{Claim, IdempotencyStore, OwnerToken, StoreError};
use nextgen_events::inbox::{Finish, Inbox, InboxOperator, InboxState, Recovered};
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{ConfigError, Endpoint, WebhookConfig};
use nextgen_tests::hooked::HookedInbox;
use nextgen_tests::services::TempFile;

const HANDLER: &str = "lifecycle.record";
const SECRET: &str = "whsec_lifecycle_test";

/// Each handler run, in the order they started: event ids.
static RUNS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Lets the start-up race test's handlers finish.
static RACE_RELEASED: AtomicBool = AtomicBool::new(false);

/// Records the run; `evt_race_*` waits until released, `evt_stuck_*` and `evt_stop_*` take a
/// second (long enough that a stop made once four have started, on a slow machine too, comes
/// before the rest start), the rest a moment.
#[nextgen_event("charge.succeeded", name = "lifecycle.record")]
async fn record(event: Event<Charge>) {
    RUNS.lock().unwrap().push(event.id.clone());
    if event.id.starts_with("evt_race_") {
        while !RACE_RELEASED.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else if event.id.starts_with("evt_stuck_") || event.id.starts_with("evt_stop_") {
        tokio::time::sleep(Duration::from_secs(1)).await;
    } else {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn runs_of(prefix: &str) -> Vec<String> {
    let runs = RUNS.lock().unwrap();
    runs.iter()
        .filter(|id| id.starts_with(prefix))
        .cloned()
        .collect()
}

fn counts(runs: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in runs {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

fn config(inbox: impl Inbox, workers: usize) -> WebhookConfig {
    WebhookConfig::new(SECRET)
        .with_inbox(inbox)
        .with_inbox_workers(workers)
        .with_inbox_poll(Duration::from_millis(10))
}

/// An inbox whose recovery takes its time, as one on a slow disk or a large file does (the
/// other workers have all of it to take deliveries, unless they wait for it), and the count of
/// the workers' looks for a due delivery.
fn slow_recovery<I: Inbox>(inbox: I) -> (HookedInbox<I>, Arc<AtomicU64>) {
    let looks = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&looks);
    let inbox = HookedInbox::new(inbox)
        .before_take(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .recovering_for(Duration::from_millis(300));
    (inbox, looks)
}

fn wait_until(what: &str, patience: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < patience,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `(event_id, state, owner)` of every inbox row, and `(event_id, owner)` of every live claim.
type Rows = (Vec<(String, String, Option<String>)>, Vec<(String, String)>);

fn rows(file: &TempFile) -> Rows {
    let connection = rusqlite::Connection::open(&file.0).unwrap();
    let mut inbox = connection
        .prepare("SELECT event_id, state, owner FROM nextgen_inbox ORDER BY event_id")
        .unwrap();
    let inbox = inbox
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut claims = connection
        .prepare("SELECT event_id, owner FROM nextgen_handlers WHERE state = 'claimed' ORDER BY event_id")
        .unwrap();
    let claims = claims
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (inbox, claims)
}

/// An owner token of a run that is not this one.
const EARLIER_RUN: &str = "0123456789abcdef0000000000000007";

#[test]
fn recovery_says_what_it_reset() {
    let file = TempFile::new("recovered");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let system = actix_rt::System::new();
    for (n, id) in ["evt_left_a", "evt_left_b", "evt_left_c"]
        .iter()
        .enumerate()
    {
        system
            .block_on(inbox.append(support::charge_entry(id, 1_000 + n as u64, SECRET)))
            .unwrap();
    }
    let connection = rusqlite::Connection::open(&file.0).unwrap();
    connection
        .execute(
            "UPDATE nextgen_inbox SET state = 'running', owner = ?1, queued_due_ms = due_at_ms, due_at_ms = 9999999999999, attempts = 1 WHERE event_id IN ('evt_left_a', 'evt_left_c')",
            [EARLIER_RUN],
        )
        .unwrap();
    connection
        .execute(
            "INSERT INTO nextgen_handlers (event_id, handler, state, owner, until_ms) VALUES ('evt_left_a', ?1, 'claimed', ?2, 9999999999999)",
            [HANDLER, EARLIER_RUN],
        )
        .unwrap();
    let mut recovered = system.block_on(inbox.recover()).unwrap();
    recovered.deliveries.sort();
    assert_eq!(
        recovered,
        Recovered {
            deliveries: vec!["evt_left_a".to_owned(), "evt_left_c".to_owned()],
            claims: 1,
            object_claims: 0,
        }
    );
    assert!(system.block_on(inbox.recover()).unwrap().is_empty());
}

#[test]
fn recovery_resets_only_an_earlier_runs_work_before_any_worker_takes_a_delivery() {
    assert!(!OwnerToken::this_run_prefix().starts_with("0123456789abcdef"));
    let file = TempFile::new("race");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let ids: Vec<String> = (0..12).map(|n| format!("evt_race_{n:02}")).collect();
    let system = actix_rt::System::new();
    for (n, id) in ids.iter().enumerate() {
        system
            .block_on(inbox.append(support::charge_entry(id, 1_000 + n as u64, SECRET)))
            .unwrap();
    }
    // What a killed earlier run left: two deliveries running under its token, one of them with
    // its handler's claim live, at the head of the queue: a worker that took before the
    // recovery had put them back would pass them by.
    {
        let connection = rusqlite::Connection::open(&file.0).unwrap();
        connection
            .execute(
                "UPDATE nextgen_inbox SET state = 'running', owner = ?1, queued_due_ms = due_at_ms, due_at_ms = 9999999999999, attempts = 1 WHERE event_id IN ('evt_race_00', 'evt_race_01')",
                [EARLIER_RUN],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO nextgen_handlers (event_id, handler, state, owner, until_ms) VALUES ('evt_race_00', ?1, 'claimed', ?2, 9999999999999)",
                [HANDLER, EARLIER_RUN],
            )
            .unwrap();
    }

    let config = config(slow_recovery(inbox.clone()).0, 4);
    let config = Endpoint::new(config).unwrap();
    wait_until("four handlers run", Duration::from_secs(10), || {
        runs_of("evt_race_").len() == 4
    });
    let this_run = OwnerToken::this_run_prefix();
    let check = |when: &str| {
        let (inbox_rows, claims) = rows(&file);
        let running: Vec<_> = inbox_rows
            .iter()
            .filter(|(_, state, _)| state == "running")
            .collect();
        assert_eq!(running.len(), 4, "{when}: {inbox_rows:?}");
        for (id, _, owner) in &running {
            assert!(
                owner
                    .as_deref()
                    .is_some_and(|owner| owner.starts_with(&this_run)),
                "{when}: {id} is running under another run's token: {inbox_rows:?}"
            );
        }
        assert_eq!(
            claims.len(),
            4,
            "{when}: one live claim per running delivery: {claims:?}"
        );
        for (id, owner) in &claims {
            assert!(
                owner.starts_with(&this_run),
                "{when}: {id}'s claim: {claims:?}"
            );
            assert!(
                running.iter().any(|(running, _, _)| running == id),
                "{when}: {claims:?}"
            );
        }
    };
    check("after the start");
    // The first four in the queue were taken first, the earlier run's two among them: they
    // were back in their place before any worker took, and nothing of this run was handed
    // back.
    let mut first = runs_of("evt_race_");
    first.sort();
    assert_eq!(first, ids[..4], "the queue's first four run first");

    // A recovery that came late (the race) finds nothing of an earlier run left and resets
    // nothing of this run's.
    assert!(system.block_on(inbox.recover()).unwrap().is_empty());
    check("after a late recovery");

    RACE_RELEASED.store(true, Ordering::SeqCst);
    wait_until("all handled", Duration::from_secs(20), || {
        let (rows, _) = rows(&file);
        rows.iter().all(|(_, state, _)| state == "handled")
    });
    drop(config);
    let runs = runs_of("evt_race_");
    let counts = counts(&runs);
    assert_eq!(counts.len(), 12, "{runs:?}");
    assert!(
        counts.values().all(|&runs| runs == 1),
        "each ran once: {counts:?}"
    );
    // The earlier run's two kept their place: they ran before the ones received after them.
    let position = |id: &str| runs.iter().position(|run| run == id).unwrap();
    assert!(
        position("evt_race_00") < position("evt_race_04"),
        "{runs:?}"
    );
    assert!(
        position("evt_race_01") < position("evt_race_04"),
        "{runs:?}"
    );
}

/// Starts workers on `inbox` inside a current-thread runtime, waits until `busy` handlers of
/// `ids` have started, then drops the configuration on that runtime's thread: the stop blocks
/// it while the workers finish, as a server's stop does.
fn stop_while_handling<I: Inbox + InboxOperator + Clone>(inbox: I, prefix: &str, busy: usize) {
    let config = config(inbox, 4);
    let config = Endpoint::new(config).unwrap();
    wait_until("handlers run", Duration::from_secs(10), || {
        runs_of(prefix).len() >= busy
    });
    drop(config);
}

/// After a graceful stop: every handler that ran has its done marker and its delivery is
/// handled; a restart runs each remaining delivery once and none of the finished ones again.
async fn assert_stopped_cleanly<I: Inbox + InboxOperator + Clone>(
    inbox: &I,
    ids: &[String],
    prefix: &str,
) {
    let ran = counts(&runs_of(prefix));
    assert!(!ran.is_empty());
    assert!(
        ran.len() < ids.len(),
        "the stop came in the middle: {ran:?}"
    );
    let store = inbox.idempotency_store();
    for id in ran.keys() {
        let claim = store
            .claim(id, HANDLER, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            claim,
            Claim::AlreadyDone,
            "{id} finished before the stop: its marker is written"
        );
        let record = inbox.show(id, false).await.unwrap().unwrap();
        assert_eq!(record.state, InboxState::Handled, "{id}: {record:?}");
    }
}

fn assert_each_ran_once(prefix: &str, ids: &[String]) {
    let counts = counts(&runs_of(prefix));
    assert_eq!(counts.len(), ids.len(), "{counts:?}");
    assert!(
        counts.values().all(|&runs| runs == 1),
        "each ran once: {counts:?}"
    );
}

#[test]
fn a_graceful_stop_on_sqlite_records_every_finished_handler() {
    let file = TempFile::new("stop");
    let ids: Vec<String> = (0..12).map(|n| format!("evt_stop_sqlite_{n:02}")).collect();
    let system = actix_rt::System::new();
    let inbox = SqliteInbox::open(&file.0).unwrap();
    for (n, id) in ids.iter().enumerate() {
        system
            .block_on(inbox.append(support::charge_entry(id, 1_000 + n as u64, SECRET)))
            .unwrap();
    }
    system.block_on(async { stop_while_handling(inbox.clone(), "evt_stop_sqlite_", 4) });
    system.block_on(assert_stopped_cleanly(&inbox, &ids, "evt_stop_sqlite_"));

    // Started again (the lock was released with the stop): the rest, once each.
    let config = config(SqliteInbox::open(&file.0).unwrap(), 4);
    let config = Endpoint::new(config).unwrap();
    wait_until("all handled", Duration::from_secs(20), || {
        system.block_on(inbox.stats()).unwrap().handled == 12
    });
    drop(config);
    assert_each_ran_once("evt_stop_sqlite_", &ids);
}

#[cfg(feature = "redis")]
#[test]
fn a_graceful_stop_on_redis_records_every_finished_handler() {
    use nextgen_events::redis::RedisInbox;
    use nextgen_tests::services::{redis_url, unique_prefix};

    let Some(url) = redis_url("a graceful stop on the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("stop");
    let ids: Vec<String> = (0..12).map(|n| format!("evt_stop_redis_{n:02}")).collect();
    // The inbox is connected on the runtime whose thread the stop blocks, as an app connects
    // it in `main`.
    let system = actix_rt::System::new();
    let inbox = system.block_on(async {
        let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
        for (n, id) in ids.iter().enumerate() {
            inbox
                .append(support::charge_entry(id, 1_000 + n as u64, SECRET))
                .await
                .unwrap();
        }
        stop_while_handling(inbox.clone(), "evt_stop_redis_", 4);
        inbox
    });
    system.block_on(assert_stopped_cleanly(&inbox, &ids, "evt_stop_redis_"));

    let again = system.block_on(RedisInbox::connect(&url, prefix)).unwrap();
    let config = config(again, 4);
    let config = Endpoint::new(config).unwrap();
    wait_until("all handled", Duration::from_secs(20), || {
        system.block_on(inbox.stats()).unwrap().handled == 12
    });
    drop(config);
    assert_each_ran_once("evt_stop_redis_", &ids);
}

#[test]
fn a_second_set_of_workers_on_one_sqlite_inbox_is_refused_naming_the_holder() {
    let file = TempFile::new("lock");
    let first = config(SqliteInbox::open(&file.0).unwrap(), 1);
    let first = Endpoint::new(first).unwrap();

    let second = config(SqliteInbox::open(&file.0).unwrap(), 2);
    let refused = Endpoint::new(second.clone()).unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, ConfigError::Workers(StoreError::Locked { .. })),
        "{message}"
    );
    assert!(message.contains(&file.0.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    assert!(
        message.contains("0 workers"),
        "says how to run several: {message}"
    );

    // Intake only needs no lock.
    let intake = config(SqliteInbox::open(&file.0).unwrap(), 0);
    let _intake = Endpoint::new(intake).unwrap();

    // Once the first stops, the second may start.
    drop(first);
    Endpoint::new(second).unwrap();
}

/// The inbox's own check (which its workers run before they take the file's lock, and which
/// a caller may run itself) refuses a retention the file cannot hold, naming the inbox's setter,
/// and a retention it can hold passes.
#[test]
fn an_inbox_retention_the_file_cannot_hold_is_refused_before_its_workers_lock_the_file() {
    let file = TempFile::new("retention-check");
    let open = || SqliteInbox::open(&file.0).unwrap();
    let cases = [
        (
            Duration::ZERO,
            StoreError::ZeroSetting {
                setting: "SqliteInbox::with_retention",
            },
        ),
        (
            Duration::MAX,
            StoreError::SettingTooLong {
                setting: "SqliteInbox::with_retention",
                seconds: u64::MAX,
            },
        ),
    ];
    for (retention, expected) in cases {
        let inbox = open().with_retention(retention);
        assert_eq!(
            inbox.check_settings(),
            Err(expected.clone()),
            "{retention:?}"
        );
        assert_eq!(
            Inbox::check_settings(&inbox),
            Err(expected.clone()),
            "{retention:?}"
        );
        assert_eq!(inbox.lock_workers().err(), Some(expected), "{retention:?}");
    }
    let inbox = open().with_retention(Duration::from_secs(3600));
    assert_eq!(inbox.check_settings(), Ok(()));
    assert_eq!(Inbox::check_settings(&inbox), Ok(()));
    assert!(inbox.lock_workers().unwrap().is_some());
}

/// An idle worker waits for a delivery or its poll: it does not look at an empty inbox over
/// and over.
#[test]
fn an_idle_worker_waits_instead_of_polling_an_empty_inbox() {
    let file = TempFile::new("idle");
    let (inbox, looks) = slow_recovery(SqliteInbox::open(&file.0).unwrap());
    let endpoint =
        Endpoint::new(config(inbox, 1).with_inbox_poll(Duration::from_secs(3600))).unwrap();
    wait_until("the worker looks once", Duration::from_secs(10), || {
        looks.load(Ordering::SeqCst) >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(endpoint);
    let looks = looks.load(Ordering::SeqCst);
    assert!(
        looks <= 3,
        "an idle worker looked {looks} times in half a second"
    );
}

/// The first worker deletes handled deliveries past the retention when it starts (and hourly
/// after): with one worker too.
#[test]
fn the_workers_prune_handled_deliveries_past_the_retention() {
    let file = TempFile::new("prune");
    let now = Arc::new(AtomicU64::new(1_800_000_000_000));
    let clock = Arc::clone(&now);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || clock.load(Ordering::SeqCst)).unwrap();
    let system = actix_rt::System::new();
    system
        .block_on(inbox.append(support::charge_entry(
            "evt_prune_1",
            1_800_000_000_000,
            SECRET,
        )))
        .unwrap();
    let taken = system
        .block_on(inbox.take(Duration::from_secs(60)))
        .unwrap()
        .unwrap();
    assert!(
        system
            .block_on(inbox.finish("evt_prune_1", taken.token, Finish::Handled))
            .unwrap()
    );
    let retention = u64::try_from(inbox.retention().as_millis()).unwrap();
    now.fetch_add(retention + 60_000, Ordering::SeqCst);

    let endpoint =
        Endpoint::new(config(inbox.clone(), 1).with_inbox_poll(Duration::from_secs(3600))).unwrap();
    wait_until(
        "the handled delivery is pruned",
        Duration::from_secs(10),
        || {
            system
                .block_on(inbox.show("evt_prune_1", false))
                .unwrap()
                .is_none()
        },
    );
    drop(endpoint);
}

/// Collects the formatted log lines of the thread it is the default subscriber of.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stop whose timeout runs out names the deliveries the workers were still dispatching, so
/// an operator knows what the next start takes again.
#[test]
fn a_stop_that_runs_out_of_time_names_the_deliveries_still_being_handled() {
    let file = TempFile::new("stuck");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    actix_rt::System::new()
        .block_on(inbox.append(support::charge_entry("evt_stuck_1", 1_000, SECRET)))
        .unwrap();
    let endpoint =
        Endpoint::new(config(inbox, 1).with_inbox_stop_timeout(Duration::from_millis(50))).unwrap();
    wait_until("the handler starts", Duration::from_secs(10), || {
        runs_of("evt_stuck_1").len() == 1
    });
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    {
        let _logs_here = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
        drop(endpoint);
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("the stop's timeout ran out"), "{logs}");
    assert!(
        logs.contains("evt_stuck_1"),
        "the warning does not name the delivery: {logs}"
    );
    // The worker still finishes it; the file goes only after.
    wait_until("the delivery is handled", Duration::from_secs(10), || {
        rows(&file).0.iter().all(|(_, state, _)| state == "handled")
    });
}

/// `shutdown` with a timeout shorter than a running handler: the report names the delivery
/// the worker still holds; a second `shutdown` waits for the rest, which the worker finishes
/// and records.
#[test]
fn a_shutdown_shorter_than_a_running_handler_names_the_delivery_left() {
    let file = TempFile::new("short-stop");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let system = actix_rt::System::new();
    system
        .block_on(inbox.append(support::charge_entry("evt_stuck_short", 1_000, SECRET)))
        .unwrap();
    let endpoint = Endpoint::new(config(inbox, 1)).unwrap();
    wait_until("the handler starts", Duration::from_secs(10), || {
        runs_of("evt_stuck_short").len() == 1
    });
    let report = system.block_on(endpoint.shutdown(Duration::from_millis(50)));
    assert_eq!(report.left, ["evt_stuck_short"], "{report:?}");
    assert!(!report.is_clean());
    assert!(endpoint.health().stopping);
    // Asked again while the handler still runs: still not clean.
    let report = system.block_on(endpoint.shutdown(Duration::from_millis(10)));
    assert_eq!(report.left, ["evt_stuck_short"], "{report:?}");
    let report = system.block_on(endpoint.shutdown(Duration::from_secs(10)));
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(endpoint.health().workers_alive, 0);
    assert_eq!(
        rows(&file).0,
        [("evt_stuck_short".to_owned(), "handled".to_owned(), None)]
    );
    assert_eq!(runs_of("evt_stuck_short").len(), 1);
}

/// Idle workers wake on a stop at once, whatever their poll interval.
#[test]
fn an_idle_worker_with_an_hour_poll_stops_within_a_second_of_shutdown() {
    let file = TempFile::new("idle-stop");
    let (inbox, looks) = slow_recovery(SqliteInbox::open(&file.0).unwrap());
    let endpoint =
        Endpoint::new(config(inbox, 2).with_inbox_poll(Duration::from_secs(3600))).unwrap();
    wait_until("both workers look once", Duration::from_secs(10), || {
        looks.load(Ordering::SeqCst) >= 2
    });
    let started = Instant::now();
    let report = actix_rt::System::new().block_on(endpoint.shutdown(Duration::from_secs(30)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the stop took {:?}",
        started.elapsed()
    );
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(endpoint.health().workers_alive, 0);
    // The workers' lock went with them: a new endpoint's workers start on the file.
    let again = Endpoint::new(config(SqliteInbox::open(&file.0).unwrap(), 1)).unwrap();
    assert_eq!(again.health().workers_alive, 1);
}

/// A panic while a worker handles a delivery is recorded on that delivery as a failed
/// attempt (retried later), and a panic outside any delivery restarts the worker, counted in
/// the endpoint's health: no panic ends the workers while intake goes on answering 200.
#[test]
fn a_panic_in_a_worker_is_recorded_on_the_delivery_and_the_worker_goes_on() {
    let file = TempFile::new("panics");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let system = actix_rt::System::new();
    system
        .block_on(inbox.append(support::charge_entry("evt_panic_1", 1_000, SECRET)))
        .unwrap();
    // Panics once in `take` (outside any delivery) and once in `finish` (while a worker
    // handles a delivery), as a store with a bug would.
    let in_take = AtomicBool::new(true);
    let in_finish = AtomicBool::new(true);
    let faulty = HookedInbox::new(inbox.clone())
        .before_take(move || {
            if in_take.swap(false, Ordering::SeqCst) {
                panic!("a bug in take");
            }
        })
        .before_finish(move || {
            if in_finish.swap(false, Ordering::SeqCst) {
                panic!("a bug in finish");
            }
        });
    let endpoint = Endpoint::new(config(faulty, 1)).unwrap();
    wait_until(
        "the panicked attempt is recorded",
        Duration::from_secs(10),
        || {
            system
                .block_on(inbox.show("evt_panic_1", false))
                .unwrap()
                .is_some_and(|record| record.state == InboxState::Retrying)
        },
    );
    let record = system
        .block_on(inbox.show("evt_panic_1", false))
        .unwrap()
        .unwrap();
    assert_eq!(record.attempts, 1, "{record:?}");
    assert_eq!(record.last_errors[0].handler, "(worker)", "{record:?}");
    assert!(
        record.last_errors[0].error.contains("a bug in finish"),
        "{record:?}"
    );
    let health = endpoint.health();
    assert_eq!(health.worker_restarts, 1, "{health:?}");
    assert_eq!(health.workers_alive, 1, "{health:?}");
    assert!(health.is_ready(), "{health:?}");
    // The worker still takes deliveries after both panics.
    system
        .block_on(inbox.append(support::charge_entry("evt_panic_2", 2_000, SECRET)))
        .unwrap();
    wait_until(
        "a later delivery is handled",
        Duration::from_secs(10),
        || {
            system
                .block_on(inbox.show("evt_panic_2", false))
                .unwrap()
                .is_some_and(|record| record.state == InboxState::Handled)
        },
    );
}
