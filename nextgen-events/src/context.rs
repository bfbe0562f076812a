//! The dispatch context: where handlers' later arguments (app data) come from.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::web;

use crate::report::HandlerError;

/// What a delivery is dispatched with, besides the event: the app's data.
///
/// Over HTTP it wraps the request, so `web::Data<T>` registered on the `App` reaches handlers.
/// In tests, add data by hand:
///
/// ```
/// use actix_web::web;
/// use nextgen_events::Context;
///
/// struct Db;
/// let context = Context::new().with_data(web::Data::new(Db));
/// assert!(context.app_data::<web::Data<Db>>().is_some());
/// ```
#[derive(Default)]
pub struct Context<'a> {
    request: Option<&'a HttpRequest>,
    shared: Option<&'a AppData>,
    data: Extensions,
}

/// Values for handlers' arguments that do not come from a request: what the inbox's workers
/// dispatch with (see [`WebhookConfig::app_data`](crate::WebhookConfig::app_data)).
/// Clones share the values.
#[derive(Clone, Default)]
pub struct AppData {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl AppData {
    /// Adds a value, usually a `web::Data<T>`, replacing one of the same type.
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

    /// The context of an HTTP request: its app data is the `App`'s.
    pub fn from_request(request: &'a HttpRequest) -> Self {
        Context {
            request: Some(request),
            shared: None,
            data: Extensions::new(),
        }
    }

    /// The context of a delivery handled away from its request: the values of `shared`.
    pub fn from_app_data(shared: &'a AppData) -> Self {
        Context {
            request: None,
            shared: Some(shared),
            data: Extensions::new(),
        }
    }

    /// Adds a value, usually a `web::Data<T>`; it takes precedence over the request's app data.
    pub fn with_data<T: 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// A value of type `T`, from the values added here, else the shared app data, else the
    /// request's app data.
    pub fn app_data<T: 'static>(&self) -> Option<&T> {
        self.data
            .get::<T>()
            .or_else(|| self.shared.and_then(AppData::get::<T>))
            .or_else(|| self.request.and_then(|request| request.app_data::<T>()))
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("request", &self.request.map(|request| request.path()))
            .finish_non_exhaustive()
    }
}

/// A handler argument after the first: resolved from the [`Context`] when a delivery is
/// dispatched.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a webhook handler argument: the arguments after the payload come from the app",
    label = "expected `web::Data<T>`, or a type that implements `FromContext`",
    note = "register the value on the actix `App` with `.app_data(web::Data::new(value))` and take `web::Data<YourType>`, or implement `nextgen_events::FromContext` for a type of yours"
)]
pub trait FromContext: Sized {
    /// Resolves the argument.
    fn from_context(context: &Context<'_>) -> Result<Self, HandlerError>;
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
