//! The metrics a dashboard reads, recorded through the `metrics` facade: names, labels and
//! counts, with a recording exporter installed for this test binary.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use nextgen_events::WebhookConfig;
use nextgen_events::metrics::{
    DELIVERIES, HANDLER_DURATION, INBOX_ATTEMPTS, LEASE_FAILURES, REJECTIONS, STALE_EVENTS,
    STORE_CALL_DURATION, STORE_CALLS, STORE_FAILURES,
};
use nextgen_events::prelude::*;
use nextgen_events::sign;
use support::{SECRET, TestServer, now, post};

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        snapshotter
    })
}

/// A metric: kind, name, labels (sorted).
type Metric = (MetricKind, String, Vec<(String, String)>);

/// Everything recorded so far: a snapshot drains the recorder's counters, so the tests (which
/// run in parallel) add each snapshot to one total. Counters are summed; a histogram counts
/// its samples.
fn recorded() -> HashMap<Metric, u64> {
    static TOTAL: Mutex<Option<HashMap<Metric, u64>>> = Mutex::new(None);
    let mut total = TOTAL.lock().unwrap();
    let total = total.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let key: CompositeKey = key;
        let mut labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        labels.sort();
        let amount = match value {
            DebugValue::Counter(count) => count,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => 0,
        };
        *total
            .entry((key.kind(), key.key().name().to_owned(), labels))
            .or_default() += amount;
    }
    total.clone()
}

/// The total of the metric `name` of `kind` whose labels include all of `labels`.
fn total(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> u64 {
    recorded()
        .into_iter()
        .filter(|((found_kind, found_name, found_labels), _)| {
            *found_kind == kind
                && found_name == name
                && labels.iter().all(|(label, wanted)| {
                    found_labels
                        .iter()
                        .any(|(key, value)| key == label && value == wanted)
                })
        })
        .map(|(_, amount)| amount)
        .sum()
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    total(MetricKind::Counter, name, labels)
}

#[nextgen_event("invoice.paid")]
async fn books_invoice(invoice: Invoice) {
    let _ = invoice;
}

#[nextgen_event("invoice.payment_failed")]
async fn dunning(invoice: Invoice) -> Result<(), String> {
    let _ = invoice;
    Err("the mailer is down".to_owned())
}

#[nextgen_event(
    "invoice.payment_succeeded",
    latest_only,
    name = "metrics.invoice_state"
)]
async fn invoice_state(invoice: Invoice) {
    let _ = invoice;
}

fn invoice_delivery(id: &str, event_type: &str) -> (String, String) {
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": event_type,
        "data": { "object": { "id": "in_1", "object": "invoice", "amount_due": 2000,
            "amount_paid": 2000, "amount_remaining": 0, "created": 1_713_745_200, "currency": "usd",
            "status": "paid" } }
    })
    .to_string();
    let signature = sign(body.as_bytes(), SECRET, now());
    (body, signature)
}

#[actix_rt::test]
async fn deliveries_rejections_and_handler_durations_are_counted() {
    snapshotter();
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let url = server.url("/webhook");
    let (body, signature) = invoice_delivery("evt_metrics_paid", "invoice.paid");
    let answer = post(&url, body.clone(), Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let (failing, failing_signature) =
        invoice_delivery("evt_metrics_failed", "invoice.payment_failed");
    assert_eq!(
        post(&url, failing, Some(&failing_signature)).await.status,
        500
    );
    let forged = post(&url, body, Some(&sign(b"x", "whsec_other", now()))).await;
    assert_eq!(forged.status, 400);

    assert!(
        counter(
            DELIVERIES,
            &[("event_type", "invoice.paid"), ("outcome", "handled")]
        ) >= 1
    );
    assert!(
        counter(
            DELIVERIES,
            &[
                ("event_type", "invoice.payment_failed"),
                ("outcome", "failed")
            ]
        ) >= 1
    );
    assert!(counter(REJECTIONS, &[("code", "signature_mismatch")]) >= 1);
    let durations = |handler, outcome| {
        total(
            MetricKind::Histogram,
            HANDLER_DURATION,
            &[("handler", handler), ("outcome", outcome)],
        )
    };
    assert_eq!(durations("metrics::books_invoice", "ok"), 1);
    assert_eq!(durations("metrics::dunning", "failed"), 1);
}

#[cfg(feature = "sqlite")]
#[actix_rt::test]
async fn inbox_deliveries_and_attempts_are_counted() {
    use nextgen_events::inbox::{InboxOperator, InboxState};
    use nextgen_events::sqlite::SqliteInbox;

    snapshotter();
    let file = nextgen_tests::services::TempFile::new("metrics");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let config = WebhookConfig::new(SECRET)
        .with_inbox(inbox.clone())
        .with_inbox_poll(Duration::from_millis(10));
    let server = TestServer::start(config, |_| {});
    // A type no handler of the other test takes, so the counts are this test's own.
    let (body, signature) = invoice_delivery("evt_metrics_inbox", "invoice.payment_succeeded");
    for _ in 0..2 {
        assert_eq!(
            post(&server.url("/webhook"), body.clone(), Some(&signature))
                .await
                .status,
            200
        );
    }
    let started = Instant::now();
    while inbox
        .show("evt_metrics_inbox", false)
        .await
        .unwrap()
        .unwrap()
        .state
        != InboxState::Handled
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The inbox's calls, counted by the endpoint's one wrapper: two appends (one a duplicate),
    // timed, and the worker's takes and finish. The finish is counted once it has answered,
    // a moment after the database says handled.
    let inbox_call = |operation| {
        counter(
            STORE_CALLS,
            &[
                ("store", "inbox"),
                ("operation", operation),
                ("outcome", "ok"),
            ],
        )
    };
    while inbox_call("finish") == 0 {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        counter(
            DELIVERIES,
            &[
                ("event_type", "invoice.payment_succeeded"),
                ("outcome", "queued")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            DELIVERIES,
            &[
                ("event_type", "invoice.payment_succeeded"),
                ("outcome", "duplicate")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            INBOX_ATTEMPTS,
            &[
                ("event_type", "invoice.payment_succeeded"),
                ("outcome", "handled")
            ]
        ),
        1
    );
    assert!(inbox_call("append") >= 2);
    assert!(inbox_call("take") >= 1);
    assert!(inbox_call("finish") >= 1);
    assert!(
        total(
            MetricKind::Histogram,
            STORE_CALL_DURATION,
            &[("store", "inbox"), ("operation", "append")]
        ) >= 2
    );
}

/// A store whose every claim fails, as an unreachable one does.
struct FailingStore;

impl nextgen_events::idempotency::IdempotencyStore for FailingStore {
    fn claim<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Duration,
    ) -> nextgen_events::idempotency::StoreFuture<'a, nextgen_events::idempotency::Claim> {
        Box::pin(async {
            Err(nextgen_events::idempotency::StoreError::Unavailable(
                "the store is down".to_owned(),
            ))
        })
    }
    fn renew<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
        _: Duration,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn complete<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn release<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}

/// A store call that fails is counted once, by the endpoint's wrapper: one failure, one failed
/// `claim` call, whatever the dispatch does with the error.
#[actix_rt::test]
async fn a_failing_store_call_is_counted_once_by_the_wrapper() {
    snapshotter();
    let failures = || counter(STORE_FAILURES, &[("store", "idempotency")]);
    let failed_claims = || {
        counter(
            STORE_CALLS,
            &[
                ("store", "idempotency"),
                ("operation", "claim"),
                ("outcome", "error"),
            ],
        )
    };
    let (before, claims_before) = (failures(), failed_claims());
    // Only the handler of `invoice.paid`: the registry's `latest_only` one needs object claims.
    let registry = nextgen_events::Registry::from_handlers(
        nextgen_events::Registry::global()
            .iter()
            .filter(|handler| handler.name().ends_with("books_invoice")),
    );
    let endpoint = nextgen_events::Endpoint::new(
        WebhookConfig::new(SECRET)
            .with_registry(registry)
            .with_idempotency_store(FailingStore),
    )
    .unwrap();
    let (body, signature) = invoice_delivery("evt_metrics_store_down", "invoice.paid");
    let refused = endpoint
        .receive(body.as_bytes(), Some(&signature), &Context::new())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "idempotency_store_failed");
    assert_eq!(failures() - before, 1);
    assert_eq!(failed_claims() - claims_before, 1);
}

#[actix_rt::test]
async fn stale_events_of_latest_only_handlers_are_counted() {
    snapshotter();
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let url = server.url("/webhook");
    let labels = [
        ("handler", "metrics.invoice_state"),
        ("event_type", "invoice.payment_succeeded"),
    ];
    let before = counter(STALE_EVENTS, &labels);
    // Same invoice, same `created`: the event id decides, so `..._a` is older than `..._b`.
    for id in ["evt_metrics_stale_b", "evt_metrics_stale_a"] {
        let (body, signature) = invoice_delivery(id, "invoice.payment_succeeded");
        let answer = post(&url, body, Some(&signature)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(counter(STALE_EVENTS, &labels) - before, 1);
}

/// A store that has lost every claim by the time it is renewed or ended: another delivery took
/// it over (a process that stalled for longer than the lease).
#[derive(Default)]
struct LosingStore(nextgen_events::idempotency::MemoryStore);

impl nextgen_events::idempotency::IdempotencyStore for LosingStore {
    fn claim<'a>(
        &'a self,
        id: &'a str,
        handler: &'a str,
        lease: Duration,
    ) -> nextgen_events::idempotency::StoreFuture<'a, nextgen_events::idempotency::Claim> {
        self.0.claim(id, handler, lease)
    }
    fn renew<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
        _: Duration,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn complete<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn release<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: nextgen_events::idempotency::OwnerToken,
    ) -> nextgen_events::idempotency::StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}

#[nextgen_event("charge.dispute.closed", name = "metrics.slow_dispute")]
async fn slow_dispute(_dispute: Dispute) {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[actix_rt::test]
async fn a_lapsed_lease_is_counted_once_when_renewed_and_when_ended() {
    let labels = |operation| {
        [
            ("lease", "claim"),
            ("operation", operation),
            ("reason", "lapsed"),
        ]
    };
    let renew_before = counter(LEASE_FAILURES, &labels("renew"));
    let finish_before = counter(LEASE_FAILURES, &labels("finish"));
    let registry = nextgen_events::Registry::from_handlers(
        nextgen_events::Registry::global()
            .iter()
            .filter(|handler| handler.name() == "metrics.slow_dispute"),
    );
    let config = WebhookConfig::new(SECRET)
        .with_registry(registry)
        .with_idempotency_store(LosingStore::default())
        .with_lease(Duration::from_millis(30));
    let endpoint = nextgen_events::Endpoint::new(config).unwrap();
    let mut event = nextgen_events::testing::sample("charge.dispute.closed").unwrap();
    event["id"] = "evt_metrics_lapsed".into();
    let body = nextgen_events::testing::sample_body(&event);
    let signature = sign(&body, SECRET, now());
    let taken = endpoint
        .receive(&body, Some(&signature), &nextgen_events::Context::new())
        .await
        .unwrap();
    assert_eq!(taken.report().map(|report| report.outcomes.len()), Some(1));
    // The first renewal (after a third of the lease) finds it lapsed, and renewing stops:
    // one count, though the handler ran for several leases.
    assert_eq!(counter(LEASE_FAILURES, &labels("renew")) - renew_before, 1);
    assert_eq!(
        counter(LEASE_FAILURES, &labels("finish")) - finish_before,
        1
    );
}
