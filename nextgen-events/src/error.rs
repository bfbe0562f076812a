//! `WebhookError`: everything that can go wrong with one delivery, and the answer it gets.

use crate::dispatch::DispatchReport;
use crate::envelope::EnvelopeError;
use crate::signature::SignatureError;

/// Why a delivery was not acknowledged. Each variant maps to an HTTP status:
/// 400 for a delivery that will never be good, 413 for a body over the limit, 409 while
/// another delivery of the same event is being handled, and 500 for what a retry can fix (a
/// failing handler, a payload this version cannot read, an unreachable idempotency store), so
/// the sender keeps the event and delivers it again.
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
        "the body is larger than the limit of {limit} bytes: raise `WebhookConfig::body_limit` if such events are expected"
    )]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(String),
    /// The endpoint's [`WebhookConfig`](crate::WebhookConfig) is not in the app data.
    #[error(
        "no `WebhookConfig` is registered for this route: add `.app_data(web::Data::new(config))` to the App or use `nextgen_events::actix::webhooks`"
    )]
    NotConfigured,
    /// The idempotency store failed; no handler ran without its claim.
    #[error("{0}: the event will be delivered again")]
    Store(#[from] crate::idempotency::StoreError),
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
            WebhookError::Signature(_) | WebhookError::BodyUnreadable(_) => 400,
            WebhookError::Envelope(EnvelopeError::PayloadMismatch { .. }) => 500,
            WebhookError::Envelope(_) => 400,
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::HandlersFailed(report) if report.only_in_progress() => 409,
            WebhookError::NotConfigured
            | WebhookError::Store(_)
            | WebhookError::HandlersFailed(_) => 500,
        }
    }

    /// A stable, machine-readable code for this failure class.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(error) => error.code(),
            WebhookError::Envelope(error) => error.code(),
            WebhookError::BodyTooLarge { .. } => "body_too_large",
            WebhookError::BodyUnreadable(_) => "body_unreadable",
            WebhookError::NotConfigured => "not_configured",
            WebhookError::Store(_) => "idempotency_store_failed",
            WebhookError::HandlersFailed(report) if report.only_in_progress() => {
                "event_in_progress"
            }
            WebhookError::HandlersFailed(_) => "handler_failed",
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
