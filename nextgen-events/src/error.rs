//! `WebhookError`: everything that can go wrong with one delivery, and the answer it gets.

use crate::dispatch::{DispatchReport, NotStarted};
use crate::envelope::EnvelopeError;
use crate::idempotency::StoreError;
use crate::signature::SignatureError;

/// Why a delivery was not acknowledged. Each variant maps to an HTTP status:
/// 400 for a delivery that will never be good, 408 for a body that did not arrive in time,
/// 413 for a body over the limit, 409 while another process is handling the same event, 503
/// (with `Retry-After`) while the idempotency store is full of live claims, the budget for
/// unverified bodies in flight is spent or the endpoint is stopping, and 500 for what a retry
/// can fix (a failing handler, a payload this version cannot read, an unreachable idempotency
/// store, a blank secret), so the sender keeps the event and delivers it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature is missing, malformed, stale or wrong.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body is not an event, or its payload does not fit the payload type.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The body is larger than the configured limit.
    #[error(
        "the body is larger than the limit of {limit} bytes: raise `WebhookConfig::with_body_limit` if such events are expected"
    )]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive within the configured time.
    #[error(
        "the body did not arrive within {} s: send it at once, or raise `WebhookConfig::with_body_timeout`",
        .timeout.as_secs_f64()
    )]
    BodyTimeout {
        /// The configured time.
        timeout: std::time::Duration,
    },
    /// Too many bytes of bodies not yet verified are in flight on this endpoint: answered 503
    /// with `Retry-After` before more is buffered (see
    /// [`WebhookConfig::with_unverified_body_budget`](crate::WebhookConfig::with_unverified_body_budget)).
    #[error(
        "the endpoint already holds {budget} bytes of bodies not yet verified: try again shortly, or raise `WebhookConfig::with_unverified_body_budget`"
    )]
    UnverifiedBodyBudgetSpent {
        /// The budget in bytes.
        budget: usize,
    },
    /// The body could not be read from the connection.
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(String),
    /// A `VerifiedEvent` extractor found no [`Endpoint`](crate::Endpoint) in the app data.
    #[error(
        "no nextgen `Endpoint` is registered for this route: build one with `Endpoint::new(config)?` and give it to your route (actix `.app_data(web::Data::new(endpoint))`, axum `.layer(Extension(endpoint))`), or mount the route with `nextgen_events::actix::webhooks` or `nextgen_events::axum::webhooks`"
    )]
    NotConfigured,
    /// The idempotency store failed or is full; no handler ran without its claim.
    #[error("{0}; the event will be delivered again")]
    Store(#[from] StoreError),
    /// Inbox mode: the inbox could not durably take the delivery; nothing was acknowledged.
    #[error("the inbox could not keep the delivery: {0}; the event will be delivered again")]
    Inbox(StoreError),
    /// A [`VerifiedDelivery`](crate::VerifiedDelivery) serialized by a version that did not
    /// keep its signature header, which [`Endpoint::handle`](crate::Endpoint::handle) needs to
    /// verify it again.
    #[error(
        "this queued delivery was kept without its `NextGen-Signature` header (serialized by an earlier version of nextgen-events), so it cannot be verified again before its handlers run: have NextGen deliver the event again (its dashboard resends it)"
    )]
    UnsignedDelivery,
    /// The endpoint is stopping ([`Endpoint::shutdown`](crate::Endpoint::shutdown) began):
    /// answered 503 with `Retry-After` and nothing written, so the sender keeps the delivery
    /// and brings it to the next start.
    #[error("the endpoint is shutting down; the event will be delivered again")]
    ShuttingDown,
    /// The runtime shut down while the handlers ran.
    #[error("the server shut down before the handlers finished; the event will be delivered again")]
    Interrupted,
    /// The dispatch itself panicked outside any handler (in an idempotency store, say); the
    /// outcomes of the handlers it ran are unknown to this answer. The panic message is logged.
    #[error("the dispatch panicked outside the handlers: {0}; the event will be delivered again")]
    DispatchPanicked(String),
    /// The delivery's `event_id` or `event_type` is not its body's: a [`VerifiedDelivery`]
    /// built or altered outside this crate (it is deserializable, for queues). No handler ran.
    ///
    /// [`VerifiedDelivery`]: crate::VerifiedDelivery
    #[error(
        "the delivery's `{field}` does not match its body's: it was altered after it was verified; no handler ran"
    )]
    DeliveryMismatch {
        /// `event_id` or `event_type`.
        field: &'static str,
    },
    /// One or more handlers failed or panicked; the report says which and why.
    #[error(
        "{} of {} handlers failed for event {}; the event will be delivered again",
        .0.failures().count(),
        .0.outcomes.len(),
        .0.event_id
    )]
    HandlersFailed(DispatchReport),
}

impl WebhookError {
    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> u16 {
        match self {
            // Our configuration's fault, not the sender's: kept and retried once it is fixed.
            WebhookError::Signature(SignatureError::BlankSecret { .. }) => 500,
            WebhookError::Signature(_) | WebhookError::BodyUnreadable(_) => 400,
            WebhookError::Envelope(EnvelopeError::PayloadMismatch { .. }) => 500,
            WebhookError::Envelope(_) => 400,
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::BodyTimeout { .. } => 408,
            WebhookError::Store(StoreError::Full { .. })
            | WebhookError::UnverifiedBodyBudgetSpent { .. }
            | WebhookError::ShuttingDown => 503,
            WebhookError::HandlersFailed(report) if report.only_in_progress() => 409,
            WebhookError::NotConfigured
            | WebhookError::Store(_)
            | WebhookError::UnsignedDelivery
            | WebhookError::Inbox(_)
            | WebhookError::Interrupted
            | WebhookError::DispatchPanicked(_)
            | WebhookError::HandlersFailed(_) => 500,
            WebhookError::DeliveryMismatch { .. } => 400,
        }
    }

    /// A stable, machine-readable code for this failure class.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(error) => error.code(),
            WebhookError::Envelope(error) => error.code(),
            WebhookError::BodyTooLarge { .. } => "body_too_large",
            WebhookError::BodyTimeout { .. } => "body_timeout",
            WebhookError::BodyUnreadable(_) => "body_unreadable",
            WebhookError::UnverifiedBodyBudgetSpent { .. } => "unverified_body_budget_spent",
            WebhookError::NotConfigured => "not_configured",
            WebhookError::Store(StoreError::Full { .. }) => "idempotency_store_full",
            WebhookError::Store(_) => "idempotency_store_failed",
            WebhookError::UnsignedDelivery => "unsigned_delivery",
            WebhookError::Inbox(_) => "inbox_failed",
            WebhookError::ShuttingDown => "shutting_down",
            WebhookError::Interrupted => "interrupted",
            WebhookError::DispatchPanicked(_) => "dispatch_panicked",
            WebhookError::DeliveryMismatch { .. } => "delivery_mismatch",
            WebhookError::HandlersFailed(report) if report.only_in_progress() => {
                "event_in_progress"
            }
            WebhookError::HandlersFailed(_) => "handler_failed",
        }
    }

    /// How long the sender should wait before delivering again, when that is known (the
    /// `Retry-After` of a 503).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            WebhookError::Store(StoreError::Full { retry_after, .. }) => Some(*retry_after),
            // Bodies in flight arrive or time out within the body timeout; most within a second.
            WebhookError::UnverifiedBodyBudgetSpent { .. } => {
                Some(std::time::Duration::from_secs(1))
            }
            // A restart takes seconds; NextGen's own schedule takes over if it takes longer.
            WebhookError::ShuttingDown => Some(std::time::Duration::from_secs(10)),
            _ => None,
        }
    }

    /// The message the sender is answered with: the `Display` text, except that a signature
    /// mismatch gets a generic one (its hints about the secret go to the log only).
    pub fn answer(&self) -> String {
        match self {
            WebhookError::Signature(SignatureError::NoMatch { .. }) => {
                "no signature in the `NextGen-Signature` header matches this endpoint's secret"
                    .to_owned()
            }
            // Whoever sent it must not learn that the key is guessable; the log says so.
            WebhookError::Signature(SignatureError::BlankSecret { .. }) => {
                "this endpoint's signing secret is not configured".to_owned()
            }
            // A panic's message is internal: it goes to the log.
            WebhookError::DispatchPanicked(_) => {
                "the dispatch panicked outside the handlers; the event will be delivered again"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The error `type` of the API reference's error shape.
    pub fn error_type(&self) -> &'static str {
        if self.status() >= 500 {
            "api_error"
        } else {
            "invalid_request_error"
        }
    }
}

impl From<NotStarted> for WebhookError {
    fn from(refused: NotStarted) -> Self {
        match refused {
            NotStarted::Envelope(error) => WebhookError::Envelope(error),
            NotStarted::Mismatch(field) => WebhookError::DeliveryMismatch { field },
        }
    }
}

impl DispatchReport {
    /// `Ok(self)` when every handler succeeded, else [`WebhookError::HandlersFailed`].
    pub fn into_result(self) -> Result<Self, WebhookError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(WebhookError::HandlersFailed(self))
        }
    }
}
