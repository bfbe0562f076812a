//! Inbox behaviour every inbox has, checked over real HTTP: 200 only once the delivery is in
//! the inbox, one entry per event id, retries on an injected clock, dead letters, replay,
//! listing (pages after a cursor, by failing handler), the stats' oldest pending entry, the
//! hourly history where the inbox keeps one, a handler run again on purpose, and pruning. `inbox_checks!` turns them into one test each for a backend; the
//! handlers they drive are here too, so a test binary that includes this module has them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nextgen_events::WebhookConfig;
use nextgen_events::inbox::{
    HourCounts, Inbox, InboxEntry, InboxOperator, InboxRecord, InboxState, InboxStats, ListCursor,
    ListFilter, RecordedRerun, Rerun,
};
use nextgen_events::prelude::*;
use nextgen_events::sign;

use crate::support::{self, SECRET, TestServer, now, post, ran, runs};

/// How many more times `b_flaky` fails, per event id.
static FAILURES_LEFT: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

pub fn fail_times(id: &str, times: u32) {
    FAILURES_LEFT
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(id.to_owned(), times);
}

/// The event ids whose `b_flaky` waits, holding its worker, until they are released.
static HELD: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn hold(id: &str) {
    HELD.lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(id.to_owned());
}

fn release(id: &str) {
    HELD.lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .remove(id);
}

fn held(id: &str) -> bool {
    HELD.lock()
        .unwrap()
        .as_ref()
        .is_some_and(|held| held.contains(id))
}

#[nextgen_event("charge.succeeded")]
async fn a_steady(event: Event<Charge>) {
    ran(&event.id, "a_steady");
}

#[nextgen_event("charge.succeeded")]
async fn b_flaky(event: Event<Charge>) -> Result<(), String> {
    ran(&event.id, "b_flaky");
    while held(&event.id) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut failures = FAILURES_LEFT.lock().unwrap();
    match failures.get_or_insert_with(HashMap::new).get_mut(&event.id) {
        Some(left) if *left > 0 => {
            *left -= 1;
            Err("the ledger is down".to_owned())
        }
        _ => Ok(()),
    }
}

/// A signed `charge.succeeded` delivery: `(body, NextGen-Signature)`.
pub fn charge(id: &str, amount: serde_json::Value) -> (String, String) {
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": "charge.succeeded",
        "data": { "object": { "id": "ch_1", "amount": amount, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string();
    let signature = sign(body.as_bytes(), SECRET, now());
    (body, signature)
}

/// Waits (up to `patience` of real time) until `id`'s record satisfies `done`.
pub async fn until<I: Inbox + InboxOperator>(
    inbox: &I,
    id: &str,
    patience: Duration,
    done: impl Fn(&InboxRecord) -> bool,
) -> InboxRecord {
    let started = Instant::now();
    loop {
        let record = inbox.show(id, false).await.unwrap();
        if let Some(record) = record.as_ref().filter(|record| done(record)) {
            return record.clone();
        }
        assert!(started.elapsed() < patience, "{id} stuck at {record:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The instant the inbox clock starts at (Unix milliseconds): on the hour.
pub const START_MS: u64 = 1_800_000_000_000;

/// An hour, in milliseconds.
const HOUR_MS: u64 = 60 * 60 * 1000;

/// How many workers the setup's server runs.
pub const WORKERS: usize = 2;

/// An inbox on a clock the test moves, a server in inbox mode on it, and a second connection
/// to the same inbox, as another process would open it.
pub struct Setup<I> {
    pub inbox: I,
    pub other: I,
    pub server: TestServer,
    clock: Arc<AtomicU64>,
    /// What must outlive the test, such as the inbox's file.
    _keep: Box<dyn std::any::Any>,
}

impl<I: Inbox + InboxOperator + Clone> Setup<I> {
    /// A clock for the inbox to read, starting at [`START_MS`].
    pub fn clock() -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(START_MS))
    }

    /// Starts the server on `inbox`, which reads `clock`; `keep` lives as long as the setup.
    pub fn new(inbox: I, other: I, clock: Arc<AtomicU64>, keep: impl std::any::Any) -> Self {
        let config = WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_workers(WORKERS)
            .with_inbox_poll(Duration::from_millis(10));
        let server = TestServer::start(config, |_| {});
        Setup {
            inbox,
            other,
            server,
            clock,
            _keep: Box::new(keep),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock
            .fetch_add(u64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }

    pub async fn deliver(&self, id: &str, amount: serde_json::Value) -> support::Answer {
        let (body, signature) = charge(id, amount);
        post(&self.server.url("/webhook"), body, Some(&signature)).await
    }

    pub async fn until(&self, id: &str, done: impl Fn(&InboxRecord) -> bool) -> InboxRecord {
        until(&self.inbox, id, Duration::from_secs(10), done).await
    }

    /// Appends `id` straight to the inbox, received now, without the signature header the
    /// route keeps: the workers never dispatch it, it becomes a dead letter at once.
    pub async fn append_unsigned(&self, id: &str) {
        let entry = InboxEntry {
            event_id: id.to_owned(),
            event_type: "charge.succeeded".to_owned(),
            body: charge(id, 2000.into()).0.into_bytes(),
            signed_at: now(),
            received_at_ms: self.inbox.now_ms(),
            signature: None,
        };
        self.inbox.append(entry).await.unwrap();
    }
}

/// The ids of `records`, in order.
fn ids(records: &[InboxRecord]) -> Vec<String> {
    records
        .iter()
        .map(|record| record.event_id.clone())
        .collect()
}

/// Every record `filter` lists, read `per_page` at a time, each page after the last record of
/// the page before.
async fn pages<I: InboxOperator>(
    inbox: &I,
    filter: &ListFilter,
    per_page: usize,
) -> Vec<InboxRecord> {
    let mut all: Vec<InboxRecord> = Vec::new();
    loop {
        let page = inbox
            .list(ListFilter {
                after: all.last().map(ListCursor::after),
                limit: per_page,
                ..filter.clone()
            })
            .await
            .unwrap();
        assert!(
            page.len() <= per_page,
            "{} on a page of {per_page}",
            page.len()
        );
        let last = page.len() < per_page;
        all.extend(page);
        assert!(all.len() <= 100, "the pages do not end: {:?}", ids(&all));
        if last {
            return all;
        }
    }
}

/// One `#[actix_rt::test]` per check, for the setup `$make` gives: an expression (it may
/// `.await`) of type `Option<Setup<_>>`; `None` skips the test.
#[macro_export]
macro_rules! inbox_checks {
    ($make:expr) => {
        mod inbox_checks_tests {
            #[allow(unused_imports)]
            use super::*;
            $crate::inbox_checks!(@each $make;
                durable_and_deduplicated, retried_after_the_backoff, dead_letter_then_replay,
                payload_drift_is_kept, list_show_stats_and_replay, list_pages_after_a_cursor,
                list_by_failing_handler, stats_name_the_oldest_pending_entry,
                history_counts_each_hour, rerun_runs_a_succeeded_handler_once_more,
                pruning_keeps_dead_letters);
        }
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[actix_rt::test]
            async fn $check() {
                let Some(setup) = $make else { return };
                super::inbox_checks::$check(&setup).await;
            }
        )*
    };
}

pub async fn durable_and_deduplicated<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let id = "evt_inbox_durable";
    let answer = setup.deliver(id, 2000.into()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // Another connection, as another process would open it, finds it there, byte for byte.
    let other = &setup.other;
    let record = other
        .show(id, true)
        .await
        .unwrap()
        .expect("the acknowledged delivery");
    assert_eq!(record.body.unwrap(), charge(id, 2000.into()).0);
    setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    for _ in 0..2 {
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    assert_eq!(
        other.stats().await.unwrap(),
        InboxStats {
            handled: 1,
            ..InboxStats::default()
        }
    );
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), 1);
}

pub async fn retried_after_the_backoff<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let id = "evt_inbox_retry";
    fail_times(id, 1);
    assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    let failed = setup
        .until(id, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_errors.len(), 1, "{failed:?}");
    assert!(failed.last_errors[0].handler.ends_with("b_flaky"));
    assert!(failed.last_errors[0].error.contains("the ledger is down"));
    assert_eq!(failed.first_failed_at_ms, Some(START_MS));
    // Not before its time: 30 s, plus up to 20% jitter.
    let due = failed.due_at_ms.unwrap();
    assert!(
        (30_000..=36_000).contains(&(due - START_MS)),
        "due at {due}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs(id, "b_flaky"), 1, "retried before it was due");
    setup.advance(Duration::from_secs(37));
    let handled = setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    assert_eq!(handled.attempts, 2);
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), 2);
}

pub async fn dead_letter_then_replay<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let id = "evt_inbox_dead";
    fail_times(id, u32::MAX);
    assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    let mut record = setup
        .until(id, |record| {
            record.attempts == 1 && record.state != InboxState::Running
        })
        .await;
    // Bounded by rounds, not time: each waits (up to its own patience) for one attempt.
    let mut rounds = 0;
    while record.state != InboxState::Dead {
        rounds += 1;
        assert!(rounds < 500, "never given up: {record:?}");
        // Past the longest wait (1 h plus jitter): the next attempt is due.
        setup.advance(Duration::from_secs(75 * 60));
        let attempts = record.attempts;
        record = setup
            .until(id, |record| {
                record.attempts > attempts && record.state != InboxState::Running
            })
            .await;
    }
    assert!(record.attempts > 50, "{record:?}");
    assert_eq!(record.last_errors.len(), 1);
    assert!(record.last_errors[0].error.contains("the ledger is down"));
    let failing_for = record.finished_at_ms.unwrap() - record.first_failed_at_ms.unwrap();
    assert!(failing_for >= 3 * 24 * 3600 * 1000, "{record:?}");
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(setup.inbox.stats().await.unwrap().dead, 1);

    // The fix ships; the dead letter is replayed: only the failed handler runs.
    fail_times(id, 0);
    let flaky_runs = runs(id, "b_flaky");
    assert_eq!(setup.inbox.replay_dead(None).await.unwrap().replayed, [id]);
    let handled = setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    assert_eq!(handled.attempts, 1);
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), flaky_runs + 1);
    let again = setup.inbox.replay_dead(None).await.unwrap();
    assert!(
        again.replayed.is_empty() && again.unknown.is_empty(),
        "{again:?}"
    );
}

pub async fn payload_drift_is_kept<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let id = "evt_inbox_drift";
    // API drift: the amount is a string. The envelope is fine, so the delivery is kept.
    assert_eq!(setup.deliver(id, "2000".into()).await.status, 200);
    let record = setup
        .until(id, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(record.last_errors[0].handler, "(payload)");
    assert!(
        record.last_errors[0].error.contains("data.object.amount"),
        "{record:?}"
    );
    assert_eq!(runs(id, "a_steady"), 0);
    // Not an event at all: refused, nothing kept.
    let answer = post(
        &setup.server.url("/webhook"),
        "[]",
        Some(&sign(b"[]", SECRET, now())),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_event"));
    let stats = setup.inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.retrying), (0, 1), "{stats:?}");
}

pub async fn list_show_stats_and_replay<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let signed_from = now();
    for n in 0..3 {
        let id = format!("evt_inbox_list_{n}");
        assert_eq!(setup.deliver(&id, 2000.into()).await.status, 200);
        setup
            .until(&id, |record| record.state == InboxState::Handled)
            .await;
        setup.advance(Duration::from_secs(1));
    }
    let drift = "evt_inbox_list_drift";
    assert_eq!(setup.deliver(drift, "2000".into()).await.status, 200);
    setup
        .until(drift, |record| record.state == InboxState::Retrying)
        .await;
    // Every way of reading an entry gives the time its signature was made, kept from intake.
    let signed = signed_from..=now();
    let listed = setup.inbox.list(ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 4);
    for record in &listed {
        assert!(signed.contains(&record.signed_at), "listed {record:?}");
    }
    let ids = |records: Vec<InboxRecord>| -> Vec<String> {
        records.into_iter().map(|record| record.event_id).collect()
    };
    let list = |state: Option<InboxState>, event_type: Option<&str>, limit: usize| {
        setup.inbox.list(ListFilter {
            state,
            event_type: event_type.map(str::to_owned),
            limit,
            ..ListFilter::default()
        })
    };
    assert_eq!(
        ids(list(Some(InboxState::Handled), None, 2).await.unwrap()),
        ["evt_inbox_list_2", "evt_inbox_list_1"]
    );
    assert_eq!(
        ids(list(None, None, 0).await.unwrap()),
        [
            drift,
            "evt_inbox_list_2",
            "evt_inbox_list_1",
            "evt_inbox_list_0"
        ]
    );
    assert_eq!(
        ids(
            list(Some(InboxState::Retrying), Some("charge.succeeded"), 10)
                .await
                .unwrap()
        ),
        [drift]
    );
    assert!(
        list(None, Some("refund.created"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            retrying: 1,
            handled: 3,
            ..InboxStats::default()
        }
    );
    let shown = setup
        .inbox
        .show("evt_inbox_list_1", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.received_at_ms, START_MS + 1_000);
    assert!(signed.contains(&shown.signed_at), "shown {shown:?}");
    assert_eq!(shown.event_type, "charge.succeeded");
    assert_eq!(shown.attempts, 1);
    assert_eq!(shown.due_at_ms, None);
    assert!(shown.finished_at_ms.is_some());
    assert_eq!(shown.body, None);
    assert!(
        setup
            .inbox
            .show("evt_unknown", true)
            .await
            .unwrap()
            .is_none()
    );

    let replayed = setup
        .inbox
        .replay(&["evt_inbox_list_0".to_owned(), "evt_unknown".to_owned()])
        .await
        .unwrap();
    assert_eq!(replayed, ["evt_inbox_list_0"]);
    // Replayed, but every handler had succeeded: nothing runs again.
    let record = setup
        .until("evt_inbox_list_0", |record| {
            record.state == InboxState::Handled
        })
        .await;
    assert_eq!(record.attempts, 1);
    assert_eq!(runs("evt_inbox_list_0", "a_steady"), 1);
    assert_eq!(setup.inbox.stats().await.unwrap().handled, 3);
}

pub async fn list_pages_after_a_cursor<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    // Three receipt times a second apart, several entries at one time (the clock stands still
    // between them), with ids whose byte order is not their alphabetical one.
    let batches: [&[&str]; 3] = [
        &["evt_page_a", "evt_page_B", "evt_page_c"],
        &["evt_page_d"],
        &["evt_page_F", "evt_page_e", "evt_page_-g", "evt_page_h"],
    ];
    let mut expected: Vec<(u64, String)> = Vec::new();
    for (second, batch) in (0..).zip(batches) {
        for id in batch {
            assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
            expected.push((START_MS + second * 1000, (*id).to_owned()));
        }
        setup.advance(Duration::from_secs(1));
    }
    for (_, id) in &expected {
        setup
            .until(id, |record| record.state == InboxState::Handled)
            .await;
    }
    // Newest first; at one time, ids descending, byte by byte.
    expected.sort_by(|a, b| b.cmp(a));
    let expected_ids: Vec<String> = expected.iter().map(|(_, id)| id.clone()).collect();
    let all = setup
        .inbox
        .list(ListFilter {
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), expected_ids);
    for pair in all.windows(2) {
        let cursor = ListCursor::after(&pair[0]);
        assert!(
            cursor.precedes(pair[1].received_at_ms, &pair[1].event_id),
            "{} listed before {}",
            pair[0].event_id,
            pair[1].event_id
        );
    }

    // Page by page, every entry once, in the same order, whatever the page's size and
    // wherever a page ends among entries received at one time.
    let filters = [
        ListFilter::default(),
        ListFilter {
            state: Some(InboxState::Handled),
            ..ListFilter::default()
        },
        ListFilter {
            event_type: Some("charge.succeeded".to_owned()),
            ..ListFilter::default()
        },
    ];
    for filter in &filters {
        for per_page in [1, 2, 3, 7, 8] {
            let paged = pages(&setup.inbox, filter, per_page).await;
            assert_eq!(ids(&paged), expected_ids, "{per_page} a page, {filter:?}");
        }
    }

    // A cursor on no entry: what comes after it, at its time and before.
    let cursor = ListCursor {
        received_at_ms: START_MS + 2000,
        event_id: "evt_page_f".to_owned(),
    };
    let after: Vec<String> = expected
        .iter()
        .filter(|(at, id)| cursor.precedes(*at, id))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(after[..3], ["evt_page_e", "evt_page_F", "evt_page_-g"]);
    let listed = setup
        .inbox
        .list(ListFilter {
            after: Some(cursor),
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&listed), after);
    // After the oldest entry, and in a state none is in: nothing.
    let oldest = ListCursor::after(all.last().unwrap());
    for state in [None, Some(InboxState::Dead)] {
        let listed = setup
            .inbox
            .list(ListFilter {
                state,
                after: Some(oldest.clone()),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert!(listed.is_empty(), "{listed:?}");
    }
}

pub async fn list_by_failing_handler<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let (flaky, drift, unsigned, steady) = (
        "evt_handler_flaky",
        "evt_handler_drift",
        "evt_handler_unsigned",
        "evt_handler_steady",
    );
    fail_times(flaky, 1);
    assert_eq!(setup.deliver(flaky, 2000.into()).await.status, 200);
    let failed = setup
        .until(flaky, |record| record.state == InboxState::Retrying)
        .await;
    // The handler's name as the inbox keeps it (its path).
    let flaky_handler = failed.last_errors[0].handler.clone();
    assert!(flaky_handler.ends_with("b_flaky"), "{flaky_handler}");
    setup.advance(Duration::from_secs(1));
    assert_eq!(setup.deliver(drift, "2000".into()).await.status, 200);
    setup
        .until(drift, |record| record.state == InboxState::Retrying)
        .await;
    setup.advance(Duration::from_secs(1));
    assert_eq!(setup.deliver(steady, 2000.into()).await.status, 200);
    setup
        .until(steady, |record| record.state == InboxState::Handled)
        .await;
    setup.advance(Duration::from_secs(1));
    setup.append_unsigned(unsigned).await;
    setup
        .until(unsigned, |record| record.state == InboxState::Dead)
        .await;
    // The flaky one succeeds on its retry, and keeps its last errors.
    setup.advance(Duration::from_secs(37));
    setup
        .until(flaky, |record| record.state == InboxState::Handled)
        .await;

    let by = |handler: &str, state: Option<InboxState>, after: Option<ListCursor>| {
        setup.inbox.list(ListFilter {
            state,
            handler: Some(handler.to_owned()),
            after,
            limit: 10,
            ..ListFilter::default()
        })
    };
    assert_eq!(ids(&by(&flaky_handler, None, None).await.unwrap()), [flaky]);
    assert_eq!(
        ids(&by(&flaky_handler, Some(InboxState::Handled), None)
            .await
            .unwrap()),
        [flaky]
    );
    assert_eq!(ids(&by("(payload)", None, None).await.unwrap()), [drift]);
    assert_eq!(
        ids(&by("(signature)", Some(InboxState::Dead), None)
            .await
            .unwrap()),
        [unsigned]
    );
    assert!(
        by("(signature)", Some(InboxState::Retrying), None)
            .await
            .unwrap()
            .is_empty()
    );
    // A cursor applies with the handler: the drift is newer than the flaky one.
    let drift_record = setup.inbox.show(drift, false).await.unwrap().unwrap();
    let after_drift = ListCursor::after(&drift_record);
    assert_eq!(
        ids(&by(&flaky_handler, None, Some(after_drift.clone()))
            .await
            .unwrap()),
        [flaky]
    );
    assert!(
        by("(payload)", None, Some(after_drift))
            .await
            .unwrap()
            .is_empty()
    );
    // Only a whole name matches: not a part of it, not another handler's text, not a name
    // that quotes the stored JSON; a handler that never failed has nothing listed.
    let steady_handler = flaky_handler.replace("b_flaky", "a_steady");
    for other in [
        "b_flaky",
        "(payload",
        "payload",
        "\"handler\":\"(payload)\"",
        "the ledger is down",
        steady_handler.as_str(),
    ] {
        let listed = by(other, None, None).await.unwrap();
        assert!(listed.is_empty(), "{other}: {:?}", ids(&listed));
    }
}

pub async fn stats_name_the_oldest_pending_entry<I: Inbox + InboxOperator + Clone>(
    setup: &Setup<I>,
) {
    assert_eq!(setup.inbox.stats().await.unwrap(), InboxStats::default());
    // A retrying entry, older than the pending ones: it had its first attempt.
    let retrying = "evt_oldest_retrying";
    fail_times(retrying, 1);
    assert_eq!(setup.deliver(retrying, 2000.into()).await.status, 200);
    setup
        .until(retrying, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            retrying: 1,
            ..InboxStats::default()
        }
    );
    // Every worker held by a delivery whose handler waits, so the next ones wait for their
    // first attempt.
    setup.advance(Duration::from_secs(1));
    let holders: Vec<String> = (0..WORKERS)
        .map(|n| format!("evt_oldest_holder_{n}"))
        .collect();
    for id in &holders {
        hold(id);
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    for id in &holders {
        setup
            .until(id, |record| record.state == InboxState::Running)
            .await;
    }
    let pending = ["evt_oldest_pending_0", "evt_oldest_pending_1"];
    for id in pending {
        setup.advance(Duration::from_secs(1));
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    // Read before the holders are released (an assertion failing first would leave them
    // held), through this connection and through another.
    let stats = setup.inbox.stats().await.unwrap();
    let others = setup.other.stats().await.unwrap();
    for id in &holders {
        release(id);
    }
    assert_eq!(
        stats,
        InboxStats {
            pending: 2,
            retrying: 1,
            running: u64::try_from(WORKERS).unwrap(),
            oldest_pending_at_ms: Some(START_MS + 2000),
            ..InboxStats::default()
        }
    );
    assert_eq!(others, stats);
    for id in holders.iter().map(String::as_str).chain(pending) {
        setup
            .until(id, |record| record.state == InboxState::Handled)
            .await;
    }
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            retrying: 1,
            handled: 4,
            ..InboxStats::default()
        }
    );
}

pub async fn history_counts_each_hour<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let Some(history) = setup.inbox.history() else {
        return;
    };
    assert_eq!(START_MS % HOUR_MS, 0);
    // The first hour: one handled, one that fails once, one dead letter at once.
    let (handled, retried, dead, later) = (
        "evt_history_handled",
        "evt_history_retried",
        "evt_history_dead",
        "evt_history_later",
    );
    assert_eq!(setup.deliver(handled, 2000.into()).await.status, 200);
    setup
        .until(handled, |record| record.state == InboxState::Handled)
        .await;
    fail_times(retried, 1);
    assert_eq!(setup.deliver(retried, 2000.into()).await.status, 200);
    setup
        .until(retried, |record| record.state == InboxState::Retrying)
        .await;
    setup.append_unsigned(dead).await;
    setup
        .until(dead, |record| record.state == InboxState::Dead)
        .await;
    // Five minutes into the second hour: the retry is due and succeeds; one more arrives.
    setup.advance(Duration::from_secs(65 * 60));
    setup
        .until(retried, |record| record.state == InboxState::Handled)
        .await;
    assert_eq!(setup.deliver(later, 2000.into()).await.status, 200);
    setup
        .until(later, |record| record.state == InboxState::Handled)
        .await;

    let first = HourCounts {
        hour_start_ms: START_MS,
        received: 3,
        handled: 1,
        // The retried one and the dead letter, which failed for the first time when it died.
        retried: 2,
        dead: 1,
    };
    let second = HourCounts {
        hour_start_ms: START_MS + HOUR_MS,
        received: 1,
        handled: 2,
        retried: 0,
        dead: 0,
    };
    let third = HourCounts {
        hour_start_ms: START_MS + 2 * HOUR_MS,
        ..HourCounts::default()
    };
    // From within the first hour: rounded down to it; the hour after the last entry counted
    // as zeros.
    assert_eq!(
        history.hourly(START_MS + 123_456, 3).await.unwrap(),
        [first, second, third]
    );
    assert_eq!(
        history.hourly(START_MS + HOUR_MS, 1).await.unwrap(),
        [second]
    );
    assert_eq!(
        history.hourly(START_MS - HOUR_MS, 2).await.unwrap(),
        [
            HourCounts {
                hour_start_ms: START_MS - HOUR_MS,
                ..HourCounts::default()
            },
            first
        ]
    );
    assert!(history.hourly(START_MS, 0).await.unwrap().is_empty());
}

/// `rerun` runs a handler that had succeeded exactly once more and no other handler, records
/// it in the entry, and refuses (changing nothing) an unknown id, a handler that is not done
/// for the entry (naming those that are) and an entry a worker holds.
pub async fn rerun_runs_a_succeeded_handler_once_more<I: Inbox + InboxOperator + Clone>(
    setup: &Setup<I>,
) {
    // The handlers' names as the inbox keeps them (their paths).
    let steady = format!("{}::a_steady", module_path!());
    let flaky = format!("{}::b_flaky", module_path!());
    let id = "evt_inbox_rerun";
    assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    let handled = setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    assert!(handled.reruns.is_empty(), "{handled:?}");
    assert_eq!((runs(id, "a_steady"), runs(id, "b_flaky")), (1, 1));

    // Refused, nothing changed: an unknown id, a mistyped name (the done ones named).
    assert_eq!(
        setup
            .inbox
            .rerun("evt_inbox_rerun_unknown", &steady)
            .await
            .unwrap(),
        Rerun::NoEntry
    );
    assert_eq!(
        setup.inbox.rerun(id, "a_stedy").await.unwrap(),
        Rerun::NotDone {
            done: vec![steady.clone(), flaky.clone()]
        }
    );
    assert_eq!(setup.inbox.show(id, false).await.unwrap().unwrap(), handled);

    // Put back: the steady handler runs once more, the flaky one not at all.
    setup.advance(Duration::from_secs(1));
    let asked_at = START_MS + 1000;
    assert_eq!(
        setup.inbox.rerun(id, &steady).await.unwrap(),
        Rerun::PutBack
    );
    let rerun = setup
        .until(id, |record| {
            record.state == InboxState::Handled && record.finished_at_ms == Some(asked_at)
        })
        .await;
    assert_eq!(rerun.attempts, 1);
    assert_eq!((runs(id, "a_steady"), runs(id, "b_flaky")), (2, 1));
    let recorded = vec![RecordedRerun {
        handler: steady.clone(),
        at_ms: asked_at,
    }];
    assert_eq!(rerun.reruns, recorded);
    // Kept with the entry: another connection's `show` and `list` have it.
    assert_eq!(
        setup.other.show(id, false).await.unwrap().unwrap().reruns,
        recorded
    );
    let listed = setup.other.list(ListFilter::default()).await.unwrap();
    let listed = listed.iter().find(|record| record.event_id == id).unwrap();
    assert_eq!(listed.reruns, recorded);
    // Its marker is back: a plain replay runs nothing again.
    setup.advance(Duration::from_secs(1));
    assert_eq!(setup.inbox.replay(&[id.to_owned()]).await.unwrap(), [id]);
    setup
        .until(id, |record| {
            record.state == InboxState::Handled && record.finished_at_ms == Some(asked_at + 1000)
        })
        .await;
    assert_eq!((runs(id, "a_steady"), runs(id, "b_flaky")), (2, 1));

    // A handler that failed is not done: a replay is what runs it; the done one is named.
    let failed = "evt_inbox_rerun_failed";
    fail_times(failed, 1);
    assert_eq!(setup.deliver(failed, 2000.into()).await.status, 200);
    let retrying = setup
        .until(failed, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(
        setup.inbox.rerun(failed, &flaky).await.unwrap(),
        Rerun::NotDone {
            done: vec![steady.clone()]
        }
    );
    assert_eq!(
        setup.inbox.show(failed, false).await.unwrap().unwrap(),
        retrying
    );

    // Held by a worker: refused, whatever the handler.
    let running = "evt_inbox_rerun_running";
    hold(running);
    assert_eq!(setup.deliver(running, 2000.into()).await.status, 200);
    setup
        .until(running, |record| record.state == InboxState::Running)
        .await;
    let answer = setup.inbox.rerun(running, &steady).await;
    release(running);
    assert_eq!(answer.unwrap(), Rerun::Running);
    let handled = setup
        .until(running, |record| record.state == InboxState::Handled)
        .await;
    assert!(handled.reruns.is_empty(), "{handled:?}");
    assert_eq!(
        (runs(running, "a_steady"), runs(running, "b_flaky")),
        (1, 1)
    );
}

pub async fn pruning_keeps_dead_letters<I: Inbox + InboxOperator + Clone>(setup: &Setup<I>) {
    let (kept, dead) = ("evt_inbox_prune_kept", "evt_inbox_prune_dead");
    fail_times(dead, u32::MAX);
    for id in [kept, dead] {
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    setup
        .until(kept, |record| record.state == InboxState::Handled)
        .await;
    setup
        .until(dead, |record| record.state == InboxState::Retrying)
        .await;
    // The dead letter: given up after three days (moved on by hand, one attempt each hour);
    // within a bound, so a clock that never moves fails here instead of hanging.
    let mut rounds = 0;
    while setup.inbox.show(dead, false).await.unwrap().unwrap().state != InboxState::Dead {
        rounds += 1;
        assert!(
            rounds < 500,
            "not a dead letter after {rounds} hours and a quarter"
        );
        setup.advance(Duration::from_secs(75 * 60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = setup.inbox.now_ms();
    assert_eq!(
        setup
            .inbox
            .prune(now - 31 * 24 * 3600 * 1000)
            .await
            .unwrap(),
        0
    );
    setup.advance(Duration::from_secs(31 * 24 * 3600));
    assert_eq!(setup.inbox.retention(), Duration::from_secs(30 * 24 * 3600));
    let retention = u64::try_from(setup.inbox.retention().as_millis()).unwrap();
    let pruned = setup
        .inbox
        .prune(setup.inbox.now_ms() - retention)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(setup.inbox.show(kept, false).await.unwrap().is_none());
    assert_eq!(
        setup.inbox.show(dead, false).await.unwrap().unwrap().state,
        InboxState::Dead
    );
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            dead: 1,
            ..InboxStats::default()
        }
    );
    let all = setup.inbox.list(ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
}
