//! actix-web integration: the one-line webhook route and the [`VerifiedEvent`] extractor.
//!
//! ```no_run
//! use std::time::Duration;
//! use actix_web::{App, HttpServer};
//! use nextgen_events::{actix::webhooks, Endpoint, WebhookConfig};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let config = WebhookConfig::from_env().map_err(std::io::Error::other)?;
//!     // Built once; actix builds the app once per worker thread, each with a clone.
//!     let endpoint = Endpoint::new(config).map_err(std::io::Error::other)?;
//!     let mounted = endpoint.clone();
//!     HttpServer::new(move || App::new().configure(webhooks("/webhook", mounted.clone())))
//!         .bind(("127.0.0.1", 8080))?
//!         .run()
//!         .await?;
//!     // After actix's graceful stop: what still runs finishes and records its outcome.
//!     endpoint.shutdown(Duration::from_secs(30)).await;
//!     Ok(())
//! }
//! ```

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub use crate::admin::actix_mount::inbox_page;

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::web;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};

#[cfg(doc)]
use crate::config::WebhookConfig;
use crate::delivery::VerifiedDelivery;
use crate::endpoint::{Endpoint, IntoEndpoint, Received};
use crate::error::WebhookError;
use crate::handler::HandlerError;
use crate::handler::{Context, FromContext};
use crate::route::{self, Incoming};
use crate::signature;

/// Mounts the webhook endpoint: `POST path` verifies, parses and takes every delivery for the
/// `#[nextgen_event]` handlers (now, or through the inbox in inbox mode), and answers as the
/// [`WebhookError`] docs describe. Give it an [`Endpoint`] or a [`WebhookConfig`].
///
/// # Panics
///
/// Given a [`WebhookConfig`], when [`Endpoint::new`] refuses it (an empty or whitespace-only
/// secret, two handlers with one name, a `latest_only` handler on a store without object
/// claims, a duration no clock can hold, ...), and in inbox mode, whose workers belong to an
/// [`Endpoint`] the app builds once and stops
/// ([`ConfigError::InboxNeedsEndpoint`](crate::ConfigError::InboxNeedsEndpoint)). The app stops
/// at start-up with a message naming the fix; build the [`Endpoint`] first to have the error as
/// a value.
///
/// ```
/// use actix_web::App;
/// use nextgen_events::{actix::webhooks, Endpoint, WebhookConfig};
///
/// let config = WebhookConfig::new("whsec_test_secret");
/// let app = App::new().configure(webhooks("/webhook", config));
///
/// // Or checked first, the error as a value:
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
/// let app = App::new().configure(webhooks("/webhook", endpoint));
/// # Ok::<(), nextgen_events::ConfigError>(())
/// ```
pub fn webhooks(path: &str, endpoint: impl IntoEndpoint) -> impl FnOnce(&mut web::ServiceConfig) {
    let endpoint = endpoint.into_endpoint(path);
    let path = path.to_owned();
    move |service: &mut web::ServiceConfig| {
        service.service(
            web::resource(path)
                // Resource-level data: several endpoints with their own secrets can coexist,
                // while the handlers' own `web::Data` still comes from the App.
                .app_data(web::Data::new(endpoint))
                .route(web::post().to(webhook_route))
                .default_service(web::to(method_not_allowed)),
        );
    }
}

async fn webhook_route(
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebhookError> {
    let answered = match registered_endpoint(&request) {
        Ok(endpoint) => {
            let incoming = incoming(&request, payload);
            route::take(endpoint, incoming, || Context::from_request(&request)).await
        }
        Err(error) => Err(error),
    };
    route::count(&answered);
    answered.map(|_| received())
}

fn incoming<P>(request: &HttpRequest, payload: P) -> Incoming<'_, P> {
    let headers = request.headers();
    Incoming::new(
        headers.get(signature::HEADER).map(|value| value.to_str()),
        headers
            .get(header::CONTENT_LENGTH)
            .map(|value| value.to_str()),
        payload,
    )
}

/// The acknowledgement NextGen expects: 200 `{"received": true}`.
pub fn received() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(route::RECEIVED)
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type(header::ContentType::json())
        .body(route::method_not_allowed(request.method().as_str()))
}

/// The endpoint the route was mounted with, or one the app registered for its own route.
fn registered_endpoint(request: &HttpRequest) -> Result<&Endpoint, WebhookError> {
    request
        .app_data::<web::Data<Endpoint>>()
        .map(|data| data.get_ref())
        .or_else(|| request.app_data::<Endpoint>())
        .ok_or(WebhookError::NotConfigured)
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let answer = route::error_answer(self);
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = answer.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        if answer.close {
            response.force_close();
        }
        response
            .content_type(header::ContentType::json())
            .body(answer.body)
    }
}

// Not suggested in errors: rustc would quote this impl's source line under our message.
#[diagnostic::do_not_recommend]
impl<T: ?Sized + 'static> FromContext for web::Data<T> {
    fn from_context(context: &Context<'_>) -> Result<Self, HandlerError> {
        context
            .app_data::<web::Data<T>>()
            .cloned()
            .ok_or(HandlerError::MissingAppData {
                type_name: std::any::type_name::<web::Data<T>>(),
            })
    }
}

/// An extractor for writing your own route: the request's body, verified against the
/// [`Endpoint`] in the app data and read as an event envelope.
///
/// ```
/// use actix_web::{post, web, App, HttpRequest, HttpResponse};
/// use nextgen_events::actix::{received, VerifiedEvent};
/// use nextgen_events::{Endpoint, WebhookConfig, WebhookError};
///
/// #[post("/payments/webhook")]
/// async fn webhook(event: VerifiedEvent, request: HttpRequest) -> Result<HttpResponse, WebhookError> {
///     tracing::info!(id = %event.event_id, "verified");
///     event.handle(&request).await?;
///     Ok(received())
/// }
///
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
/// let app = App::new()
///     .app_data(web::Data::new(endpoint))
///     .service(webhook);
/// # Ok::<(), nextgen_events::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent(VerifiedDelivery);

impl VerifiedEvent {
    /// Takes the delivery as the mounted route does (see [`Endpoint::handle`]): runs every
    /// matching handler now, with the request's app data as their context, or keeps it in
    /// the inbox in inbox mode.
    pub async fn handle(&self, request: &HttpRequest) -> Result<Received, WebhookError> {
        let endpoint = registered_endpoint(request)?;
        endpoint
            .handle(&self.0, &Context::from_request(request))
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
            let endpoint = registered_endpoint(&request)?;
            route::verify(endpoint, incoming(&request, payload))
                .await
                .map(VerifiedEvent)
        })
    }
}
