//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: what is counted, under
//! which names and labels. Install any exporter (`metrics-exporter-prometheus`, ...) in your
//! app; without one, recording costs next to nothing.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `nextgen_webhook_deliveries_total` | counter | `event_type`, `outcome` | verified deliveries by answer: `handled` (200 inline), `queued` (200, in the inbox), `duplicate` (200, already in the inbox), `in_progress` (409), `failed` (500) |
//! | `nextgen_webhook_rejections_total` | counter | `code` | deliveries answered 4xx, by error code (`signature_mismatch`, `body_too_large`, ...) |
//! | `nextgen_webhook_handler_duration_seconds` | histogram | `handler`, `outcome` (`ok`, `failed`) | each handler run |
//! | `nextgen_webhook_store_failures_total` | counter | `store` (`idempotency`, `inbox`) | a store that could not be reached or was full |
//! | `nextgen_webhook_inbox_attempts_total` | counter | `event_type`, `outcome` (`handled`, `retry`, `dead`) | inbox attempts by how they ended: retries and dead letters |
//! | `nextgen_webhook_stale_events_total` | counter | `handler`, `event_type` | events a `latest_only` handler acknowledged without running, because it had handled a newer event of the same object |
//!
//! `event_type` is a catalog event type, or `other` for a type this version does not know,
//! so that the label's values stay bounded.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Key, Label, Level, Metadata};

use crate::catalog;

/// Verified deliveries, by event type and outcome.
pub const DELIVERIES: &str = "nextgen_webhook_deliveries_total";
/// Deliveries answered 4xx, by code.
pub const REJECTIONS: &str = "nextgen_webhook_rejections_total";
/// Handler run time, by handler and outcome.
pub const HANDLER_DURATION: &str = "nextgen_webhook_handler_duration_seconds";
/// Store failures, by store.
pub const STORE_FAILURES: &str = "nextgen_webhook_store_failures_total";
/// Inbox attempts, by event type and outcome.
pub const INBOX_ATTEMPTS: &str = "nextgen_webhook_inbox_attempts_total";

/// Stale events a `latest_only` handler skipped, by handler and event type.
pub const STALE_EVENTS: &str = "nextgen_webhook_stale_events_total";
/// Leases that could not be renewed or whose end could not be recorded, by lease (`claim`,
/// `object claim`, `inbox entry`), operation (`renew`, `finish`) and reason (`lapsed`: another
/// delivery or worker may hold it now; `error`: the store failed).
pub const LEASE_FAILURES: &str = "nextgen_webhook_lease_failures_total";

/// The `event_type` label: bounded to the catalog.
fn event_type_label(event_type: &str) -> &'static str {
    catalog::lookup(event_type).map_or("other", |entry| entry.name())
}

pub(crate) fn delivery(event_type: &str, outcome: &'static str) {
    ::metrics::counter!(DELIVERIES, "event_type" => event_type_label(event_type), "outcome" => outcome)
        .increment(1);
}

pub(crate) fn rejection(code: &'static str) {
    ::metrics::counter!(REJECTIONS, "code" => code).increment(1);
}

/// The keys of one handler's duration histogram, made on its first run and kept in a static
/// of the `#[nextgen_event]` expansion: a run then builds no key and no label list. Only the
/// keys are kept, not a recorder's handles, so a recorder installed later (or one local to a
/// test) still sees every run.
#[doc(hidden)]
pub struct HandlerMetrics {
    keys: OnceLock<[Key; 2]>,
}

impl HandlerMetrics {
    /// Empty until the handler first runs; called by the `#[nextgen_event]` expansion.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        HandlerMetrics {
            keys: OnceLock::new(),
        }
    }
}

fn handler_key(handler: &'static str, ok: bool) -> Key {
    let labels = vec![
        Label::from_static_parts("handler", handler),
        Label::from_static_parts("outcome", if ok { "ok" } else { "failed" }),
    ];
    Key::from_parts(HANDLER_DURATION, labels)
}

static HANDLER_METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Records one run of `handler`, with the keys `kept` for it when it has some (a handler
/// made by the macro always does).
pub(crate) fn handler_ran(
    handler: &'static str,
    kept: Option<&HandlerMetrics>,
    ok: bool,
    duration: Duration,
) {
    let made;
    let key = match kept {
        Some(kept) => {
            let [failed, succeeded] = kept
                .keys
                .get_or_init(|| [handler_key(handler, false), handler_key(handler, true)]);
            if ok { succeeded } else { failed }
        }
        None => {
            made = handler_key(handler, ok);
            &made
        }
    };
    ::metrics::with_recorder(|recorder| recorder.register_histogram(key, &HANDLER_METADATA))
        .record(duration.as_secs_f64());
}

pub(crate) fn store_failure(store: &'static str) {
    ::metrics::counter!(STORE_FAILURES, "store" => store).increment(1);
}

pub(crate) fn inbox_attempt(event_type: &str, outcome: &'static str) {
    ::metrics::counter!(INBOX_ATTEMPTS, "event_type" => event_type_label(event_type), "outcome" => outcome)
        .increment(1);
}

/// Counts what renewing or ending a lease came to, when it did not hold: the one place the
/// lease loop and the ends of claims and inbox entries are counted.
pub(crate) fn lease_kept<E>(
    lease: &'static str,
    operation: &'static str,
    result: &Result<bool, E>,
) {
    let reason = match result {
        Ok(true) => return,
        Ok(false) => "lapsed",
        Err(_) => {
            store_failure(if lease == "inbox entry" {
                "inbox"
            } else {
                "idempotency"
            });
            "error"
        }
    };
    ::metrics::counter!(LEASE_FAILURES, "lease" => lease, "operation" => operation, "reason" => reason)
        .increment(1);
}

pub(crate) fn stale_event(handler: &'static str, event_type: &str) {
    ::metrics::counter!(STALE_EVENTS, "handler" => handler, "event_type" => event_type_label(event_type))
        .increment(1);
}
