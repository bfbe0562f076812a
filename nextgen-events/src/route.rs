//! The webhook route's framework-neutral half, shared by the actix and axum integrations:
//! from the signature header to the answer, so both answer every delivery alike.

use std::fmt::Display;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::budget::Held;
use crate::delivery::VerifiedDelivery;
use crate::endpoint::{Endpoint, Received, signature_header};
use crate::envelope::EnvelopeError;
use crate::error::WebhookError;
use crate::handler::Context;
use crate::metrics;
use crate::signature::{HeaderProblem, SignatureError, SignatureHeader};
use crate::throttle::Throttle;

/// The acknowledgement NextGen expects, with status 200.
pub(crate) const RECEIVED: &str = r#"{"received":true}"#;

/// The parts of a request the route reads, borrowed from the framework's request.
pub(crate) struct Incoming<'r, P> {
    /// The `NextGen-Signature` header: absent (`None`), or its value if it is text.
    pub(crate) signature: Option<Result<&'r str, SignatureError>>,
    /// The `Content-Length` header, when it is a number.
    pub(crate) declared_length: Option<usize>,
    /// The body, as it arrives.
    pub(crate) payload: P,
}

impl<'r, P> Incoming<'r, P> {
    /// From the header values as a framework gives them (`HeaderValue::to_str`): the
    /// signature header's, `Content-Length`'s, and the body.
    pub(crate) fn new<E>(
        signature: Option<Result<&'r str, E>>,
        content_length: Option<Result<&str, E>>,
        payload: P,
    ) -> Self {
        Incoming {
            signature: signature.map(|value| {
                value.map_err(|_| SignatureError::MalformedHeader(HeaderProblem::NotAscii))
            }),
            declared_length: content_length
                .and_then(Result::ok)
                .and_then(|value| value.parse().ok()),
            payload,
        }
    }
}

/// Takes one delivery: cheap rejections first, then the body within its limits, the
/// signature, and then the endpoint's one path (the inbox or the handlers). `context` is only
/// called, and its context only lives, between two awaits, so a context that is not `Sync`
/// (actix's request) never makes the route's future `!Send` for a framework that needs it
/// `Send` (axum).
pub(crate) async fn take<'c, P, E>(
    endpoint: &Endpoint,
    incoming: Incoming<'_, P>,
    context: impl FnOnce() -> Context<'c>,
) -> Result<Received, WebhookError>
where
    P: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    // A stopping endpoint reads nothing: the sender keeps the delivery for the next start.
    let inside = endpoint.enter()?;
    let (raw_header, header, body, held) = signed_body(endpoint, incoming).await?;
    let signed_at = endpoint.authenticate(&body, &header, None)?;
    // Verified: the body no longer counts against the budget for unverified ones.
    drop(held);
    endpoint
        .take_verified(&body, raw_header, signed_at, context, None, inside)
        .await
}

/// What the `VerifiedEvent` extractors do: the route's checks, up to a verified delivery.
pub(crate) async fn verify<P, E>(
    endpoint: &Endpoint,
    incoming: Incoming<'_, P>,
) -> Result<VerifiedDelivery, WebhookError>
where
    P: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let (raw_header, header, body, held) = signed_body(endpoint, incoming).await?;
    let verified = endpoint.verify_read(body, raw_header, &header);
    drop(held);
    verified
}

/// The signature header as sent and parsed, then the body, with its share of the budget for
/// unverified bodies (to be dropped once it is verified): a request without a well-formed
/// header is refused before its body is read.
async fn signed_body<'r, 'c, P, E>(
    endpoint: &'c Endpoint,
    incoming: Incoming<'r, P>,
) -> Result<(&'r str, SignatureHeader<'r>, Bytes, Held<'c>), WebhookError>
where
    P: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let (raw, header) = signature_header(incoming.signature.transpose()?)?;
    let mut held = endpoint.unverified_bodies().hold();
    let body = read_body(
        incoming.declared_length,
        incoming.payload,
        endpoint,
        &mut held,
    )
    .await?;
    Ok((raw, header, body, held))
}

/// Counts the delivery's answer (see [`metrics`](crate::metrics)).
pub(crate) fn count(answered: &Result<Received, WebhookError>) {
    match answered {
        Ok(received) => metrics::delivery(received.event_type(), received.outcome()),
        Err(WebhookError::HandlersFailed(report)) if report.only_in_progress() => {
            metrics::delivery(&report.event_type, "in_progress");
        }
        Err(WebhookError::HandlersFailed(report)) => {
            metrics::delivery(&report.event_type, "failed")
        }
        Err(WebhookError::Envelope(EnvelopeError::PayloadMismatch { event_type, .. })) => {
            metrics::delivery(event_type, "failed");
        }
        Err(
            error @ (WebhookError::UnverifiedBodyBudgetSpent { .. } | WebhookError::ShuttingDown),
        ) => {
            metrics::rejection(error.code());
        }
        Err(error) if error.status() < 500 => metrics::rejection(error.code()),
        Err(_) => metrics::delivery("", "failed"),
    }
}

/// What is allocated for a body before its bytes arrive, whatever `Content-Length` says.
const FIRST_ALLOCATION: usize = 16 * 1024;

/// Reads the body up to the configured limit and within the configured time, refusing early
/// on a larger `Content-Length` and never buffering more than the limit whatever the sender
/// claims.
async fn read_body<E: Display>(
    declared_length: Option<usize>,
    payload: impl Stream<Item = Result<Bytes, E>> + Unpin,
    endpoint: &Endpoint,
    held: &mut Held<'_>,
) -> Result<Bytes, WebhookError> {
    if let Some(length) = declared_length {
        endpoint.within_limit(length)?;
    }
    let timeout = endpoint.config().body_timeout();
    let capacity = declared_length.unwrap_or(0).min(FIRST_ALLOCATION);
    held.grow_to(capacity)?;
    tokio::time::timeout(timeout, read_chunks(payload, endpoint, capacity, held))
        .await
        .map_err(|_| WebhookError::BodyTimeout { timeout })?
}

async fn read_chunks<E: Display>(
    mut payload: impl Stream<Item = Result<Bytes, E>> + Unpin,
    endpoint: &Endpoint,
    capacity: usize,
    held: &mut Held<'_>,
) -> Result<Bytes, WebhookError> {
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| WebhookError::BodyUnreadable(error.to_string()))?;
        endpoint.within_limit(body.len() + chunk.len())?;
        // What the body will hold, counted before it is copied in: the chunk itself is
        // the framework's until then.
        held.grow_to(body.len() + chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// How a failure is answered over HTTP, whatever the framework.
pub(crate) struct ErrorAnswer {
    /// Whole seconds for `Retry-After`, at least 1.
    pub(crate) retry_after: Option<u64>,
    /// The rest of the body was not read: the connection cannot carry another request.
    pub(crate) close: bool,
    /// The API reference's error shape.
    pub(crate) body: String,
}

/// The answer to `error`, logged: the handlers' own errors were logged with their names as
/// they failed; here the delivery's outcome. Neither carries the body nor a secret.
pub(crate) fn error_answer(error: &WebhookError) -> ErrorAnswer {
    // Rejections can be caused by anyone who can reach the endpoint: their warnings are
    // rate-limited.
    static REJECTIONS: Throttle = Throttle::new(20, Duration::from_secs(10));
    let status = error.status();
    if status >= 500 {
        tracing::error!(status, code = error.code(), "webhook failed: {error}");
    } else if let Some(suppressed) = REJECTIONS.admit(Instant::now()) {
        tracing::warn!(
            status,
            code = error.code(),
            suppressed,
            "webhook rejected: {error}"
        );
    }
    ErrorAnswer {
        retry_after: error
            .retry_after()
            .map(|wait| (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
        close: matches!(
            error,
            WebhookError::BodyTimeout { .. }
                | WebhookError::BodyTooLarge { .. }
                | WebhookError::UnverifiedBodyBudgetSpent { .. }
        ),
        body: error_body(error.error_type(), error.code(), &error.answer()),
    }
}

/// The answer to a method other than POST, with status 405 and `Allow: POST`.
pub(crate) fn method_not_allowed(method: &str) -> String {
    error_body(
        "invalid_request_error",
        "method_not_allowed",
        &format!("{method} is not accepted here: NextGen delivers webhooks with POST"),
    )
}

fn error_body(error_type: &str, code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "type": error_type, "code": code, "message": message } })
        .to_string()
}
