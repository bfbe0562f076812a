//! `latest_only` handlers: per customer, only a state newer than the newest one handled is
//! applied; older events are acknowledged without running the handler. Through dispatch
//! (`receive`), over real HTTP, and in inbox mode.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore, OwnerToken, StoreFuture};
use nextgen_events::prelude::*;
use nextgen_events::{Context, DispatchReport, Endpoint, sign};
use nextgen_events::{WebhookConfig, WebhookError};
use support::{SECRET, TestServer, now, post};

/// What `sync_customer` applied: `(customer id, event id, name)`, in order.
static APPLIED: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());
/// Event ids whose first run of `sync_customer` fails.
static FAIL_ONCE: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// `sync_customer` runs at once for `cus_race`, and the most seen.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
static MOST_INSIDE: AtomicUsize = AtomicUsize::new(0);
/// Every run of `audit_customer`: `(customer id, event id)`.
static AUDITED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

#[nextgen_event("customer.updated", latest_only, name = "crm.sync_customer")]
async fn sync_customer(event: Event<Customer>) -> Result<(), String> {
    let race = event.data.object.id == "cus_race";
    if race {
        let inside = INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_INSIDE.fetch_max(inside, Ordering::SeqCst);
    }
    // Long enough for concurrent deliveries to overlap.
    tokio::time::sleep(Duration::from_millis(5)).await;
    if race {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
    let failing = {
        let mut fail = FAIL_ONCE.lock().unwrap();
        let position = fail.iter().position(|id| *id == event.id);
        position.map(|at| fail.remove(at)).is_some()
    };
    if failing {
        return Err("the CRM is down".to_owned());
    }
    let customer = event.data.object;
    APPLIED
        .lock()
        .unwrap()
        .push((customer.id, event.id, customer.name.unwrap_or_default()));
    Ok(())
}

/// Not `latest_only`: runs for every event, stale or not.
#[nextgen_event("customer.updated")]
async fn audit_customer(event: Event<Customer>) {
    AUDITED
        .lock()
        .unwrap()
        .push((event.data.object.id, event.id));
}

/// The names `sync_customer` applied to `customer`, in order.
fn applied(customer: &str) -> Vec<String> {
    APPLIED
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _, _)| id == customer)
        .map(|(_, _, name)| name.clone())
        .collect()
}

fn audited(customer: &str) -> usize {
    AUDITED
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| id == customer)
        .count()
}

/// A signed `customer.updated` for `customer`, created at `created`, setting its name.
fn update(event_id: &str, customer: &str, created: i64, name: &str) -> (Vec<u8>, String) {
    let body = serde_json::json!({
        "id": event_id, "object": "event", "created": created, "livemode": false,
        "type": "customer.updated",
        "data": { "object": { "id": customer, "object": "customer", "balance": 0,
            "created": 1_700_000_000, "name": name } }
    })
    .to_string()
    .into_bytes();
    let signature = sign(&body, SECRET, now());
    (body, signature)
}

async fn deliver(
    config: &WebhookConfig,
    event_id: &str,
    customer: &str,
    created: i64,
    name: &str,
) -> Result<DispatchReport, WebhookError> {
    let endpoint = Endpoint::new(config.clone()).unwrap();
    deliver_to(&endpoint, event_id, customer, created, name).await
}

async fn deliver_to(
    endpoint: &Endpoint,
    event_id: &str,
    customer: &str,
    created: i64,
    name: &str,
) -> Result<DispatchReport, WebhookError> {
    let (body, signature) = update(event_id, customer, created, name);
    endpoint
        .receive(&body, Some(&signature), &Context::new())
        .await
        .map(|taken| taken.into_report().expect("inline mode: handled now"))
}

fn sync_outcome(report: &DispatchReport) -> &nextgen_events::HandlerOutcome {
    report
        .outcomes
        .iter()
        .find(|outcome| outcome.handler == "crm.sync_customer")
        .unwrap()
}

fn config() -> WebhookConfig {
    WebhookConfig::new(SECRET).with_idempotency_store(MemoryStore::default())
}

#[actix_rt::test]
async fn in_order_every_state_is_applied() {
    let config = config();
    for (n, name) in ["Ada", "Ada L.", "Ada Lovelace"].into_iter().enumerate() {
        let created = 1_700_000_100 + i64::try_from(n).unwrap();
        let report = deliver(&config, &format!("evt_lo_in_{n}"), "cus_in", created, name)
            .await
            .unwrap();
        assert!(report.is_success(), "{report:?}");
        assert!(!sync_outcome(&report).skipped);
    }
    assert_eq!(applied("cus_in"), ["Ada", "Ada L.", "Ada Lovelace"]);
}

#[actix_rt::test]
async fn an_older_event_is_acknowledged_without_running_the_handler() {
    let config = config();
    let newer = deliver(&config, "evt_lo_new", "cus_reorder", 1_700_000_200, "New")
        .await
        .unwrap();
    assert!(newer.is_success());
    let older = deliver(&config, "evt_lo_old", "cus_reorder", 1_700_000_100, "Old")
        .await
        .unwrap();
    assert!(
        older.is_success(),
        "a stale event is acknowledged: {older:?}"
    );
    let outcome = sync_outcome(&older);
    assert!(outcome.skipped && outcome.stale, "{outcome:?}");
    assert_eq!(applied("cus_reorder"), ["New"]);
    // The other handlers of the event still run.
    assert_eq!(audited("cus_reorder"), 2);
    // A redelivery of the stale event: done, not stale any more (its marker was written).
    let again = deliver(&config, "evt_lo_old", "cus_reorder", 1_700_000_100, "Old")
        .await
        .unwrap();
    let outcome = sync_outcome(&again);
    assert!(outcome.skipped && !outcome.stale, "{outcome:?}");
    assert_eq!(applied("cus_reorder"), ["New"]);
}

#[actix_rt::test]
async fn equal_created_is_decided_by_event_id_whatever_the_arrival_order() {
    let config = config();
    let created = 1_700_000_300;
    // a then b: both newer in turn.
    deliver(&config, "evt_lo_tie_a", "cus_tie_1", created, "A")
        .await
        .unwrap();
    deliver(&config, "evt_lo_tie_b", "cus_tie_1", created, "B")
        .await
        .unwrap();
    // b then a: a is stale.
    deliver(&config, "evt_lo_tie2_b", "cus_tie_2", created, "B")
        .await
        .unwrap();
    let report = deliver(&config, "evt_lo_tie2_a", "cus_tie_2", created, "A")
        .await
        .unwrap();
    assert!(sync_outcome(&report).stale, "{report:?}");
    assert_eq!(applied("cus_tie_1"), ["A", "B"]);
    assert_eq!(applied("cus_tie_2"), ["B"]);
}

#[actix_rt::test]
async fn a_failed_newer_event_does_not_block_an_older_retry() {
    let config = config();
    FAIL_ONCE.lock().unwrap().push("evt_lo_fail_new".to_owned());
    let newer = deliver(&config, "evt_lo_fail_new", "cus_fail", 1_700_000_200, "New").await;
    assert!(
        matches!(&newer, Err(WebhookError::HandlersFailed(_))),
        "{newer:?}"
    );
    let older = deliver(&config, "evt_lo_fail_old", "cus_fail", 1_700_000_100, "Old")
        .await
        .unwrap();
    assert!(
        older.is_success() && !sync_outcome(&older).skipped,
        "{older:?}"
    );
    // NextGen retries the newer one: it applies over the older.
    let retry = deliver(&config, "evt_lo_fail_new", "cus_fail", 1_700_000_200, "New")
        .await
        .unwrap();
    assert!(
        retry.is_success() && !sync_outcome(&retry).skipped,
        "{retry:?}"
    );
    assert_eq!(applied("cus_fail"), ["Old", "New"]);
}

#[actix_rt::test]
async fn concurrent_deliveries_of_one_customer_apply_one_at_a_time_and_only_forward() {
    let endpoint = Endpoint::new(config()).unwrap();
    let mut tasks = Vec::new();
    // Shuffled times; the newest is 12.
    for (n, created) in [7, 3, 11, 1, 9, 5, 12, 2, 8, 4, 10, 6]
        .into_iter()
        .enumerate()
    {
        let endpoint = endpoint.clone();
        tasks.push(actix_rt::spawn(async move {
            let name = format!("{created:02}");
            deliver_to(
                &endpoint,
                &format!("evt_lo_race_{n}"),
                "cus_race",
                1_700_000_000 + created,
                &name,
            )
            .await
        }));
    }
    for task in tasks {
        let report = task.await.unwrap().unwrap();
        assert!(report.is_success(), "{report:?}");
    }
    let names = applied("cus_race");
    assert!(
        names.windows(2).all(|pair| pair[0] < pair[1]),
        "an older state was applied after a newer one: {names:?}"
    );
    assert_eq!(names.last().map(String::as_str), Some("12"));
    assert_eq!(MOST_INSIDE.load(Ordering::SeqCst), 1, "two ran at once");
    assert_eq!(audited("cus_race"), 12);
}

#[actix_rt::test]
async fn several_customers_interleaved_keep_their_own_newest() {
    let config = config();
    let customers = ["cus_many_1", "cus_many_2", "cus_many_3"];
    for (step, created) in [300, 100, 200, 400].into_iter().enumerate() {
        for customer in customers {
            let report = deliver(
                &config,
                &format!("evt_lo_{customer}_{step}"),
                customer,
                1_700_000_000 + created,
                &created.to_string(),
            )
            .await
            .unwrap();
            assert!(report.is_success(), "{report:?}");
        }
    }
    for customer in customers {
        assert_eq!(applied(customer), ["300", "400"], "{customer}");
    }
}

/// A store without object claims: `object_claims()` keeps its default, `None`.
#[derive(Clone, Default)]
struct OldStore(MemoryStore);

impl IdempotencyStore for OldStore {
    fn claim<'a>(&'a self, id: &'a str, h: &'a str, lease: Duration) -> StoreFuture<'a, Claim> {
        self.0.claim(id, h, lease)
    }
    fn renew<'a>(
        &'a self,
        id: &'a str,
        h: &'a str,
        token: OwnerToken,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        self.0.renew(id, h, token, lease)
    }
    fn complete<'a>(&'a self, id: &'a str, h: &'a str, token: OwnerToken) -> StoreFuture<'a, bool> {
        self.0.complete(id, h, token)
    }
    fn release<'a>(&'a self, id: &'a str, h: &'a str, token: OwnerToken) -> StoreFuture<'a, bool> {
        self.0.release(id, h, token)
    }
}

#[actix_rt::test]
async fn a_store_without_object_claims_gets_no_endpoint() {
    let store = OldStore::default();
    let config = WebhookConfig::new(SECRET).with_idempotency_store(store.clone());
    // Refused when the configuration is checked (mounting does it), naming the handler.
    let refused = config.check().unwrap_err();
    assert_eq!(
        refused,
        nextgen_events::ConfigError::NoObjectClaims {
            handler: "crm.sync_customer"
        }
    );
    assert!(refused.to_string().contains("ObjectClaims"), "{refused}");

    // No way in skips the check: every one goes through an `Endpoint`, which is not built.
    assert_eq!(Endpoint::new(config).unwrap_err(), refused);
    assert!(applied("cus_old_store").is_empty());
    // Nothing was claimed on the store.
    let claim = store
        .claim(
            "evt_lo_old_store",
            "crm.sync_customer",
            Duration::from_secs(1),
        )
        .await;
    assert!(matches!(claim, Ok(Claim::Claimed(_))), "{claim:?}");
}

#[actix_rt::test]
async fn over_http_the_newest_first_then_the_older_runs_the_handler_once_with_the_newer_state() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let (newer, newer_signature) =
        update("evt_lo_http_2", "cus_http", 1_700_000_200, "Ada Lovelace");
    let (older, older_signature) = update("evt_lo_http_1", "cus_http", 1_700_000_100, "Ada");
    let first = post(&server.url("/webhook"), newer, Some(&newer_signature)).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = post(&server.url("/webhook"), older, Some(&older_signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(applied("cus_http"), ["Ada Lovelace"]);
}

#[cfg(feature = "sqlite")]
#[actix_rt::test]
async fn in_inbox_mode_an_older_event_is_not_applied_over_a_newer_one() {
    use nextgen_events::sqlite::SqliteInbox;
    use nextgen_tests::services::TempFile;

    let file = TempFile::new("latest_only");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let config = WebhookConfig::new(SECRET)
        .with_inbox(inbox)
        .with_inbox_poll(Duration::from_millis(10));
    let server = TestServer::start(config, |_| {});
    let (newer, newer_signature) = update("evt_lo_inbox_2", "cus_inbox", 1_700_000_200, "New");
    let (older, older_signature) = update("evt_lo_inbox_1", "cus_inbox", 1_700_000_100, "Old");
    let answer = post(&server.url("/webhook"), newer, Some(&newer_signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // The newer one is handled before the older arrives.
    wait_until(|| applied("cus_inbox") == ["New"]).await;
    let answer = post(&server.url("/webhook"), older, Some(&older_signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // The older one is handled (the audit handler runs), without applying its state.
    wait_until(|| audited("cus_inbox") == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(applied("cus_inbox"), ["New"]);
}

async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting");
}
