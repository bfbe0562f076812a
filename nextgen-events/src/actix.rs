//! actix-web integration: the one-line webhook route and the [`VerifiedEvent`] extractor.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use nextgen_events::{actix::webhooks, WebhookConfig};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let config = WebhookConfig::from_env().expect("NEXTGEN_WEBHOOK_SECRET");
//!     HttpServer::new(move || App::new().configure(webhooks("/webhook", config.clone())))
//!         .bind(("127.0.0.1", 8080))?
//!         .run()
//!         .await
//! }
//! ```

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::{Stream, StreamExt};

use crate::config::WebhookConfig;
use crate::context::Context;
use crate::delivery::{self, VerifiedDelivery};
use crate::dispatch;
use crate::envelope::EnvelopeError;
use crate::error::WebhookError;
use crate::inbox::Appended;
use crate::metrics;
use crate::registry::Registry;
use crate::report::DispatchReport;
use crate::signature::{self, HeaderProblem, SignatureError, SignatureHeader};
use crate::throttle::Throttle;

/// Mounts the webhook endpoint: `POST path` verifies, parses and dispatches every delivery to
/// the `#[nextgen_event]` handlers, and answers as the [`WebhookError`] docs describe.
///
/// # Panics
///
/// When two handlers linked into the binary share a name (see
/// [`Registry::check_names`]): they would share their idempotency records, so the app stops
/// at start-up with a message naming both and the fix.
///
/// ```
/// use actix_web::App;
/// use nextgen_events::{actix::webhooks, WebhookConfig};
///
/// let config = WebhookConfig::new("whsec_test_secret");
/// let app = App::new().configure(webhooks("/webhook", config));
/// ```
pub fn webhooks(path: &str, config: WebhookConfig) -> impl FnOnce(&mut web::ServiceConfig) {
    let path = path.to_owned();
    if let Err(duplicate) = Registry::global().check_names() {
        panic!("cannot mount the webhook route at `{path}`: {duplicate}");
    }
    config.start_inbox_workers();
    // Once per process, though every worker of the app mounts the route.
    static SUBSCRIPTION_LOGGED: std::sync::Once = std::sync::Once::new();
    SUBSCRIPTION_LOGGED.call_once(|| tracing::info!("{}", Registry::global().subscription_hint()));
    move |service: &mut web::ServiceConfig| {
        service.service(
            web::resource(path)
                // Resource-level data: several endpoints with their own secrets can coexist,
                // while the handlers' own `web::Data` still comes from the App.
                .app_data(web::Data::new(config))
                .route(web::post().to(webhook_route))
                .default_service(web::to(method_not_allowed)),
        );
    }
}

async fn webhook_route(
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebhookError> {
    let answered = handle_delivery(&request, payload).await;
    count(&answered);
    answered.map(|_| received())
}

/// What an acknowledged delivery was: its event type, and how it was taken.
struct Acknowledged {
    event_type: String,
    outcome: &'static str,
}

async fn handle_delivery(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<Acknowledged, WebhookError> {
    let config = webhook_config(request)?;
    // Cheap rejections first: no body is read for a request that cannot be genuine.
    let header = SignatureHeader::parse(signature_header(request)?)?;
    let body = read_body(request, payload, config).await?;
    let signed_at = config
        .verifier()
        .verify_parsed(&body, &header, config.verifier().now())?;
    if let Some(inbox) = config.inbox_mode() {
        let (event_type, appended) = delivery::enqueue(inbox, &body, signed_at).await?;
        let outcome = match appended {
            Appended::New => "queued",
            Appended::Duplicate => "duplicate",
        };
        return Ok(Acknowledged {
            event_type,
            outcome,
        });
    }
    let report = dispatch::dispatch_with(&body, &Context::from_request(request), config)
        .await?
        .into_result()?;
    Ok(Acknowledged {
        event_type: report.event_type,
        outcome: "handled",
    })
}

/// Counts the delivery's answer (see [`metrics`](crate::metrics)).
fn count(answered: &Result<Acknowledged, WebhookError>) {
    match answered {
        Ok(acknowledged) => metrics::delivery(&acknowledged.event_type, acknowledged.outcome),
        Err(WebhookError::HandlersFailed(report)) if report.only_in_progress() => {
            metrics::delivery(&report.event_type, "in_progress");
        }
        Err(WebhookError::HandlersFailed(report)) => {
            metrics::delivery(&report.event_type, "failed")
        }
        Err(WebhookError::Envelope(EnvelopeError::PayloadMismatch { event_type, .. })) => {
            metrics::delivery(event_type, "failed");
        }
        Err(error) if error.status() < 500 => metrics::rejection(error.code()),
        Err(_) => metrics::delivery("", "failed"),
    }
}

/// The acknowledgement NextGen expects: 200 `{"received": true}`.
pub fn received() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(r#"{"received":true}"#)
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(error_body(
            "invalid_request_error",
            "method_not_allowed",
            &format!(
                "{} is not accepted here: NextGen delivers webhooks with POST",
                request.method()
            ),
        ))
}

fn webhook_config(request: &HttpRequest) -> Result<&WebhookConfig, WebhookError> {
    request
        .app_data::<web::Data<WebhookConfig>>()
        .map(|data| data.get_ref())
        .or_else(|| request.app_data::<WebhookConfig>())
        .ok_or(WebhookError::NotConfigured)
}

fn signature_header(request: &HttpRequest) -> Result<&str, SignatureError> {
    let value = request
        .headers()
        .get(signature::HEADER)
        .ok_or(SignatureError::MissingHeader)?;
    value
        .to_str()
        .map_err(|_| SignatureError::MalformedHeader(HeaderProblem::NotAscii))
}

/// What is allocated for a body before its bytes arrive, whatever `Content-Length` says.
const FIRST_ALLOCATION: usize = 16 * 1024;

/// Reads the body up to the configured limit and within the configured time, refusing early
/// on a larger `Content-Length` and never buffering more than the limit whatever the sender
/// claims.
async fn read_body(
    request: &HttpRequest,
    payload: impl Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    config: &WebhookConfig,
) -> Result<Bytes, WebhookError> {
    let limit = config.max_body_bytes();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(WebhookError::BodyTooLarge { limit });
    }
    let timeout = config.body_timeout_duration();
    let capacity = declared.unwrap_or(0).min(FIRST_ALLOCATION);
    tokio::time::timeout(timeout, read_chunks(payload, limit, capacity))
        .await
        .map_err(|_| WebhookError::BodyTimeout { timeout })?
}

async fn read_chunks(
    mut payload: impl Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    limit: usize,
    capacity: usize,
) -> Result<Bytes, WebhookError> {
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| WebhookError::BodyUnreadable(error.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::BodyTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn error_body(error_type: &str, code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "type": error_type, "code": code, "message": message } })
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        // The handlers' own errors were logged with their names as they failed; here the
        // delivery's outcome. Neither carries the body nor a secret. Rejections can be caused
        // by anyone who can reach the endpoint, so their warnings are rate-limited.
        static REJECTIONS: Throttle = Throttle::new(20, Duration::from_secs(10));
        if self.status() >= 500 {
            tracing::error!(
                status = self.status(),
                code = self.code(),
                "webhook failed: {self}"
            );
        } else if let Some(suppressed) = REJECTIONS.admit(Instant::now()) {
            tracing::warn!(
                status = self.status(),
                code = self.code(),
                suppressed,
                "webhook rejected: {self}"
            );
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(retry_after) = self.retry_after() {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, seconds.max(1)));
        }
        // The rest of the body was not read: the connection cannot carry another request.
        if matches!(
            self,
            WebhookError::BodyTimeout { .. } | WebhookError::BodyTooLarge { .. }
        ) {
            response.force_close();
        }
        response.json(error_body(self.error_type(), self.code(), &self.answer()))
    }
}

/// An extractor for writing your own route: the request's body, verified against the
/// [`WebhookConfig`] in the app data and read as an event envelope.
///
/// ```
/// use actix_web::{post, web, App, HttpRequest, HttpResponse};
/// use nextgen_events::actix::{received, VerifiedEvent};
/// use nextgen_events::{WebhookConfig, WebhookError};
///
/// #[post("/payments/webhook")]
/// async fn webhook(event: VerifiedEvent, request: HttpRequest) -> Result<HttpResponse, WebhookError> {
///     tracing::info!(id = %event.event_id, "verified");
///     event.dispatch(&request).await?;
///     Ok(received())
/// }
///
/// let app = App::new()
///     .app_data(web::Data::new(WebhookConfig::new("whsec_test_secret")))
///     .service(webhook);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent(VerifiedDelivery);

impl VerifiedEvent {
    /// Runs every matching handler, with the request's app data as their context.
    pub async fn dispatch(&self, request: &HttpRequest) -> Result<DispatchReport, WebhookError> {
        let config = webhook_config(request)?;
        self.0
            .dispatch(config, &Context::from_request(request))
            .await
    }

    /// The serializable delivery, for queueing it and handling it later.
    pub fn into_delivery(self) -> VerifiedDelivery {
        self.0
    }
}

impl Deref for VerifiedEvent {
    type Target = VerifiedDelivery;

    fn deref(&self) -> &VerifiedDelivery {
        &self.0
    }
}

impl FromRequest for VerifiedEvent {
    type Error = WebhookError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebhookError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let config = webhook_config(&request)?;
            let header = SignatureHeader::parse(signature_header(&request)?)?;
            let body = read_body(&request, payload, config).await?;
            VerifiedDelivery::verify_parsed(config, body, &header).map(VerifiedEvent)
        })
    }
}
