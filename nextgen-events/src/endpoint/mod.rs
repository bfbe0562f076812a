//! `Endpoint`: a configuration checked once, what runs it, and the one path every delivery
//! takes through it.

mod health;
mod metered;
mod received;
mod stop;

pub use health::{Health, LockHealth, StoreHealth};
pub use received::Received;
pub use stop::StopReport;

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;

use crate::budget::BodyBudget;
use crate::config::{ConfigError, WebhookConfig};
use crate::delivery::VerifiedDelivery;
use crate::dispatch;
use crate::dispatch::{Claims, DispatchReport};
use crate::envelope::{EnvelopeError, RawEvent};
use crate::error::WebhookError;
use crate::handler::Context;
use crate::handler::panic_message;
use crate::inbox::{Appended, InboxEntry, InboxOperator, InboxRuntime, WorkerSettings};
use crate::signature::{SignatureError, SignatureHeader};
use metered::{MeteredInbox, MeteredStore};
use stop::{Inside, Intake};

/// A webhook endpoint: a [`WebhookConfig`] that was checked, and what runs it: the inbox's
/// workers in inbox mode, the in-process claim locks, the budget for unverified bodies. Every way a delivery comes in (the actix and axum routes and extractors,
/// [`Endpoint::receive`], a queued [`VerifiedDelivery`] given to [`Endpoint::handle`]) takes
/// the same path through it: verify, parse once, then keep the delivery in the inbox (inbox
/// mode) or run its handlers now, each under its idempotency claim.
///
/// Cloning is cheap (the clones share the endpoint); build it once, hand clones to every
/// route (actix builds the app once per worker thread), and stop it with
/// [`shutdown`](Self::shutdown) once the server stopped taking requests. Dropping the last
/// clone without that stops it too, waiting on the dropping thread. The routes build an
/// endpoint at mount from a `WebhookConfig` (inline mode only), panicking on a refused one;
/// build it yourself to have the error as a value:
///
/// ```
/// use nextgen_events::{ConfigError, Endpoint, WebhookConfig};
///
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
/// assert_eq!(endpoint.config().secret_count(), 1);
///
/// let refused = Endpoint::new(WebhookConfig::new("   ")).unwrap_err();
/// assert_eq!(refused, ConfigError::BlankSecret { position: 1 });
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    running: Arc<Running>,
}

/// What an endpoint owns, shared by its clones.
struct Running {
    config: WebhookConfig,
    /// What dispatch claims handlers with, unless redelivery detection is off.
    claims: Option<Claims>,
    unverified: BodyBudget,
    intake: Arc<Intake>,
    /// In inbox mode. Dropped with the endpoint's last clone: its workers stop then, unless
    /// `shutdown` stopped them.
    inbox: Option<InboxRuntime>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("stopping", &self.intake.is_closed())
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

/// What a route can be mounted with: an [`Endpoint`], or a [`WebhookConfig`] that becomes one
/// at mount (a refused configuration panics there, naming the fix; [`Endpoint::new`] gives the
/// error as a value instead).
pub trait IntoEndpoint {
    /// The endpoint; `path` names the route in the panic message of a refused configuration.
    fn into_endpoint(self, path: &str) -> Endpoint;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self, _path: &str) -> Endpoint {
        self
    }
}

impl IntoEndpoint for WebhookConfig {
    /// # Panics
    ///
    /// When [`Endpoint::new`] refuses the configuration, and in inbox mode
    /// ([`ConfigError::InboxNeedsEndpoint`]): the workers belong to an endpoint the app holds.
    fn into_endpoint(self, path: &str) -> Endpoint {
        // The configuration's own refusals first: they name what to change in it.
        let endpoint = match (self.check(), self.inbox()) {
            (Err(error), _) => Err(error),
            (Ok(()), Some(_)) => Err(ConfigError::InboxNeedsEndpoint),
            (Ok(()), None) => Endpoint::new(self),
        };
        match endpoint {
            Ok(endpoint) => endpoint,
            Err(error) => panic!("cannot mount the webhook route at `{path}`: {error}"),
        }
    }
}

impl Endpoint {
    /// Checks `config` (every refusal of [`WebhookConfig::check`], and two handlers of its
    /// registry sharing a name), then in inbox mode starts the inbox's workers (their
    /// recovery of an earlier run first).
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] that names what to change; nothing was started then.
    pub fn new(config: WebhookConfig) -> Result<Endpoint, ConfigError> {
        config.check()?;
        // Every call to the store and the inbox is counted by one wrapper each, here.
        let claims = config.resolved_store().map(|store| Claims {
            store: Arc::new(MeteredStore::new(Arc::clone(store))),
            lease: config.lease(),
            locks: Arc::default(),
            object_locks: Arc::default(),
        });
        let inbox = match (config.inbox(), &claims) {
            (Some(choice), Some(claims)) => {
                let workers = config.workers();
                let settings = WorkerSettings {
                    count: workers.count,
                    retry: workers.retry,
                    poll: workers.poll,
                    shutdown_timeout: workers.stop_timeout,
                    claims: claims.clone(),
                    data: config.app_data().clone(),
                    verifier: config.verifier().clone(),
                    registry: config.shared_registry(),
                };
                let inbox = Arc::new(MeteredInbox::new(Arc::clone(&choice.inbox)));
                let runtime = InboxRuntime::start(inbox, settings, config.gauges())
                    .map_err(ConfigError::Workers)?;
                Some(runtime)
            }
            _ => None,
        };
        tracing::info!("{}", config.registry().subscription_hint());
        Ok(Endpoint {
            running: Arc::new(Running {
                unverified: BodyBudget::new(config.unverified_body_budget()),
                claims,
                intake: Arc::default(),
                inbox,
                config,
            }),
        })
    }

    /// The configuration this endpoint was built from.
    pub fn config(&self) -> &WebhookConfig {
        &self.running.config
    }

    /// Stops the endpoint and waits, at most `timeout`, for what runs to finish: from now on
    /// every delivery is answered 503 with `Retry-After` (nothing read, nothing written, so
    /// the sender keeps it); the inbox's workers finish the delivery each holds, record every
    /// outcome, and end (idle ones at once, whatever the poll interval); deliveries already
    /// being taken finish. Call it once the HTTP server stopped taking requests, before `main`
    /// returns, so a SIGTERM never depends on which thread drops the endpoint last:
    ///
    /// ```no_run
    /// # async fn serve(_: &nextgen_events::Endpoint) {}
    /// use std::time::Duration;
    /// use nextgen_events::{Endpoint, WebhookConfig};
    ///
    /// # async fn run() -> Result<(), nextgen_events::ConfigError> {
    /// let endpoint = Endpoint::new(WebhookConfig::new("whsec_..."))?;
    /// serve(&endpoint).await; // actix's or axum's server, until its graceful stop
    /// let report = endpoint.shutdown(Duration::from_secs(30)).await;
    /// if !report.is_clean() {
    ///     tracing::warn!(left = ?report.left, "taken again at the next start");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// A second call waits again for what the first left. The report names what was still
    /// running when the time ran out. Await it on a tokio runtime (actix's and axum's are one):
    /// its timeout is tokio's.
    pub async fn shutdown(&self, timeout: Duration) -> StopReport {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let running = &self.running;
        running.intake.close();
        tracing::info!("the webhook endpoint is stopping: new deliveries are answered 503");
        let left = match &running.inbox {
            Some(inbox) => inbox.stop(timeout).await.left,
            None => Vec::new(),
        };
        let in_flight = running.intake.settled(deadline).await;
        let report = StopReport {
            left,
            in_flight,
            elapsed: started.elapsed(),
        };
        let elapsed_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX);
        if report.is_clean() {
            tracing::info!(elapsed_ms, "the webhook endpoint stopped");
        } else {
            tracing::warn!(
                left = ?report.left,
                in_flight = report.in_flight,
                elapsed_ms,
                "the webhook endpoint's stop ran out of time: the inbox deliveries left are taken again at the next start once their leases lapse (handlers that had succeeded stay skipped); deliveries in flight were not acknowledged, so NextGen delivers them again"
            );
        }
        report
    }

    /// The endpoint's health, for a readiness and a liveness probe ([`Health::is_ready`],
    /// [`Health::is_alive`]): whether it is stopping, how many of its inbox workers run,
    /// whether they hold their lock, and what the last read of the inbox's counts found (the
    /// store reachable, the oldest pending entry's age). Synchronous and cheap: it reads what
    /// the workers and the gauges' refresher recorded, and does no I/O.
    ///
    /// ```
    /// use nextgen_events::{Endpoint, WebhookConfig};
    ///
    /// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
    /// let health = endpoint.health();
    /// assert!(health.is_ready() && health.is_alive());
    /// assert_eq!(health.summary(), "ok: taking deliveries");
    /// # Ok::<(), nextgen_events::ConfigError>(())
    /// ```
    pub fn health(&self) -> Health {
        let inbox = self.running.inbox.as_ref();
        let workers = inbox.map(InboxRuntime::health);
        let gauges = inbox.map(InboxRuntime::gauges_health);
        let store = StoreHealth::from_gauges(gauges.as_ref());
        // Only from a read the store answered: a failed one says nothing of the backlog.
        let oldest_pending = gauges
            .as_ref()
            .filter(|_| matches!(store, StoreHealth::Reachable { .. }))
            .and_then(|gauges| gauges.last.as_ref())
            .and_then(|last| last.outcome.clone().ok().flatten());
        let workers_lock = match workers {
            Some(workers) if workers.lock_needed && workers.lock_held => LockHealth::Held,
            Some(workers) if workers.lock_needed => LockHealth::NotHeld,
            _ => LockHealth::NotNeeded,
        };
        Health {
            stopping: self.running.intake.is_closed(),
            inbox_workers: workers.map_or(0, |workers| workers.configured),
            workers_alive: workers.map_or(0, |workers| workers.alive),
            worker_restarts: workers.map_or(0, |workers| workers.restarts),
            workers_lock,
            store,
            oldest_pending,
            backlog_threshold: self.running.config.backlog_threshold(),
        }
    }

    /// The operator view of the endpoint's inbox (stats, lists, entries, replays): what an
    /// inbox page or a tool reads. `None` outside inbox mode, or for an inbox without one.
    pub fn inbox_operator(&self) -> Option<Arc<dyn InboxOperator>> {
        self.running
            .config
            .inbox()
            .and_then(|choice| choice.inbox.operator())
    }

    /// Lets one delivery in, unless the endpoint is stopping.
    pub(crate) fn enter(&self) -> Result<Inside, WebhookError> {
        self.running.intake.enter()
    }

    /// The budget the route reads unverified bodies within.
    pub(crate) fn unverified_bodies(&self) -> &BodyBudget {
        &self.running.unverified
    }

    /// Verifies a delivery and takes it as the routes do, without HTTP: runs its handlers now,
    /// or keeps it in the inbox in inbox mode. `signature` is the `NextGen-Signature` header
    /// value, if the request had one. The body limit applies; reading the body within its
    /// timeout is the caller's part here.
    ///
    /// # Errors
    ///
    /// Every refusal of the route, with the same [`WebhookError`] (and so the same status and
    /// code); failed handlers come back as [`WebhookError::HandlersFailed`] with the report.
    ///
    /// ```
    /// use nextgen_events::{sign, Context, Endpoint, Received, WebhookConfig};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test").with_clock(|| 1_713_745_200))?;
    /// let body = br#"{"id":"evt_1","object":"event","type":"something.new","created":1713745200,
    ///                 "livemode":false,"data":{"object":{}}}"#;
    /// let header = sign(body, "whsec_test", 1_713_745_200);
    ///
    /// let received = endpoint.receive(body, Some(&header), &Context::new()).await?;
    /// assert!(matches!(received, Received::Handled(_)));
    /// assert_eq!(received.event_id(), "evt_1");
    ///
    /// let forged = endpoint.receive(body, Some("t=1713745200,v1=00"), &Context::new()).await;
    /// assert_eq!(forged.unwrap_err().code(), "signature_malformed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn receive(
        &self,
        body: &[u8],
        signature: Option<&str>,
        context: &Context<'_>,
    ) -> Result<Received, WebhookError> {
        let inside = self.enter()?;
        let (raw_header, header) = self.signed(body, signature)?;
        let signed_at = self.authenticate(body, &header, None)?;
        self.take_verified(body, raw_header, signed_at, || context, None, inside)
            .await
    }

    /// Verifies a delivery and reads its envelope, without taking it: for handing it to a
    /// queue of your own, whose consumer gives it to [`Endpoint::handle`]. The body limit
    /// applies.
    ///
    /// # Errors
    ///
    /// The route's refusals of a body that does not verify or is not an event envelope.
    pub fn verify(
        &self,
        body: impl Into<Bytes>,
        signature: Option<&str>,
    ) -> Result<VerifiedDelivery, WebhookError> {
        let body = body.into();
        let (raw_header, header) = self.signed(&body, signature)?;
        self.verify_read(body, raw_header, &header)
    }

    /// Takes a delivery verified earlier (by [`Endpoint::verify`] or an extractor, perhaps
    /// through a queue of your own) as the route takes a fresh one: runs its handlers now, or
    /// keeps it in the inbox in inbox mode. A deserialized delivery is only as trustworthy as
    /// the queue it came from, so it is verified again: its signature header against the
    /// configured secrets at the time it was verified first (it may have waited in the queue
    /// since), and its id, type and timestamp against its body and signature.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Signature`] when it does not verify (altered, or signed with a secret
    /// no longer configured), [`WebhookError::DeliveryMismatch`] when its fields were altered
    /// since it was verified, [`WebhookError::UnsignedDelivery`] for a delivery kept without
    /// its signature header, and the route's errors otherwise.
    pub async fn handle(
        &self,
        delivery: &VerifiedDelivery,
        context: &Context<'_>,
    ) -> Result<Received, WebhookError> {
        self.handle_with(delivery, || context).await
    }

    /// [`handle`](Self::handle) with the context made only when the handlers are prepared
    /// (see [`take_verified`](Self::take_verified)).
    pub(crate) async fn handle_with<'c, C: Borrow<Context<'c>>>(
        &self,
        delivery: &VerifiedDelivery,
        context: impl FnOnce() -> C,
    ) -> Result<Received, WebhookError> {
        let inside = self.enter()?;
        let Some(signature) = delivery.signature() else {
            return Err(WebhookError::UnsignedDelivery);
        };
        let (raw_header, header) = signature_header(Some(signature))?;
        let body = delivery.body();
        let signed_at = self.authenticate(body, &header, Some(delivery.timestamp))?;
        if signed_at != delivery.timestamp {
            return Err(WebhookError::DeliveryMismatch { field: "timestamp" });
        }
        let expected = dispatch::Expected {
            event_id: &delivery.event_id,
            event_type: &delivery.event_type,
        };
        self.take_verified(body, raw_header, signed_at, context, Some(expected), inside)
            .await
    }

    /// The checks before verification when the caller holds the whole body: a signature
    /// header that parses, and a body within the limit.
    fn signed<'s>(
        &self,
        body: &[u8],
        signature: Option<&'s str>,
    ) -> Result<(&'s str, SignatureHeader<'s>), WebhookError> {
        let header = signature_header(signature)?;
        self.within_limit(body.len())?;
        Ok(header)
    }

    /// Refuses a body of `length` bytes over the limit: the one check of it, whether the body
    /// is whole or still arriving.
    pub(crate) fn within_limit(&self, length: usize) -> Result<(), WebhookError> {
        let limit = self.config().body_limit();
        match length > limit {
            true => Err(WebhookError::BodyTooLarge { limit }),
            false => Ok(()),
        }
    }

    /// Checks `body`'s signature against the configured secrets, at the clock's time, or at
    /// `at` for a delivery verified before (its time then): the one check every way in
    /// makes. The signature's timestamp when it verifies.
    pub(crate) fn authenticate(
        &self,
        body: &[u8],
        header: &SignatureHeader<'_>,
        at: Option<u64>,
    ) -> Result<u64, WebhookError> {
        let verifier = self.config().verifier();
        let now = at.unwrap_or_else(|| verifier.now());
        Ok(verifier.verify_parsed(body, header, now)?)
    }

    /// A body, verified, read as a [`VerifiedDelivery`].
    pub(crate) fn verify_read(
        &self,
        body: Bytes,
        raw_header: &str,
        header: &SignatureHeader<'_>,
    ) -> Result<VerifiedDelivery, WebhookError> {
        let timestamp = self.authenticate(&body, header, None)?;
        // Parsed only once verified: unauthenticated bytes never reach the JSON parser.
        let raw = RawEvent::parse(&body)?;
        let event = (raw.id, raw.event_type);
        Ok(VerifiedDelivery::new(event, timestamp, raw_header, body))
    }

    /// The one path below verification: the inbox in inbox mode, the handlers otherwise.
    /// `context` is only called, and what it gives only lives, before the first await, so a
    /// context that is not `Sync` (actix's request) never makes the future `!Send` for a
    /// framework that needs it `Send` (axum).
    pub(crate) async fn take_verified<'c, C: Borrow<Context<'c>>>(
        &self,
        body: &[u8],
        raw_header: &str,
        signed_at: u64,
        context: impl FnOnce() -> C,
        expected: Option<dispatch::Expected<'_>>,
        inside: Inside,
    ) -> Result<Received, WebhookError> {
        match &self.running.inbox {
            Some(inbox) => {
                let kept = enqueue(inbox, body, raw_header, signed_at, expected).await;
                drop(inside);
                kept
            }
            None => {
                let run = self
                    .start(body, context().borrow(), expected, inside)
                    .inspect_err(|error| log_drift(body, error))?;
                run.await?.into_result().map(Received::Handled)
            }
        }
    }

    /// Prepares the handlers with `context`, then returns their detached run: a future that
    /// borrows neither the body nor the context, so a framework that needs `Send` futures
    /// (axum) can await it whatever the context holds. The run counts as inside the intake
    /// (`inside`) until it ends, even when the request that brought it is gone, so a stop
    /// waits for it.
    fn start(
        &self,
        body: &[u8],
        context: &Context<'_>,
        expected: Option<dispatch::Expected<'_>>,
        inside: Inside,
    ) -> Result<
        impl Future<Output = Result<DispatchReport, WebhookError>> + Send + 'static,
        WebhookError,
    > {
        let run = dispatch::start(
            body,
            self.config().registry(),
            context,
            expected,
            self.running.claims.clone(),
        )?;
        // Combinators, not nested `async` blocks: each block would keep its own copy of the
        // run's state, and every delivery's future would carry (and move) all of them.
        let run = run.map(move |report| {
            drop(inside);
            report
        });
        Ok(detached(run).map(|joined| joined?.map_err(WebhookError::from)))
    }
}

/// Logs a payload that does not fit its type with the event's id, which the error itself does
/// not carry, so an operator can tell which event NextGen will keep delivering (read again
/// here: only on this failure).
fn log_drift(body: &[u8], error: &WebhookError) {
    if let WebhookError::Envelope(EnvelopeError::PayloadMismatch {
        event_type, path, ..
    }) = error
    {
        let event_id = RawEvent::parse(body).map(|raw| raw.id).unwrap_or_default();
        tracing::error!(
            event_id = %crate::text::Escaped(&event_id),
            event_type = %crate::text::Escaped(event_type),
            path = %crate::text::Escaped(path),
            "the event's payload does not fit its type: answered 500, so NextGen delivers it again; no handler ran"
        );
    }
}

/// The `NextGen-Signature` header as sent and parsed: the one parse of it on every way in.
pub(crate) fn signature_header(
    signature: Option<&str>,
) -> Result<(&str, SignatureHeader<'_>), WebhookError> {
    let raw = signature.ok_or(SignatureError::MissingHeader)?;
    Ok((raw, SignatureHeader::parse(raw)?))
}

/// Keeps a verified delivery in the inbox.
async fn enqueue(
    mode: &InboxRuntime,
    body: &[u8],
    signature: &str,
    signed_at: u64,
    expected: Option<dispatch::Expected<'_>>,
) -> Result<Received, WebhookError> {
    let raw = RawEvent::parse(body)?;
    if let Some(field) = expected.and_then(|expected| expected.mismatch(&raw.id, &raw.event_type)) {
        tracing::error!(
            field,
            event_id = %crate::text::Escaped(&raw.id),
            "a queued delivery does not match its body: refused, not kept"
        );
        return Err(WebhookError::DeliveryMismatch { field });
    }
    let entry = InboxEntry {
        event_id: raw.id,
        event_type: raw.event_type,
        body: body.to_vec(),
        signed_at,
        received_at_ms: mode.inbox.now_ms(),
        signature: Some(signature.to_owned()),
    };
    let event_id = entry.event_id.clone();
    let event_type = entry.event_type.clone();
    let appended = mode
        .inbox
        .append(entry)
        .await
        .map_err(WebhookError::Inbox)?;
    Ok(match appended {
        Appended::New => {
            tracing::info!(event_id = %crate::text::Escaped(&event_id), "delivery kept in the inbox");
            mode.wake();
            Received::Queued {
                event_id,
                event_type,
            }
        }
        Appended::Duplicate => {
            tracing::info!(event_id = %crate::text::Escaped(&event_id), "delivery already in the inbox");
            Received::AlreadyQueued {
                event_id,
                event_type,
            }
        }
    })
}

/// Runs `work` as its own task on the current tokio runtime, so that dropping the caller does
/// not stop it half-way; in place when there is no runtime. The task is spawned here, not at
/// the first poll: callers await the run at once.
fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = Result<T, WebhookError>> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => Either::Left(runtime.spawn(work).map(|joined| {
            joined.map_err(|error| {
                // Handlers' panics are caught inside; a panic here is the dispatch's own (a
                // store's, say), never to be mistaken for the runtime shutting down.
                if error.is_panic() {
                    let message = panic_message(&*error.into_panic());
                    tracing::error!(panic = %message, "the dispatch task panicked");
                    WebhookError::DispatchPanicked(message)
                } else {
                    WebhookError::Interrupted
                }
            })
        })),
        Err(_) => Either::Right(work.map(Ok)),
    }
}
