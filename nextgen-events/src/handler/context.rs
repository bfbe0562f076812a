//! The dispatch context: where handlers' later arguments (app data) come from.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::error::HandlerError;

/// What a delivery is dispatched with, besides the event: the app's data.
///
/// Over HTTP it wraps the request, so the framework's app data reaches handlers (actix's
/// `web::Data<T>`, axum's `Extension<T>` and `State<T>`). In tests, add data by hand:
///
/// ```
/// use nextgen_events::Context;
///
/// #[derive(Clone)]
/// struct Db;
/// let context = Context::new().with_data(Db);
/// assert!(context.app_data::<Db>().is_some());
/// ```
#[derive(Default)]
pub struct Context<'a> {
    source: Source<'a>,
    data: HashMap<TypeId, Box<dyn Any>>,
}

/// Where a context's values come from, besides those added to it.
#[derive(Default)]
pub(crate) enum Source<'a> {
    #[default]
    None,
    /// Values given to the configuration, for deliveries handled away from their request.
    App(&'a AppData),
    #[cfg(feature = "actix")]
    Actix(&'a actix_web::HttpRequest),
    #[cfg(feature = "axum")]
    Axum {
        /// The request's extensions, where `Extension` layers put their values.
        extensions: &'a ::axum::http::Extensions,
        /// The router's state.
        state: &'a (dyn Any + Send + Sync),
    },
}

/// Values for handlers' arguments that do not come from a request: what the inbox's workers
/// dispatch with (see [`WebhookConfig::with_app_data`](crate::WebhookConfig::with_app_data)).
/// Clones share the values.
#[derive(Clone, Default)]
pub struct AppData {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl AppData {
    /// Adds a value (a `web::Data<T>`, an `Extension<T>`, ...), replacing one of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was added.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for AppData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppData")
            .field("values", &self.values.len())
            .finish()
    }
}

impl<'a> Context<'a> {
    /// An empty context: handlers that take app data will fail with
    /// [`HandlerError::MissingAppData`].
    pub fn new() -> Self {
        Context::default()
    }

    /// A context whose values come from `source`.
    pub(crate) fn of_source(source: Source<'a>) -> Self {
        Context {
            source,
            data: HashMap::new(),
        }
    }

    /// The context of an actix-web request: its app data is the `App`'s.
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn from_request(request: &'a actix_web::HttpRequest) -> Self {
        Context::of_source(Source::Actix(request))
    }

    /// The context of a delivery handled away from its request: the values of `shared`.
    pub fn from_app_data(shared: &'a AppData) -> Self {
        Context::of_source(Source::App(shared))
    }

    /// Adds a value (a `web::Data<T>`, an `Extension<T>`, any type a [`FromContext`] impl
    /// asks for); it takes precedence over the request's app data.
    pub fn with_data<T: 'static>(mut self, value: T) -> Self {
        self.data.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// A value of type `T`, from the values added here, else the configuration's app data
    /// (inbox workers), else an actix request's app data.
    pub fn app_data<T: 'static>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref())
            .or_else(|| self.source_data::<T>())
    }

    fn source_data<T: 'static>(&self) -> Option<&T> {
        match &self.source {
            Source::None => None,
            Source::App(shared) => shared.get::<T>(),
            #[cfg(feature = "actix")]
            Source::Actix(request) => request.app_data::<T>(),
            // axum's extensions only hold `Send + Sync` values: see `axum_extension`.
            #[cfg(feature = "axum")]
            Source::Axum { .. } => None,
        }
    }

    /// A value an axum `Extension` layer added to the request.
    #[cfg(feature = "axum")]
    pub(crate) fn axum_extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        match &self.source {
            Source::Axum { extensions, .. } => extensions.get::<T>(),
            _ => None,
        }
    }

    /// The router's state, when the request came through the axum integration and the state
    /// is a `T`.
    #[cfg(feature = "axum")]
    pub(crate) fn axum_state<T: 'static>(&self) -> Option<&T> {
        match &self.source {
            Source::Axum { state, .. } => state.downcast_ref(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::None => "none",
            Source::App(_) => "app data",
            #[cfg(feature = "actix")]
            Source::Actix(_) => "actix request",
            #[cfg(feature = "axum")]
            Source::Axum { .. } => "axum request",
        };
        f.debug_struct("Context")
            .field("source", &source)
            .field("data", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// A handler argument after the first: resolved from the [`Context`] when a delivery is
/// dispatched.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a webhook handler argument: the arguments after the payload come from the app",
    label = "expected app data such as `web::Data<T>` (actix) or `Extension<T>` (axum), or a type that implements `FromContext`",
    note = "register the value on the app (actix: `.app_data(web::Data::new(value))`, axum: `.layer(Extension(value))`) and take it as that type, or implement `nextgen_events::FromContext` for a type of yours"
)]
pub trait FromContext: Sized {
    /// Resolves the argument.
    fn from_context(context: &Context<'_>) -> Result<Self, HandlerError>;
}
