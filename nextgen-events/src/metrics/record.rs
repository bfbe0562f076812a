//! Recording what the metrics count: each a key built once where it can be, so that recording
//! with no exporter installed costs next to nothing.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Key, Label, Level, Metadata};

use super::{
    DELIVERIES, HANDLER_DURATION, INBOX_ATTEMPTS, LEASE_FAILURES, REJECTIONS, STALE_EVENTS,
};
use crate::catalog;

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
    // The store's failure itself is counted by the metered store, once.
    let reason = match result {
        Ok(true) => return,
        Ok(false) => "lapsed",
        Err(_) => "error",
    };
    ::metrics::counter!(LEASE_FAILURES, "lease" => lease, "operation" => operation, "reason" => reason)
        .increment(1);
}

pub(crate) fn stale_event(handler: &'static str, event_type: &str) {
    ::metrics::counter!(STALE_EVENTS, "handler" => handler, "event_type" => event_type_label(event_type))
        .increment(1);
}
