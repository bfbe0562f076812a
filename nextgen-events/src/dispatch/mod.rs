//! Dispatch: prepare the handlers of a verified delivery, then run them one at a time.
//!
//! The envelope is read once; `data.object` is parsed once into the catalog's payload type for
//! the typed handlers, and handed to the `*` handlers in the forms they take: its JSON text as
//! it came, and a `serde_json::Value` only when one of them takes that. Handlers run one after another, typed ones first, each group in name order: a
//! predictable order, and a failing handler never stops the others from running. With an
//! idempotency store each handler is claimed, run and recorded before the next one starts
//! (see [`idempotency`](crate::idempotency)).

mod claims;
mod report;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod transaction;

pub(crate) use claims::{Claims, Held, hold_while};
pub use report::{DispatchReport, HandlerOutcome};

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::Either;
use tracing::Instrument;

use crate::catalog::{self, ErasedEvent, PayloadKind};
use crate::envelope::{EnvelopeError, Event, RawEvent};
use crate::handler::Context;
use crate::handler::{Handler, HandlerFuture, ObjectForm, Started};
use crate::handler::{HandlerError, panic_message};
use crate::idempotency::{StoreError, Watermark};
use crate::read::{Envelope, Object, read_verified};
use crate::registry::Registry;
use claims::{Lease, ObjectTurn, Turn, object_lock_key, take_object_turn, take_turn};

type Call = (&'static Handler, Result<Started, HandlerError>);

/// A dispatch whose handlers have been given their arguments but not yet run.
///
/// Preparing borrows the body and the context; running does not, so the future of a run is
/// `Send + 'static` and runs detached from the request that brought the delivery.
pub(crate) struct PreparedDispatch {
    pub(crate) event_id: String,
    pub(crate) event_type: String,
    /// The event's `created`, for `latest_only` handlers.
    created: i64,
    /// `data.object.id`, read only when a `latest_only` handler matched.
    object_id: Option<String>,
    calls: Vec<Call>,
}

/// Reads a verified body and gives each matching handler of `registry` its arguments.
///
/// Fails only when the body is not an event, or `data.object` does not fit the catalog's
/// payload type; then no handler runs, so a redelivery after the fix finds the event untouched.
fn prepare(
    body: &[u8],
    registry: &Registry,
    context: &Context<'_>,
) -> Result<(PreparedDispatch, tracing::Span), EnvelopeError> {
    #[cfg(feature = "testing")]
    PREPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The payload is read typed in the envelope's one pass when typed handlers want it; `*`
    // handlers take the object's JSON text (or a `Value` built from it), kept beside it.
    let eager = |event_type: &str| !registry.handlers_for(event_type).is_empty();
    let keep_raw = !registry.wildcard_handlers().is_empty();
    let envelope = read_verified(body, &eager, keep_raw)?;
    let span = delivery_span(&envelope.meta);
    let typed = registry.handlers_for(&envelope.meta.event_type);
    let wildcard = registry.wildcard_handlers();
    let prepared = span.in_scope(|| prepare_envelope(envelope, typed, wildcard, context))?;
    Ok((prepared, span))
}

/// How many bodies were read for their handlers (the typed parse) in this process, for the test
/// that each way in reads a body once ([`testing::handler_reads`](crate::testing::handler_reads)).
#[cfg(feature = "testing")]
pub(crate) static PREPARED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Why a delivery's handlers were not started: none of them ran.
#[derive(Debug)]
pub(crate) enum NotStarted {
    /// The body is not an event, or its payload does not fit its type.
    Envelope(EnvelopeError),
    /// A queued delivery's `event_id` or `event_type` (the field named) is not its body's.
    Mismatch(&'static str),
}

/// Prepares and starts a verified delivery's handlers, the one way every path does it: reads
/// the body once, checks it against what a queued delivery says it is (`expected`), gives each
/// matching handler of `registry` its arguments, and returns their run, inside the delivery's
/// span: under `claims` when given (each handler claimed, run and recorded in turn), every
/// handler otherwise. The run borrows neither the body nor the context, so it can run detached
/// from the request that brought it.
pub(crate) fn start(
    body: &[u8],
    registry: &Registry,
    context: &Context<'_>,
    expected: Option<Expected<'_>>,
    claims: Option<Claims>,
) -> Result<impl Future<Output = Result<DispatchReport, StoreError>> + Send + 'static, NotStarted> {
    let (prepared, span) = prepare(body, registry, context).map_err(NotStarted::Envelope)?;
    if let Some(field) =
        expected.and_then(|expected| expected.mismatch(&prepared.event_id, &prepared.event_type))
    {
        span.in_scope(|| {
            tracing::error!(
                field,
                "a queued delivery does not match its body: refused, no handler ran"
            );
        });
        return Err(NotStarted::Mismatch(field));
    }
    // Both runs boxed: one allocation costs less than carrying the run's state inline in
    // every future above it (the route's, the framework's), which move it at each layer.
    Ok(match claims {
        None => Either::Left(
            Box::pin(async move { Ok(prepared.run_unclaimed().await) }).instrument(span),
        ),
        Some(claims) => Either::Right(
            Box::pin(async move { prepared.run_claimed(&claims).await }).instrument(span),
        ),
    })
}

/// [`prepare`] for the given handlers only: those of the event type, and the `*` ones.
fn prepare_handlers(
    raw: &RawEvent<'_>,
    typed: &[&'static Handler],
    wildcard: &[&'static Handler],
    context: &Context<'_>,
) -> Result<PreparedDispatch, EnvelopeError> {
    let mut calls = Vec::with_capacity(typed.len() + wildcard.len());
    let mut object_id = None;
    // The macro only accepts catalog names, so typed handlers always have a catalog entry.
    if let Some(event_type) = catalog::lookup(&raw.event_type).filter(|_| !typed.is_empty()) {
        let event = (event_type.kind.parse)(raw)?;
        object_id = latest_only_object_id(typed, event_type.kind, &event);
        start_all(typed, event, event_type.kind, context, &mut calls);
    }
    start_wildcard(raw, wildcard, context, &mut calls)?;
    Ok(PreparedDispatch {
        event_id: raw.id.clone(),
        event_type: raw.event_type.clone(),
        created: raw.created,
        object_id,
        calls,
    })
}

/// The object id `latest_only` handlers key by, when one of `typed` is such a handler: taken
/// from the parsed payload before the handlers take it, so the body is read once.
fn latest_only_object_id(
    typed: &[&'static Handler],
    kind: PayloadKind,
    event: &ErasedEvent,
) -> Option<String> {
    typed
        .iter()
        .any(|handler| handler.is_latest_only())
        .then(|| (kind.object_id)(event))
        .flatten()
        .filter(|id| !id.is_empty())
}

/// [`prepare_handlers`] for an envelope read by [`read_verified`].
fn prepare_envelope(
    envelope: Envelope<'_>,
    typed: &[&'static Handler],
    wildcard: &[&'static Handler],
    context: &Context<'_>,
) -> Result<PreparedDispatch, EnvelopeError> {
    let (object, raw) = match envelope.object {
        Object::Raw(raw) => {
            return prepare_handlers(&envelope.meta.map_object(raw), typed, wildcard, context);
        }
        Object::Typed(object) => (object, None),
        // The `*` handlers' envelope, copied before the typed handlers' takes this one.
        Object::Both(object, raw) => (object, Some(envelope.meta.with_object(raw))),
    };
    let event_id = envelope.meta.id.clone();
    let event_type = envelope.meta.event_type.clone();
    let created = envelope.meta.created;
    let kind = catalog::lookup(&event_type).map(|entry| entry.kind);
    let mut calls = Vec::with_capacity(typed.len() + wildcard.len());
    let mut object_id = None;
    match kind.and_then(|kind| Some((kind, (kind.assemble)(envelope.meta, object)?))) {
        Some((kind, event)) => {
            object_id = latest_only_object_id(typed, kind, &event);
            start_all(typed, event, kind, context, &mut calls);
        }
        None => calls.extend(typed.iter().map(|&handler| {
            (
                handler,
                Err(HandlerError::WrongPayload {
                    expected: "the catalog's payload",
                }),
            )
        })),
    }
    if let Some(raw) = &raw {
        start_wildcard(raw, wildcard, context, &mut calls)?;
    }
    Ok(PreparedDispatch {
        event_id,
        event_type,
        created,
        object_id,
        calls,
    })
}

/// Starts the `*` handlers, in name order, each with the form of the object it takes: the
/// JSON text is copied once, a `Value` is built once and only when a handler takes one.
fn start_wildcard(
    raw: &RawEvent<'_>,
    wildcard: &[&'static Handler],
    context: &Context<'_>,
    calls: &mut Vec<Call>,
) -> Result<(), EnvelopeError> {
    let last = |form| wildcard.iter().rposition(|handler| handler.form() == form);
    let (last_json, last_raw) = (last(ObjectForm::Json), last(ObjectForm::Raw));
    // Valid JSON that `serde_json::Value` cannot hold (a number beyond f64, a lone surrogate,
    // nesting past 128 levels) is payload drift for every event type, outside the catalog
    // too: a `*` handler taking a `Value` matches the delivery, and nothing is acknowledged
    // unless every matching handler ran and succeeded. The error names the path, and the
    // sender (or the inbox, as a dead letter) keeps the delivery for a fixed handler.
    let mut json = last_json
        .map(|_| (catalog::UNTYPED.parse)(raw))
        .transpose()?;
    let mut text: Option<ErasedEvent> =
        last_raw.map(|_| Box::new(raw.with_object(raw.data.object.to_owned())) as ErasedEvent);
    for (index, &handler) in wildcard.iter().enumerate() {
        let (event, kind, last) = match handler.form() {
            ObjectForm::Json => (&mut json, catalog::UNTYPED, last_json),
            ObjectForm::Raw => (&mut text, catalog::RAW, last_raw),
        };
        // The last handler of a form takes its event; the others get copies.
        let own = if Some(index) == last {
            event.take()
        } else {
            event.as_ref().and_then(kind.duplicate)
        };
        calls.push((handler, start_one(handler, own, context)));
    }
    Ok(())
}

fn start_all(
    handlers: &[&'static Handler],
    event: ErasedEvent,
    kind: PayloadKind,
    context: &Context<'_>,
    calls: &mut Vec<Call>,
) {
    let mut event = Some(event);
    for (index, handler) in handlers.iter().enumerate() {
        // The last handler takes the parsed event; the others get copies.
        let own = if index + 1 == handlers.len() {
            event.take()
        } else {
            event.as_ref().and_then(kind.duplicate)
        };
        calls.push((handler, start_one(handler, own, context)));
    }
}

/// Gives one handler its arguments; `None` when its copy of the event could not be made.
fn start_one(
    handler: &'static Handler,
    own: Option<ErasedEvent>,
    context: &Context<'_>,
) -> Result<Started, HandlerError> {
    match own {
        Some(own) => std::panic::catch_unwind(AssertUnwindSafe(|| handler.start(own, context)))
            .unwrap_or_else(|panic| Err(HandlerError::Panicked(panic_message(&*panic)))),
        None => Err(HandlerError::WrongPayload {
            expected: "a copy of the event",
        }),
    }
}

impl PreparedDispatch {
    /// Runs every handler, without claims.
    pub(crate) async fn run_unclaimed(self) -> DispatchReport {
        let mut outcomes = Vec::with_capacity(self.calls.len());
        for (handler, started) in self.calls {
            outcomes.push(run_one(handler, at_once(started)).await);
        }
        finish(self.event_id, self.event_type, outcomes)
    }

    /// Runs the handlers one at a time, each claimed, run under a renewed lease and recorded
    /// before the next starts. Deliveries of one event id in this process take turns; a
    /// handler that another process holds stops the run (answered 409, retried by NextGen).
    pub(crate) async fn run_claimed(
        mut self,
        claims: &Claims,
    ) -> Result<DispatchReport, StoreError> {
        let _turn = claims.locks.lock(&self.event_id).await;
        let store = &*claims.store;
        let calls = std::mem::take(&mut self.calls);
        let subject = Subject {
            event_id: &self.event_id,
            event_type: &self.event_type,
            created: self.created,
            object_id: self.object_id.as_deref(),
        };
        let mut outcomes = Vec::with_capacity(calls.len());
        for (handler, started) in calls {
            let name = handler.name();
            // A handler that takes the app's transaction is claimed in it, not here. Boxed,
            // as `latest_only` runs are: a transaction's state is not every run's.
            #[cfg(feature = "postgres")]
            let started = match started {
                Ok(Started::InTransaction(call)) => {
                    let run = transaction::run_postgres(
                        store,
                        &self.event_id,
                        handler,
                        call,
                        claims.lease,
                    );
                    let (outcome, stop) = Box::pin(run).await?;
                    outcomes.push(outcome);
                    if stop {
                        break;
                    }
                    continue;
                }
                started => started,
            };
            let turn = take_turn(store, &self.event_id, name, claims.lease).await?;
            match turn {
                Turn::AlreadyDone => {
                    tracing::info!(handler = name, "already handled: skipped");
                    outcomes.push(not_run(handler, Ok(()), true));
                }
                Turn::InProgress => {
                    tracing::info!(handler = name, "being handled by another delivery");
                    outcomes.push(not_run(handler, Err(HandlerError::InProgress), false));
                    // The delivery holding it runs the handlers after it too.
                    break;
                }
                Turn::Run(lease) if handler.is_latest_only() => {
                    // Boxed: its state (two leases, an object turn) would make the state of
                    // every claimed run, latest_only or not, several times larger.
                    let (outcome, stop) =
                        Box::pin(run_latest_only(&subject, handler, started, lease, claims))
                            .await?;
                    outcomes.push(outcome);
                    if stop {
                        break;
                    }
                }
                Turn::Run(lease) => match started {
                    #[cfg(feature = "sqlite")]
                    Ok(Started::InSqlite(call)) => {
                        let run = transaction::run_sqlite(handler, call, lease);
                        outcomes.push(Box::pin(run).await);
                    }
                    started => {
                        let run = std::pin::pin!(run_one(handler, at_once(started)));
                        let outcome = lease.hold_while(run).await;
                        lease.record(outcome.result.is_ok()).await;
                        outcomes.push(outcome);
                    }
                },
            }
        }
        Ok(finish(self.event_id, self.event_type, outcomes))
    }
}

/// What a `latest_only` handler's claims need to know about the event.
struct Subject<'a> {
    event_id: &'a str,
    event_type: &'a str,
    created: i64,
    object_id: Option<&'a str>,
}

/// Runs a `latest_only` handler whose event claim `lease` this delivery holds: under the
/// object claim, only when the event is newer than the newest one handled for the object.
/// The outcome, and whether the run stops (another delivery holds the object).
async fn run_latest_only(
    this_event: &Subject<'_>,
    handler: &'static Handler,
    started: Result<Started, HandlerError>,
    lease: Lease<'_>,
    claims: &Claims,
) -> Result<(HandlerOutcome, bool), StoreError> {
    let name = handler.name();
    let Some(object_id) = this_event.object_id else {
        lease.record(false).await;
        tracing::error!(
            handler = name,
            "the handler is `latest_only`, but the event has no `data.object.id`: not run"
        );
        let error = Err(HandlerError::MissingObjectId);
        return Ok((not_run(handler, error, false), false));
    };
    // This process's deliveries of the object wait for each other (renewing the event
    // claim meanwhile) instead of being refused.
    let object_key = object_lock_key(name, object_id);
    let wait = std::pin::pin!(claims.object_locks.lock(&object_key));
    let _object_turn = lease.hold_while(wait).await;
    let turn = match take_object_turn(&*claims.store, name, object_id, claims.lease).await {
        Ok(turn) => turn,
        Err(error) => {
            lease.record(false).await;
            return Err(error);
        }
    };
    let (object, newest) = match turn {
        ObjectTurn::InProgress => {
            lease.record(false).await;
            tracing::info!(
                handler = name,
                "another delivery of the same object is being handled"
            );
            let error = Err(HandlerError::InProgress);
            return Ok((not_run(handler, error, false), true));
        }
        ObjectTurn::Held(object, newest) => (object, newest),
    };
    let this = Watermark::new(this_event.created, this_event.event_id);
    if let Some(newest) = newest.filter(|newest| this <= *newest) {
        object.end(None).await;
        lease.record(true).await;
        crate::metrics::stale_event(name, this_event.event_type);
        tracing::info!(
            handler = name,
            newest = %crate::text::Escaped(&newest.to_string()),
            "stale: the handler already handled a newer event of the same object; acknowledged without running it"
        );
        let mut outcome = not_run(handler, Ok(()), true);
        outcome.stale = true;
        return Ok((outcome, false));
    }
    let outcome = {
        let run = std::pin::pin!(run_one(handler, at_once(started)));
        let held = std::pin::pin!(object.hold_while(run));
        lease.hold_while(held).await
    };
    let succeeded = outcome.result.is_ok();
    // The watermark first: once it is written, a crash before the event's done marker
    // only makes a redelivery of this event stale.
    object.end(succeeded.then_some(&this)).await;
    lease.record(succeeded).await;
    Ok((outcome, false))
}

/// The future of a handler started at once. One that takes a transaction can only run under
/// a claim of a store that opens it (mounting makes sure).
fn at_once(started: Result<Started, HandlerError>) -> Result<HandlerFuture, HandlerError> {
    match started? {
        Started::Now(future) => Ok(future),
        #[cfg(feature = "postgres")]
        Started::InTransaction(_) => Err(HandlerError::NoTransaction),
        #[cfg(feature = "sqlite")]
        Started::InSqlite(_) => Err(HandlerError::NoTransaction),
    }
}

/// Runs one started handler, catching a panic, and logs how it did.
async fn run_one<F: Future<Output = Result<(), HandlerError>>>(
    handler: &'static Handler,
    started: Result<F, HandlerError>,
) -> HandlerOutcome {
    // One span over the run and its outcome's log, entered once per poll.
    let run = async move {
        let clock = Instant::now();
        let result = match started {
            Ok(future) => AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(HandlerError::Panicked(panic_message(&*panic)))),
            Err(error) => Err(error),
        };
        let duration = clock.elapsed();
        crate::metrics::handler_ran(handler.name(), handler.metrics(), result.is_ok(), duration);
        match &result {
            Ok(()) => tracing::info!(outcome = "ok", ?duration, "handler succeeded"),
            // A handler's error often quotes what it was given: escaped, like every outside value
            // in a log field, so that it cannot forge log lines or drive a terminal.
            Err(error) => tracing::error!(
                outcome = "failed",
                ?duration,
                error = %crate::text::Escaped(&error.to_string()),
                "handler failed"
            ),
        }
        HandlerOutcome {
            handler: handler.name(),
            result,
            duration,
            skipped: false,
            stale: false,
        }
    };
    run.instrument(tracing::info_span!(
        "nextgen_handler",
        handler = handler.name()
    ))
    .await
}

fn not_run(
    handler: &'static Handler,
    result: Result<(), HandlerError>,
    skipped: bool,
) -> HandlerOutcome {
    HandlerOutcome {
        handler: handler.name(),
        result,
        duration: Duration::ZERO,
        skipped,
        stale: false,
    }
}

fn finish(event_id: String, event_type: String, outcomes: Vec<HandlerOutcome>) -> DispatchReport {
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
        event_id,
        event_type,
        outcomes,
    }
}

/// What a queued delivery says its body is: checked against the body before any handler runs.
pub(crate) struct Expected<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) event_type: &'a str,
}

impl Expected<'_> {
    /// The first field the body contradicts, if any.
    pub(crate) fn mismatch(&self, event_id: &str, event_type: &str) -> Option<&'static str> {
        if self.event_id != event_id {
            Some("event_id")
        } else if self.event_type != event_type {
            Some("event_type")
        } else {
            None
        }
    }
}

fn delivery_span<T>(event: &Event<T>) -> tracing::Span {
    // The id and the type are the sender's text (signed, but anything a signer wrote): escaped
    // so that an ESC byte or U+202E in them cannot forge or hide log output.
    tracing::info_span!(
        "nextgen_delivery",
        event_id = %crate::text::Escaped(&event.id),
        event_type = %crate::text::Escaped(&event.event_type)
    )
}
