//! `Endpoint`: a configuration checked once, and the one path every delivery takes through it.

use std::borrow::Borrow;
use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use crate::config::{ConfigError, WebhookConfig};
use crate::delivery::VerifiedDelivery;
use crate::dispatch;
use crate::dispatch::DispatchReport;
use crate::envelope::RawEvent;
use crate::error::WebhookError;
use crate::handler::Context;
use crate::handler::panic_message;
use crate::inbox::{Appended, InboxEntry, InboxMode};
use crate::signature::{SignatureError, SignatureHeader};

/// A webhook endpoint: a [`WebhookConfig`] that was checked, with its inbox's workers running
/// in inbox mode. Every way a delivery comes in (the actix and axum routes and extractors,
/// [`Endpoint::receive`], a queued [`VerifiedDelivery`] given to [`Endpoint::handle`]) takes
/// the same path through it: verify, parse once, then keep the delivery in the inbox (inbox
/// mode) or run its handlers now, each under its idempotency claim.
///
/// Cloning is cheap (the clones share the endpoint); build it once and hand clones around.
/// The routes build it at mount from a `WebhookConfig`, panicking on a refused one; build it
/// yourself to have the error as a value:
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
    config: Arc<WebhookConfig>,
}

/// What became of a delivery that was accepted: the answer is 200 `{"received": true}` for
/// each of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Its handlers ran now (inline mode): each succeeded, now or for an earlier delivery of
    /// the same event id.
    Handled(DispatchReport),
    /// Kept in the inbox (inbox mode): its workers run the handlers.
    Queued {
        /// The event's id (`evt_...`).
        event_id: String,
        /// The event's type, e.g. `charge.succeeded`.
        event_type: String,
    },
    /// Already in the inbox, from an earlier delivery of the same event id: kept once.
    AlreadyQueued {
        /// The event's id (`evt_...`).
        event_id: String,
        /// The event's type, e.g. `charge.succeeded`.
        event_type: String,
    },
}

impl Received {
    /// The event's id (`evt_...`).
    pub fn event_id(&self) -> &str {
        match self {
            Received::Handled(report) => &report.event_id,
            Received::Queued { event_id, .. } | Received::AlreadyQueued { event_id, .. } => {
                event_id
            }
        }
    }

    /// The event's type, e.g. `charge.succeeded`.
    pub fn event_type(&self) -> &str {
        match self {
            Received::Handled(report) => &report.event_type,
            Received::Queued { event_type, .. } | Received::AlreadyQueued { event_type, .. } => {
                event_type
            }
        }
    }

    /// The handlers' report, when they ran now (inline mode).
    pub fn report(&self) -> Option<&DispatchReport> {
        match self {
            Received::Handled(report) => Some(report),
            Received::Queued { .. } | Received::AlreadyQueued { .. } => None,
        }
    }

    /// The handlers' report, when they ran now (inline mode).
    pub fn into_report(self) -> Option<DispatchReport> {
        match self {
            Received::Handled(report) => Some(report),
            Received::Queued { .. } | Received::AlreadyQueued { .. } => None,
        }
    }

    /// The delivery's outcome label in the metrics (`nextgen_deliveries_total`).
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Received::Handled(_) => "handled",
            Received::Queued { .. } => "queued",
            Received::AlreadyQueued { .. } => "duplicate",
        }
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
    /// When [`Endpoint::new`] refuses the configuration.
    fn into_endpoint(self, path: &str) -> Endpoint {
        match Endpoint::new(self) {
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
        config.start_inbox_workers()?;
        // Once per endpoint, though an actix app builds it once per worker from clones.
        config.once_per_endpoint(|| tracing::info!("{}", config.registry().subscription_hint()));
        Ok(Endpoint {
            config: Arc::new(config),
        })
    }

    /// The configuration this endpoint was built from.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
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
        let (raw_header, header) = self.signed(body, signature)?;
        let verifier = self.config.verifier();
        let signed_at = verifier.verify_parsed(body, &header, verifier.now())?;
        self.take_verified(body, raw_header, signed_at, || context, None)
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
    /// keeps it in the inbox in inbox mode. Its signature is not checked against the clock
    /// again (it may have waited in the queue), but its id and type are checked against its
    /// body.
    ///
    /// # Errors
    ///
    /// [`WebhookError::DeliveryMismatch`] when the delivery was altered since it was verified,
    /// [`WebhookError::UnsignedDelivery`] in inbox mode for a delivery kept without its
    /// signature header, and the route's errors otherwise.
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
        let expected = dispatch::Expected {
            event_id: &delivery.event_id,
            event_type: &delivery.event_type,
        };
        let signature = match (self.config.inbox_mode(), delivery.signature()) {
            (Some(_), None) => return Err(WebhookError::UnsignedDelivery),
            (_, signature) => signature.unwrap_or_default(),
        };
        self.take_verified(
            delivery.body(),
            signature,
            delivery.timestamp,
            context,
            Some(expected),
        )
        .await
    }

    /// The checks before verification when the caller holds the whole body: a signature
    /// header that parses, and a body within the limit.
    fn signed<'s>(
        &self,
        body: &[u8],
        signature: Option<&'s str>,
    ) -> Result<(&'s str, SignatureHeader<'s>), WebhookError> {
        let raw_header = signature.ok_or(SignatureError::MissingHeader)?;
        let header = SignatureHeader::parse(raw_header)?;
        let limit = self.config.body_limit();
        if body.len() > limit {
            return Err(WebhookError::BodyTooLarge { limit });
        }
        Ok((raw_header, header))
    }

    /// A verified body read as a [`VerifiedDelivery`].
    pub(crate) fn verify_read(
        &self,
        body: Bytes,
        raw_header: &str,
        header: &SignatureHeader<'_>,
    ) -> Result<VerifiedDelivery, WebhookError> {
        let verifier = self.config.verifier();
        let timestamp = verifier.verify_parsed(&body, header, verifier.now())?;
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
    ) -> Result<Received, WebhookError> {
        match self.config.inbox_mode() {
            Some(inbox) => enqueue(inbox, body, raw_header, signed_at, expected).await,
            None => {
                let run = self.start(body, context().borrow(), expected)?;
                run.await?.into_result().map(Received::Handled)
            }
        }
    }

    /// Prepares the handlers with `context`, then returns their detached run: a future that
    /// borrows neither the body nor the context, so a framework that needs `Send` futures
    /// (axum) can await it whatever the context holds.
    pub(crate) fn start(
        &self,
        body: &[u8],
        context: &Context<'_>,
        expected: Option<dispatch::Expected<'_>>,
    ) -> Result<
        impl Future<Output = Result<DispatchReport, WebhookError>> + Send + 'static,
        WebhookError,
    > {
        let (prepared, span) = dispatch::prepare(body, self.config.registry(), context)?;
        if let Some(expected) = expected
            && let Some(field) = expected.mismatch(&prepared.event_id, &prepared.event_type)
        {
            span.in_scope(|| {
                tracing::error!(
                    field,
                    "a queued delivery does not match its body: refused, no handler ran"
                );
            });
            return Err(WebhookError::DeliveryMismatch { field });
        }
        let claims = self.config.claims();
        Ok(async move {
            match claims {
                None => detached(prepared.run_unclaimed().instrument(span)).await,
                Some(claims) => {
                    // Boxed: the claimed run's state (leases, object claims) is many times the
                    // unclaimed one's, and every dispatch future would otherwise be that large.
                    let run = Box::pin(async move { prepared.run_claimed(&claims).await });
                    detached(run.instrument(span))
                        .await?
                        .map_err(WebhookError::from)
                }
            }
        })
    }
}

/// Keeps a verified delivery in the inbox.
async fn enqueue(
    mode: &InboxMode,
    body: &[u8],
    signature: &str,
    signed_at: u64,
    expected: Option<dispatch::Expected<'_>>,
) -> Result<Received, WebhookError> {
    let raw = RawEvent::parse(body)?;
    if let Some(field) = expected.and_then(|expected| expected.mismatch(&raw.id, &raw.event_type)) {
        tracing::error!(
            field,
            event_id = %raw.id,
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
    let appended = mode.inbox.append(entry).await.map_err(|error| {
        crate::metrics::store_failure("inbox");
        WebhookError::Inbox(error)
    })?;
    Ok(match appended {
        Appended::New => {
            tracing::info!(%event_id, "delivery kept in the inbox");
            mode.wake();
            Received::Queued {
                event_id,
                event_type,
            }
        }
        Appended::Duplicate => {
            tracing::info!(%event_id, "delivery already in the inbox");
            Received::AlreadyQueued {
                event_id,
                event_type,
            }
        }
    })
}

/// Runs `work` as its own task on the current tokio runtime, so that dropping the caller does
/// not stop it half-way; in place when there is no runtime.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, WebhookError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn(work).await.map_err(|error| {
            // Handlers' panics are caught inside; a panic here is the dispatch's own (a
            // store's, say), never to be mistaken for the runtime shutting down.
            if error.is_panic() {
                let message = panic_message(&*error.into_panic());
                tracing::error!(panic = %message, "the dispatch task panicked");
                WebhookError::DispatchPanicked(message)
            } else {
                WebhookError::Interrupted
            }
        }),
        Err(_) => Ok(work.await),
    }
}
