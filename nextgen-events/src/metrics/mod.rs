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
//! | `nextgen_webhook_lease_failures_total` | counter | `lease` (`claim`, `object claim`, `inbox entry`), `operation` (`renew`, `finish`), `reason` (`lapsed`, `error`) | leases that could not be renewed or whose end could not be recorded |
//! | `nextgen_webhook_store_calls_total` | counter | `store` (`idempotency`, `inbox`), `operation` (`claim`, `complete`, `append`, `take`, ...), `outcome` (`ok`, `error`) | every call of an endpoint to its idempotency store and its inbox |
//! | `nextgen_webhook_store_call_duration_seconds` | histogram | `store`, `operation` | each store call that waits for its answer (a file, a network); in-process answers are counted, not timed |
//! | `nextgen_webhook_inbox_entries` | gauge | `inbox`, `state` (`pending`, `retrying`, `running`, `handled`, `dead`) | the inbox's entries in each state, at the last refresh |
//! | `nextgen_webhook_inbox_oldest_pending_seconds` | gauge | `inbox` | how long the oldest entry waiting for its first attempt has waited, at the last refresh; 0 when none waits |
//! | `nextgen_webhook_inbox_workers_alive` | gauge | `inbox` | this process's inbox workers running now |
//!
//! The inbox gauges are refreshed by the [`Endpoint`](crate::Endpoint) in inbox mode, every
//! [`with_inbox_gauges`](crate::WebhookConfig::with_inbox_gauges) (15 s by default), from the
//! inbox's [operator view](crate::inbox::InboxOperator::stats); `inbox` is
//! [`with_inbox_name`](crate::WebhookConfig::with_inbox_name) (`inbox` by default), so that two
//! endpoints of one app stay apart. The entry gauges describe the inbox, which replicas may
//! share, so every replica reports the same counts: aggregate them with `max`, not `sum`. An
//! inbox without an operator view has the workers gauge only.
//!
//! Store calls are counted by one wrapper that the [`Endpoint`](crate::Endpoint) puts around
//! its store and its inbox, so every call is counted once, whoever makes it; a failed call
//! counts in both `nextgen_webhook_store_calls_total` (`outcome="error"`) and
//! `nextgen_webhook_store_failures_total`.
//!
//! `event_type` is a catalog event type, or `other` for a type this version does not know,
//! so that the label's values stay bounded.

pub(crate) mod record;

pub(crate) use record::{
    HandlerMetrics, delivery, handler_ran, inbox_attempt, lease_kept, rejection, stale_event,
};

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
/// Store calls, by store, operation and outcome.
pub const STORE_CALLS: &str = "nextgen_webhook_store_calls_total";
/// How long store calls that wait took, by store and operation.
pub const STORE_CALL_DURATION: &str = "nextgen_webhook_store_call_duration_seconds";
/// An inbox's entries in each state, by inbox and state (a gauge).
pub const INBOX_ENTRIES: &str = "nextgen_webhook_inbox_entries";
/// How long the inbox's oldest entry waiting for its first attempt has waited, in seconds; 0
/// when none waits (a gauge, by inbox).
pub const INBOX_OLDEST_PENDING: &str = "nextgen_webhook_inbox_oldest_pending_seconds";
/// This process's inbox workers running now (a gauge, by inbox).
pub const INBOX_WORKERS_ALIVE: &str = "nextgen_webhook_inbox_workers_alive";
