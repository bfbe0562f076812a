//! Dispatch: run the handlers of a verified delivery and report how each one did.
//!
//! The envelope is read once; `data.object` is parsed once into the catalog's payload type for
//! the typed handlers and once into JSON for the `*` handlers, and only when such handlers
//! exist. Handlers run one after another, typed ones first, each group in name order: a
//! predictable order, and a failing handler never stops the others from running.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::Instrument;

use crate::catalog::{self, ErasedEvent, PayloadKind};
use crate::config::WebhookConfig;
use crate::context::Context;
use crate::envelope::{self, EnvelopeError, Event, RawEvent};
use crate::error::WebhookError;
use crate::fastpath::{self, Envelope, Object};
use crate::handler::{Handler, HandlerError, HandlerFuture};
use crate::idempotency::{Claim, IdempotencyStore, StoreError};
use crate::registry::Registry;

/// How one handler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutcome {
    /// The handler's full path.
    pub handler: &'static str,
    /// `Ok` when it completed, or why it did not.
    pub result: Result<(), HandlerError>,
    /// How long it ran.
    pub duration: Duration,
    /// True when it was not run because it already succeeded for this event id.
    pub skipped: bool,
}

/// What a dispatch did: which handlers ran, which failed and why, and how long each took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// One outcome per handler that matched, in the order they ran.
    pub outcomes: Vec<HandlerOutcome>,
}

impl DispatchReport {
    /// Whether every matching handler succeeded (also true when none matched).
    pub fn is_success(&self) -> bool {
        self.outcomes.iter().all(|outcome| outcome.result.is_ok())
    }

    /// `Ok(self)` when every handler succeeded, else [`WebhookError::HandlersFailed`].
    pub fn into_result(self) -> Result<Self, WebhookError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(WebhookError::HandlersFailed(self))
        }
    }

    /// Whether the only failures are handlers another delivery of the event is running.
    pub fn only_in_progress(&self) -> bool {
        let mut failures = self.failures().peekable();
        failures.peek().is_some()
            && failures.all(|outcome| outcome.result == Err(HandlerError::InProgress))
    }

    /// The handlers that failed.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.result.is_err())
    }
}

/// A dispatch whose handlers have been given their arguments but not yet run.
///
/// Preparing borrows the body and the context; running does not, so the future of
/// [`run`](PreparedDispatch::run) is `Send` and can be spawned.
pub struct PreparedDispatch {
    event_id: String,
    event_type: String,
    calls: Vec<(&'static Handler, Result<HandlerFuture, HandlerError>)>,
}

impl std::fmt::Debug for PreparedDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedDispatch")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("handlers", &self.calls.len())
            .finish()
    }
}

/// Parses the payload for the handlers of `raw`'s event type and starts each handler.
///
/// Fails only when `data.object` does not fit the catalog's payload type; then no handler
/// runs, so a redelivery after the fix finds the event untouched.
pub fn prepare(
    raw: &RawEvent<'_>,
    registry: &Registry,
    context: &Context<'_>,
) -> Result<PreparedDispatch, EnvelopeError> {
    prepare_handlers(
        raw,
        registry.handlers_for(&raw.event_type),
        registry.wildcard_handlers(),
        context,
    )
}

/// [`prepare`] for the given handlers only: those of the event type, and the `*` ones.
fn prepare_handlers(
    raw: &RawEvent<'_>,
    typed: &[&'static Handler],
    wildcard: &[&'static Handler],
    context: &Context<'_>,
) -> Result<PreparedDispatch, EnvelopeError> {
    let mut calls = Vec::with_capacity(typed.len() + wildcard.len());
    // The macro only accepts catalog names, so typed handlers always have a catalog entry.
    if let Some(event_type) = catalog::lookup(&raw.event_type).filter(|_| !typed.is_empty()) {
        let event = (event_type.kind.parse)(raw)?;
        start_all(typed, event, event_type.kind, context, &mut calls);
    }
    if !wildcard.is_empty() {
        match (catalog::UNTYPED.parse)(raw) {
            Ok(event) => start_all(wildcard, event, catalog::UNTYPED, context, &mut calls),
            // Valid JSON that `serde_json::Value` cannot hold (a number beyond f64, a lone
            // surrogate, nesting past 128 levels). A type outside the catalog is acknowledged
            // all the same: its sender would retry it for days, and no retry would change it.
            Err(error) if catalog::lookup(&raw.event_type).is_none() => {
                tracing::error!(%error, "`*` handlers skipped: the event cannot be read as JSON");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(PreparedDispatch {
        event_id: raw.id.clone(),
        event_type: raw.event_type.clone(),
        calls,
    })
}

/// Reads a verified body for dispatch: in one pass, payload included, when only typed
/// handlers want it; otherwise the envelope, with the payload left raw.
fn read<'a>(body: &'a [u8], registry: &Registry) -> Result<Envelope<'a>, EnvelopeError> {
    // `*` handlers need the payload as JSON too: then both are parsed from the raw object.
    let eager = |event_type: &str| {
        registry.wildcard_handlers().is_empty() && !registry.handlers_for(event_type).is_empty()
    };
    envelope::check_utf8(body)?;
    if let Some(envelope) = fastpath::read(body, &eager) {
        return Ok(envelope);
    }
    // The thorough way: its errors say what is wrong and where. When the envelope is fine,
    // the payload is what failed, and `prepare_handlers` parses it again to say where.
    let raw = RawEvent::parse(body)?;
    let object = raw.data.object;
    Ok(Envelope {
        meta: raw.map_object(()),
        object: Object::Raw(object),
    })
}

/// [`prepare_handlers`] for an envelope read by [`read`].
fn prepare_envelope(
    envelope: Envelope<'_>,
    typed: &[&'static Handler],
    wildcard: &[&'static Handler],
    context: &Context<'_>,
) -> Result<PreparedDispatch, EnvelopeError> {
    let object = match envelope.object {
        Object::Raw(raw) => {
            return prepare_handlers(&envelope.meta.map_object(raw), typed, wildcard, context);
        }
        Object::Typed(object) => object,
    };
    // A typed object is only read when there are no `*` handlers (see `read`).
    let event_id = envelope.meta.id.clone();
    let event_type = envelope.meta.event_type.clone();
    let kind = catalog::lookup(&event_type).map(|entry| entry.kind);
    let mut calls = Vec::with_capacity(typed.len());
    match kind.and_then(|kind| Some((kind, (kind.assemble)(envelope.meta, object)?))) {
        Some((kind, event)) => start_all(typed, event, kind, context, &mut calls),
        None => calls.extend(typed.iter().map(|&handler| {
            (
                handler,
                Err(HandlerError::WrongPayload {
                    expected: "the catalog's payload",
                }),
            )
        })),
    }
    Ok(PreparedDispatch {
        event_id,
        event_type,
        calls,
    })
}

fn start_all(
    handlers: &[&'static Handler],
    event: ErasedEvent,
    kind: PayloadKind,
    context: &Context<'_>,
    calls: &mut Vec<(&'static Handler, Result<HandlerFuture, HandlerError>)>,
) {
    let mut event = Some(event);
    for (index, handler) in handlers.iter().enumerate() {
        // The last handler takes the parsed event; the others get copies.
        let own = if index + 1 == handlers.len() {
            event.take()
        } else {
            event.as_ref().and_then(kind.duplicate)
        };
        let started = match own {
            Some(own) => std::panic::catch_unwind(AssertUnwindSafe(|| handler.start(own, context)))
                .unwrap_or_else(|panic| Err(HandlerError::Panicked(panic_message(&*panic)))),
            None => Err(HandlerError::WrongPayload {
                expected: "a copy of the event",
            }),
        };
        calls.push((handler, started));
    }
}

impl PreparedDispatch {
    /// Runs the handlers one after another. A handler that panics is caught and reported.
    pub async fn run(self) -> DispatchReport {
        let mut outcomes = Vec::with_capacity(self.calls.len());
        for (handler, started) in self.calls {
            let span = tracing::info_span!("nextgen_handler", handler = handler.name());
            let clock = Instant::now();
            let result = match started {
                Ok(future) => AssertUnwindSafe(future)
                    .catch_unwind()
                    .instrument(span.clone())
                    .await
                    .unwrap_or_else(|panic| Err(HandlerError::Panicked(panic_message(&*panic)))),
                Err(error) => Err(error),
            };
            let duration = clock.elapsed();
            span.in_scope(|| match &result {
                Ok(()) => tracing::info!(outcome = "ok", ?duration, "handler succeeded"),
                Err(error) => {
                    tracing::error!(outcome = "failed", ?duration, %error, "handler failed")
                }
            });
            outcomes.push(HandlerOutcome {
                handler: handler.name(),
                result,
                duration,
                skipped: false,
            });
        }
        let failed = outcomes
            .iter()
            .filter(|outcome| outcome.result.is_err())
            .count();
        let duration: Duration = outcomes.iter().map(|outcome| outcome.duration).sum();
        if failed == 0 {
            tracing::info!(handlers = outcomes.len(), ?duration, "event handled");
        } else {
            tracing::warn!(
                handlers = outcomes.len(),
                failed,
                ?duration,
                "event not fully handled"
            );
        }
        DispatchReport {
            event_id: self.event_id,
            event_type: self.event_type,
            outcomes,
        }
    }
}

/// Parses a verified body and runs every matching handler of the global registry, without
/// redelivery detection: every call runs every handler. [`dispatch_with`] uses the
/// configuration's idempotency store.
///
/// `body` must already be verified (see [`signature`](crate::signature)); the
/// [`actix`](crate::actix) integration, [`receive`](crate::receive) and
/// [`VerifiedDelivery`](crate::VerifiedDelivery) do both steps.
pub async fn dispatch(body: &[u8], context: &Context<'_>) -> Result<DispatchReport, EnvelopeError> {
    let registry = Registry::global();
    let envelope = read(body, registry)?;
    let span = delivery_span(&envelope.meta);
    let typed = registry.handlers_for(&envelope.meta.event_type);
    let wildcard = registry.wildcard_handlers();
    let prepared = span.in_scope(|| prepare_envelope(envelope, typed, wildcard, context))?;
    Ok(prepared.run().instrument(span).await)
}

/// Like [`dispatch`], but each handler that already succeeded for this event id is skipped,
/// and one that another delivery is running right now is not run twice (it is reported as
/// [`HandlerError::InProgress`]), through the configuration's
/// [`IdempotencyStore`](crate::idempotency::IdempotencyStore), when it has one.
pub async fn dispatch_with(
    body: &[u8],
    context: &Context<'_>,
    config: &WebhookConfig,
) -> Result<DispatchReport, WebhookError> {
    let registry = Registry::global();
    let envelope = read(body, registry)?;
    let span = delivery_span(&envelope.meta);
    async {
        let typed = registry.handlers_for(&envelope.meta.event_type);
        let wildcard = registry.wildcard_handlers();
        let Some(store) = config.store() else {
            return Ok(prepare_envelope(envelope, typed, wildcard, context)?.run().await);
        };
        let event_id = envelope.meta.id.clone();
        let claims = Claims::take(store, &event_id, typed, wildcard, config.lease_duration()).await?;
        let prepared = match prepare_envelope(envelope, &claims.typed, &claims.wildcard, context) {
            Ok(prepared) => prepared,
            Err(error) => {
                claims.release(store, &event_id).await;
                return Err(error.into());
            }
        };
        let mut report = prepared.run().await;
        for handler in claims.typed.iter().chain(&claims.wildcard) {
            let outcome = report
                .outcomes
                .iter()
                .find(|outcome| outcome.handler == handler.name());
            // A claimed handler that did not run (`*` handlers of an event they cannot be
            // given) is released, like a failed one: nothing was recorded for it.
            let recorded = match outcome.map(|outcome| &outcome.result) {
                Some(Ok(())) => store.complete(&event_id, handler.name()).await,
                Some(Err(_)) | None => store.release(&event_id, handler.name()).await,
            };
            if let Err(error) = recorded {
                // The handler's own outcome stands; at worst a redelivery runs it again.
                tracing::error!(handler = handler.name(), %error, "could not record the handler's outcome");
            }
        }
        report.outcomes.extend(claims.not_run);
        Ok(report)
    }
    .instrument(span)
    .await
}

fn delivery_span<T>(event: &Event<T>) -> tracing::Span {
    tracing::info_span!("nextgen_delivery", event_id = %event.id, event_type = %event.event_type)
}

/// The handlers of one delivery sorted by what their claims said.
struct Claims {
    typed: Vec<&'static Handler>,
    wildcard: Vec<&'static Handler>,
    /// Skipped (already done) and in-progress handlers, as outcomes.
    not_run: Vec<HandlerOutcome>,
}

impl Claims {
    async fn take(
        store: &dyn IdempotencyStore,
        event_id: &str,
        typed: &[&'static Handler],
        wildcard: &[&'static Handler],
        lease: Duration,
    ) -> Result<Claims, StoreError> {
        let mut claims = Claims {
            typed: Vec::with_capacity(typed.len()),
            wildcard: Vec::with_capacity(wildcard.len()),
            not_run: Vec::new(),
        };
        let all = typed
            .iter()
            .map(|h| (h, false))
            .chain(wildcard.iter().map(|h| (h, true)));
        for (&handler, is_wildcard) in all {
            let claim = match store.claim(event_id, handler.name(), lease).await {
                Ok(claim) => claim,
                Err(error) => {
                    claims.release(store, event_id).await;
                    return Err(error);
                }
            };
            let not_run = |result, skipped| HandlerOutcome {
                handler: handler.name(),
                result,
                duration: Duration::ZERO,
                skipped,
            };
            match claim {
                Claim::Claimed if is_wildcard => claims.wildcard.push(handler),
                Claim::Claimed => claims.typed.push(handler),
                Claim::AlreadyDone => {
                    tracing::info!(handler = handler.name(), "already handled: skipped");
                    claims.not_run.push(not_run(Ok(()), true));
                }
                Claim::InProgress => {
                    tracing::info!(
                        handler = handler.name(),
                        "being handled by another delivery"
                    );
                    claims
                        .not_run
                        .push(not_run(Err(HandlerError::InProgress), false));
                    // Back off entirely: the delivery already running leaves none of the
                    // event's handlers to a second one, so of two concurrent deliveries one
                    // answers 200 rather than each holding half the handlers and both 409.
                    claims.release(store, event_id).await;
                    claims.typed.clear();
                    claims.wildcard.clear();
                    return Ok(claims);
                }
            }
        }
        Ok(claims)
    }

    /// Gives back every claim taken, when the delivery stops before running the handlers.
    async fn release(&self, store: &dyn IdempotencyStore, event_id: &str) {
        for handler in self.typed.iter().chain(&self.wildcard) {
            if let Err(error) = store.release(event_id, handler.name()).await {
                tracing::error!(handler = handler.name(), %error, "could not release a claim");
            }
        }
    }
}

/// The message of a caught panic, when it has one.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
