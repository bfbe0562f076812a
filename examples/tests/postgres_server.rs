//! The example server on PostgreSQL (`NEXTGEN_INBOX_URL=postgres://...`,
//! `NEXTGEN_STORE_URL=postgres://...`): the real `server` binary, several replicas on one
//! database and schema.
//!
//! - Three replicas share one inbox; 500 distinct events are each delivered to all three at
//!   once: every delivery is answered 200, all 500 are handled, and every handler ran once per
//!   event.
//! - A replica SIGKILLed while its workers hold entries: another replica finishes them once
//!   their lease lapses, and nothing else runs twice.
//! - Inline mode with a PostgreSQL store: two replicas each given every event run each handler
//!   once.
//!
//! Each test uses a fresh schema. Needs the feature `postgres-tests` and
//! `NEXTGEN_TEST_POSTGRES_URL` (`.ci/run` starts a server and sets it); without the variable
//! the tests fail, unless `NEXTGEN_SKIP_POSTGRES_TESTS=1` asks to skip them.
//!
//! ```text
//! NEXTGEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/nextgen_test cargo test -p nextgen-examples --features postgres-tests --test postgres_server
//! ```

#![cfg(feature = "postgres-tests")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nextgen_events::backend::{Access, BackendUrl, open_inbox};
use nextgen_events::inbox::{InboxOperator, InboxState, InboxStats, ListFilter};
use nextgen_events::sign;
use nextgen_events::testing::sample;
use nextgen_examples::TEST_SECRET;
use nextgen_tests::services::{TempFile, postgres_url, unique_schema};
use support::{Server, until_handled};

/// How many senders deliver at once.
const SENDERS: usize = 12;

/// `url` with `?schema=S` (or `&schema=S` when it has parameters already).
fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}schema={schema}")
}

/// The inbox at `url` as a tool sees it (it must be there), on a runtime of its own.
struct Looker {
    runtime: tokio::runtime::Runtime,
    inbox: Arc<dyn InboxOperator>,
}

impl Looker {
    fn new(url: &str) -> Looker {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = BackendUrl::parse(url).unwrap();
        let inbox = runtime
            .block_on(open_inbox(&url, Access::Inspect))
            .unwrap()
            .operator();
        Looker { runtime, inbox }
    }

    fn stats(&self) -> InboxStats {
        self.runtime.block_on(self.inbox.stats()).unwrap()
    }

    /// The ids of the entries in `state`.
    fn ids(&self, state: InboxState) -> BTreeSet<String> {
        let filter = ListFilter {
            state: Some(state),
            limit: 10_000,
            ..ListFilter::default()
        };
        let records = self.runtime.block_on(self.inbox.list(filter)).unwrap();
        records.into_iter().map(|record| record.event_id).collect()
    }

    /// How many times `id` was taken.
    fn attempts(&self, id: &str) -> u32 {
        let record = self.runtime.block_on(self.inbox.show(id, false));
        record.unwrap().unwrap().attempts
    }
}

/// The signed `charge.succeeded` delivery of event `id`, whose charge is `charge` (so that the
/// `charge.succeeded` handler's log line names the event too): its body and signature header.
fn delivery(id: &str, charge: &str) -> (String, String) {
    let mut event = sample("charge.succeeded").unwrap();
    event["id"] = id.into();
    event["data"]["object"]["id"] = charge.into();
    let body = event.to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = sign(body.as_bytes(), TEST_SECRET, now);
    (body, header)
}

/// The charge of event number `n`.
fn charge_of(n: usize) -> String {
    format!("ch_pg_{n:03}")
}

/// Posts every `(url, n)` of `work` (event `ids[n]`), `SENDERS` at a time; panics on any
/// answer but 200.
fn deliver_all(ids: &[String], work: &[(String, usize)]) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..SENDERS {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                while let Some((url, n)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (body, header) = delivery(&ids[*n], &charge_of(*n));
                    let response = client
                        .post(url)
                        .header("NextGen-Signature", header)
                        .body(body)
                        .send()
                        .unwrap();
                    let status = response.status().as_u16();
                    assert_eq!(status, 200, "{} to {url}: {:?}", ids[*n], response.text());
                }
            });
        }
    });
}

/// Runs per event id in the run log, and per replica tag.
fn run_log(path: &Path) -> (HashMap<String, usize>, BTreeMap<String, usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut per_event = HashMap::new();
    let mut per_tag = BTreeMap::new();
    for line in text.lines() {
        let (tag, id) = line.split_once(' ').unwrap();
        *per_event.entry(id.to_owned()).or_default() += 1;
        *per_tag.entry(tag.to_owned()).or_default() += 1;
    }
    (per_event, per_tag)
}

/// How many output lines contain each of `needles`.
fn count_lines(lines: &[String], needles: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    needles
        .map(|needle| {
            let runs = lines.iter().filter(|line| line.contains(&needle)).count();
            (needle, runs)
        })
        .collect()
}

/// The example server in inbox mode on the PostgreSQL inbox at `url`.
fn replica(url: &str, workers: &str, run_log: &Path, tag: &str, extra: &[(&str, &str)]) -> Server {
    let log = run_log.display().to_string();
    let mut environment = vec![
        ("NEXTGEN_INBOX_URL", url),
        ("NEXTGEN_INBOX_WORKERS", workers),
        ("NEXTGEN_RUN_LOG", log.as_str()),
        ("NEXTGEN_RUN_TAG", tag),
    ];
    environment.extend_from_slice(extra);
    Server::start(&environment)
}

#[test]
fn three_replicas_share_one_inbox_and_every_handler_runs_once_per_event() {
    let Some(database) = postgres_url("the example server's replicas on a PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("three_replicas");
    let url = with_schema(&database, &schema);
    let log = TempFile::new("pg-three-replicas-runs");
    let started = Instant::now();

    // Started together: the first start's migration runs once, under its advisory lock.
    let replicas: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|tag| {
                let (url, log) = (&url, &log.0);
                scope.spawn(move || {
                    replica(url, "2", log, tag, &[("NEXTGEN_HANDLER_DELAY_MS", "0")])
                })
            })
            .collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    });
    for server in &replicas {
        assert!(
            server
                .startup
                .iter()
                .any(|line| line.contains("inbox mode")
                    && line.contains(&format!("?schema={schema} "))),
            "{}",
            server.startup.join("\n")
        );
    }
    let up = started.elapsed();

    // Each event to all three replicas, one right after the other: the three deliveries of an
    // event race each other into the inbox.
    let ids: Vec<String> = (0..500).map(|n| format!("evt_pg_three_{n:03}")).collect();
    let work: Vec<(String, usize)> = (0..ids.len())
        .flat_map(|n| replicas.iter().map(move |server| (server.url.clone(), n)))
        .collect();
    deliver_all(&ids, &work);
    let delivered = started.elapsed();

    let inbox = Looker::new(&url);
    until_handled(500, Duration::from_secs(60), || inbox.stats());
    let handled = started.elapsed();

    // Stopped gracefully, so that every output line is read.
    let mut lines = Vec::new();
    for server in replicas {
        lines.extend(server.terminate());
    }
    let (runs, per_replica) = run_log(&log.0);
    assert_eq!(runs.len(), 500, "{runs:?}");
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "the audit handler's effect for {id}"
        );
    }
    let audits = count_lines(
        &lines,
        ids.iter().map(|id| format!("audit: {id} charge.succeeded")),
    );
    assert!(audits.values().all(|runs| *runs == 1), "{audits:?}");
    let charges = count_lines(
        &lines,
        (0..ids.len()).map(|n| format!("charge {} succeeded", charge_of(n))),
    );
    assert!(charges.values().all(|runs| *runs == 1), "{charges:?}");
    // One replica could in principle take everything; three that all sat idle would show a
    // sharing problem.
    assert!(
        per_replica.len() >= 2,
        "one replica handled all: {per_replica:?}"
    );
    println!(
        "replicas up in {up:?}; 1,500 deliveries answered by {delivered:?}; 500 handled by {handled:?}; runs per replica {per_replica:?}"
    );
}

#[test]
fn a_replica_killed_while_holding_entries_is_finished_by_another_after_the_lease() {
    const LEASE_MS: u64 = 2_000;
    const HELD: usize = 2;
    let Some(database) = postgres_url("a killed replica's entries on a PostgreSQL inbox") else {
        return;
    };
    let url = with_schema(&database, &unique_schema("killed_replica"));
    let log = TempFile::new("pg-killed-replica-runs");
    let lease = LEASE_MS.to_string();
    let ids: Vec<String> = (0..40).map(|n| format!("evt_pg_kill_{n:03}")).collect();
    let started = Instant::now();

    // The victim: two workers whose handlers take far longer than the test, renewing their
    // leases all the while.
    let victim = replica(
        &url,
        "2",
        &log.0,
        "victim",
        &[
            ("NEXTGEN_LEASE_MS", &lease),
            ("NEXTGEN_HANDLER_DELAY_MS", "60000"),
        ],
    );
    let work: Vec<(String, usize)> = (0..ids.len()).map(|n| (victim.url.clone(), n)).collect();
    deliver_all(&ids, &work);
    // Both of its workers are in a handler: each holds one entry.
    let mut victim_lines = Vec::new();
    victim.collect_until(&mut victim_lines, |lines| {
        lines
            .iter()
            .filter(|line| line.contains("audit: evt_pg_kill_"))
            .count()
            >= HELD
    });

    // The rescuer takes everything else at once, and what the victim holds only after the
    // lease: the victim is alive until then.
    let rescuer = replica(
        &url,
        "2",
        &log.0,
        "rescuer",
        &[("NEXTGEN_LEASE_MS", &lease)],
    );
    let inbox = Looker::new(&url);
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox.stats().handled < (ids.len() - HELD) as u64 {
        assert!(Instant::now() < deadline, "{:?}", inbox.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = inbox.ids(InboxState::Running);
    assert_eq!(held.len(), HELD, "{:?}", inbox.stats());
    // Well past a lease: the victim kept renewing them.
    std::thread::sleep(Duration::from_millis(LEASE_MS + LEASE_MS / 2));
    assert_eq!(inbox.ids(InboxState::Running), held, "{:?}", inbox.stats());

    // The clock read before the kill, so a slow kill cannot make a takeover look early.
    let killed = Instant::now();
    victim_lines.extend(victim.kill());
    // Not taken again at once: the lease the victim last renewed runs out first.
    std::thread::sleep(Duration::from_millis(LEASE_MS / 4));
    let running = inbox.ids(InboxState::Running);
    if killed.elapsed() < Duration::from_millis(LEASE_MS) {
        assert_eq!(running, held, "{:?}", inbox.stats());
    }
    until_handled(ids.len() as u64, Duration::from_secs(30), || inbox.stats());
    let taken_over = killed.elapsed();
    assert!(
        taken_over >= Duration::from_millis(LEASE_MS / 2),
        "taken over {taken_over:?} after the kill, within a lease of {LEASE_MS} ms"
    );
    let rescuer_lines = rescuer.terminate();

    // Every acknowledged event handled; each effect once: the victim's runs were cut before
    // theirs, and the rescuer ran each held entry once more.
    let (runs, per_replica) = run_log(&log.0);
    for id in &ids {
        assert_eq!(runs.get(id), Some(&1), "{id}: {runs:?}");
    }
    assert_eq!(per_replica.get("victim"), None, "{per_replica:?}");
    for id in &ids {
        let expected = if held.contains(id) { 2 } else { 1 };
        assert_eq!(inbox.attempts(id), expected, "{id} taken");
    }
    // Started runs: once each, and once more for what the victim held, no other.
    let lines = [victim_lines, rescuer_lines].concat();
    let started_runs = count_lines(&lines, ids.iter().map(|id| format!("audit: {id} ")));
    let again: BTreeSet<String> = started_runs
        .iter()
        .filter(|(_, runs)| **runs > 1)
        .map(|(needle, _)| needle["audit: ".len()..].trim().to_owned())
        .collect();
    assert!(
        started_runs.values().all(|runs| (1..=2).contains(runs)),
        "{started_runs:?}"
    );
    assert!(
        again.is_subset(&held),
        "ran twice: {again:?}; held: {held:?}"
    );
    assert!(again.len() <= HELD, "{again:?}");
    println!(
        "held at the kill: {held:?}; taken over {taken_over:?} after it (lease {LEASE_MS} ms); whole test {:?}",
        started.elapsed()
    );
}

#[test]
fn inline_replicas_on_one_postgres_store_run_each_handler_once() {
    let Some(database) = postgres_url("the example server on a PostgreSQL store") else {
        return;
    };
    let schema = unique_schema("inline_store");
    let url = with_schema(&database, &schema);
    let log = TempFile::new("pg-inline-runs");
    let log_path = log.0.display().to_string();
    let start = |tag: &str| {
        Server::start(&[
            ("NEXTGEN_STORE_URL", &url),
            ("NEXTGEN_RUN_LOG", &log_path),
            ("NEXTGEN_RUN_TAG", tag),
        ])
    };
    let a = start("a");
    let b = start("b");
    assert!(
        a.startup
            .iter()
            .any(|line| line.contains("idempotency store")
                && line.contains(&format!("?schema={schema},"))),
        "{}",
        a.startup.join("\n")
    );

    // Every event to both: the second replica finds the first one's done markers. (Both at
    // once would get a 409 `event_in_progress` from the one that finds the other's claim.)
    let ids: Vec<String> = (0..60).map(|n| format!("evt_pg_inline_{n:03}")).collect();
    for server in [&a, &b] {
        let work: Vec<(String, usize)> = (0..ids.len()).map(|n| (server.url.clone(), n)).collect();
        deliver_all(&ids, &work);
    }

    let mut lines = a.terminate();
    lines.extend(b.terminate());
    let (runs, _) = run_log(&log.0);
    for id in &ids {
        assert_eq!(runs.get(id), Some(&1), "{id}: {runs:?}");
    }
    let audits = count_lines(
        &lines,
        ids.iter().map(|id| format!("audit: {id} charge.succeeded")),
    );
    assert!(audits.values().all(|runs| *runs == 1), "{audits:?}");
}
