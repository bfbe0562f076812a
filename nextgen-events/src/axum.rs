//! axum integration: the one-line webhook route and the [`VerifiedEvent`] extractor.
//!
//! Handlers take the router's values as their later arguments: `Extension<T>` for a value an
//! [`Extension`] layer added, `State<T>` for the router's state (when it is a `T`). Both are in
//! the [prelude](crate::prelude).
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::Router;
//! use nextgen_events::{axum::webhooks, Endpoint, WebhookConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let endpoint = Endpoint::new(WebhookConfig::from_env()?)?;
//!     let app: Router = Router::new().merge(webhooks("/webhook", endpoint.clone()));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
//!         .await?;
//!     // After axum's graceful stop: what still runs finishes and records its outcome.
//!     endpoint.shutdown(Duration::from_secs(30)).await;
//!     Ok(())
//! }
//! ```

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub use crate::admin::axum_mount::inbox_page;

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

#[cfg(doc)]
use crate::config::WebhookConfig;
use crate::delivery::VerifiedDelivery;
use crate::endpoint::{Endpoint, IntoEndpoint, Received};
use crate::error::WebhookError;
use crate::handler::HandlerError;
use crate::handler::{Context, FromContext, Source};
use crate::route::{self, Incoming};
use crate::signature;

/// Mounts the webhook endpoint: `POST path` verifies, parses and takes every delivery for the
/// `#[nextgen_event]` handlers (now, or through the inbox in inbox mode), and answers exactly
/// as the actix route does (see [`WebhookError`]). Give it an [`Endpoint`] or a
/// [`WebhookConfig`], and merge it into your router; `S` is your router's state, which
/// handlers can take as `State<S>`.
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
/// use axum::{Extension, Router};
/// use nextgen_events::{axum::webhooks, Endpoint, WebhookConfig};
///
/// #[derive(Clone)]
/// struct Ledger;
///
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
/// let app: Router = Router::new()
///     .merge(webhooks("/webhook", endpoint))
///     .layer(Extension(Ledger));
/// # Ok::<(), nextgen_events::ConfigError>(())
/// ```
pub fn webhooks<S>(path: &str, endpoint: impl IntoEndpoint) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let endpoint = endpoint.into_endpoint(path);
    let receive = move |State(state): State<S>, request: Request| {
        let endpoint = endpoint.clone();
        async move { webhook_route(&endpoint, &state, request).await }
    };
    Router::new().route(path, post(receive).fallback(method_not_allowed))
}

async fn webhook_route<S: Send + Sync + 'static>(
    endpoint: &Endpoint,
    state: &S,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let incoming = incoming(&parts.headers, body);
    let context = || {
        Context::of_source(Source::Axum {
            extensions: &parts.extensions,
            state,
        })
    };
    let answered = route::take(endpoint, incoming, context).await;
    route::count(&answered);
    match answered {
        Ok(_) => received(),
        Err(error) => error.into_response(),
    }
}

fn incoming(headers: &HeaderMap, body: Body) -> Incoming<'_, axum::body::BodyDataStream> {
    Incoming::new(
        headers.get(signature::HEADER).map(|value| value.to_str()),
        headers
            .get(header::CONTENT_LENGTH)
            .map(|value| value.to_str()),
        body.into_data_stream(),
    )
}

/// The acknowledgement NextGen expects: 200 `{"received": true}`.
pub fn received() -> Response {
    json_response(StatusCode::OK, route::RECEIVED.to_owned())
}

async fn method_not_allowed(method: Method) -> Response {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        route::method_not_allowed(method.as_str()),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let answer = route::error_answer(&self);
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(status, answer.body);
        let headers = response.headers_mut();
        if let Some(seconds) = answer.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if answer.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// An extractor for writing your own route: the request's body, verified against the
/// [`Endpoint`] an [`Extension`] layer gave the router, and read as an event envelope.
///
/// ```
/// use axum::{routing::post, Extension, Router};
/// use nextgen_events::axum::{received, VerifiedEvent};
/// use nextgen_events::{Endpoint, WebhookConfig, WebhookError};
///
/// async fn webhook(event: VerifiedEvent) -> Result<axum::response::Response, WebhookError> {
///     tracing::info!(id = %event.event_id, "verified");
///     event.handle().await?;
///     Ok(received())
/// }
///
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test_secret"))?;
/// let app: Router = Router::new()
///     .route("/payments/webhook", post(webhook))
///     .layer(Extension(endpoint));
/// # Ok::<(), nextgen_events::ConfigError>(())
/// ```
pub struct VerifiedEvent {
    delivery: VerifiedDelivery,
    endpoint: Endpoint,
    extensions: axum::http::Extensions,
    state: Arc<dyn Any + Send + Sync>,
}

impl VerifiedEvent {
    /// Takes the delivery as the mounted route does (see [`Endpoint::handle`]): runs every
    /// matching handler now, with the request's extensions and the router's state as their
    /// context, or keeps it in the inbox in inbox mode.
    pub async fn handle(&self) -> Result<Received, WebhookError> {
        let context = || {
            Context::of_source(Source::Axum {
                extensions: &self.extensions,
                state: &*self.state,
            })
        };
        self.endpoint.handle_with(&self.delivery, context).await
    }

    /// The serializable delivery, for queueing it and handling it later.
    pub fn into_delivery(self) -> VerifiedDelivery {
        self.delivery
    }
}

impl Deref for VerifiedEvent {
    type Target = VerifiedDelivery;

    fn deref(&self) -> &VerifiedDelivery {
        &self.delivery
    }
}

impl fmt::Debug for VerifiedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifiedEvent")
            .field(&self.delivery)
            .finish()
    }
}

impl<S> FromRequest<S> for VerifiedEvent
where
    S: Clone + Send + Sync + 'static,
{
    type Rejection = WebhookError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebhookError> {
        let (parts, body) = request.into_parts();
        let endpoint = parts
            .extensions
            .get::<Endpoint>()
            .cloned()
            .ok_or(WebhookError::NotConfigured)?;
        let delivery = route::verify(&endpoint, incoming(&parts.headers, body)).await?;
        Ok(VerifiedEvent {
            delivery,
            endpoint,
            extensions: parts.extensions,
            state: Arc::new(state.clone()),
        })
    }
}

// Not suggested in errors: rustc would quote these impls' source lines under our message.
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> FromContext for Extension<T> {
    /// The value an `Extension` layer added to the request, or one given to the context or
    /// the configuration's app data (as `T` or as `Extension<T>`).
    fn from_context(context: &Context<'_>) -> Result<Self, HandlerError> {
        context
            .app_data::<Extension<T>>()
            .map(|Extension(value)| value)
            .or_else(|| context.app_data::<T>())
            .or_else(|| context.axum_extension::<T>())
            .cloned()
            .map(Extension)
            .ok_or(HandlerError::MissingAppData {
                type_name: std::any::type_name::<Extension<T>>(),
            })
    }
}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> FromContext for State<T> {
    /// The router's state when it is a `T`, else a `T` given to the context or the
    /// configuration's app data (inbox workers have no router).
    fn from_context(context: &Context<'_>) -> Result<Self, HandlerError> {
        context
            .axum_state::<T>()
            .or_else(|| context.app_data::<T>())
            .cloned()
            .map(State)
            .ok_or(HandlerError::MissingAppData {
                type_name: std::any::type_name::<State<T>>(),
            })
    }
}
