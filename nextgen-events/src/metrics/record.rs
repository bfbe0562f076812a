//! Recording what the metrics count: each a key built once where it can be, so that recording
//! with no exporter installed costs next to nothing.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Key, Label, Level, Metadata};

use super::{
    DELIVERIES, HANDLER_DURATION, INBOX_ATTEMPTS, INBOX_ENTRIES, INBOX_OLDEST_PENDING,
    INBOX_WORKERS_ALIVE, LEASE_FAILURES, REJECTIONS, STALE_EVENTS,
};
use crate::catalog;
use crate::inbox::{InboxState, InboxStats};

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

static GAUGE_METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one inbox's gauges, built once by its refresher: a refresh then builds no key.
/// Only the keys are kept, not a recorder's handles, so a recorder installed after the
/// endpoint started still sees every refresh.
pub(crate) struct InboxGauges {
    /// One per state, in the order of [`InboxState::ALL`].
    entries: [Key; 5],
    oldest_pending: Key,
    workers_alive: Key,
}

impl InboxGauges {
    /// The gauges of the inbox named `inbox` (the `inbox` label).
    pub(crate) fn new(inbox: &str) -> Self {
        let inbox_label = || Label::new("inbox", inbox.to_owned());
        let entries = InboxState::ALL.map(|state| {
            Key::from_parts(
                INBOX_ENTRIES,
                vec![
                    inbox_label(),
                    Label::from_static_parts("state", state.as_str()),
                ],
            )
        });
        InboxGauges {
            entries,
            oldest_pending: Key::from_parts(INBOX_OLDEST_PENDING, vec![inbox_label()]),
            workers_alive: Key::from_parts(INBOX_WORKERS_ALIVE, vec![inbox_label()]),
        }
    }

    /// Sets the entry gauges from `stats`, and the oldest pending entry's age (`None`: none
    /// waits, recorded as 0).
    pub(crate) fn entries(&self, stats: &InboxStats, oldest_pending: Option<Duration>) {
        let counts = InboxState::ALL.map(|state| match state {
            InboxState::Pending => stats.pending,
            InboxState::Retrying => stats.retrying,
            InboxState::Running => stats.running,
            InboxState::Handled => stats.handled,
            InboxState::Dead => stats.dead,
        });
        ::metrics::with_recorder(|recorder| {
            for (key, count) in self.entries.iter().zip(counts) {
                // Exact up to 2^53 entries, far beyond any inbox.
                recorder
                    .register_gauge(key, &GAUGE_METADATA)
                    .set(count as f64);
            }
            recorder
                .register_gauge(&self.oldest_pending, &GAUGE_METADATA)
                .set(oldest_pending.map_or(0.0, |age| age.as_secs_f64()));
        });
    }

    /// Sets the workers gauge.
    pub(crate) fn workers_alive(&self, alive: usize) {
        ::metrics::with_recorder(|recorder| {
            recorder
                .register_gauge(&self.workers_alive, &GAUGE_METADATA)
                .set(alive as f64);
        });
    }
}
