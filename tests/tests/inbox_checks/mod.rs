//! Inbox behaviour every inbox has, checked over real HTTP: 200 only once the delivery is in
//! the inbox, one entry per event id, retries on an injected clock, dead letters, replay,
//! listing and pruning. `inbox_checks!` turns them into one test each for a backend; the
//! handlers they drive are here too, so a test binary that includes this module has them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nextgen_events::WebhookConfig;
use nextgen_events::inbox::{
    Inbox, InboxOperator, InboxRecord, InboxState, InboxStats, ListFilter,
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

#[nextgen_event("charge.succeeded")]
async fn a_steady(event: Event<Charge>) {
    ran(&event.id, "a_steady");
}

#[nextgen_event("charge.succeeded")]
async fn b_flaky(event: Event<Charge>) -> Result<(), String> {
    ran(&event.id, "b_flaky");
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

/// The instant the inbox clock starts at (Unix milliseconds).
pub const START_MS: u64 = 1_800_000_000_000;

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
                payload_drift_is_kept, list_show_stats_and_replay, pruning_keeps_dead_letters);
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
    let started = Instant::now();
    while record.state != InboxState::Dead {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never given up: {record:?}"
        );
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
    let ids = |records: Vec<InboxRecord>| -> Vec<String> {
        records.into_iter().map(|record| record.event_id).collect()
    };
    let list = |state: Option<InboxState>, event_type: Option<&str>, limit: usize| {
        setup.inbox.list(ListFilter {
            state,
            event_type: event_type.map(str::to_owned),
            limit,
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
