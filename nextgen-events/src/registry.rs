//! The registry: every `#[nextgen_event]` handler linked into the binary, by event type.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::catalog::WILDCARD;
use crate::handler::Handler;

/// The handlers linked into this binary, grouped by event type. Built once, on first use.
///
/// ```
/// use nextgen_events::{prelude::*, Registry};
///
/// #[nextgen_event("customer.created")]
/// async fn welcome(customer: Customer) {}
///
/// let registry = Registry::global();
/// assert!(registry
///     .handlers_for("customer.created")
///     .iter()
///     .any(|handler| handler.name().ends_with("::welcome")));
/// ```
#[derive(Debug)]
pub struct Registry {
    // foldhash, not SipHash: looked up for every delivery, keyed by our own catalog's names.
    by_event: HashMap<&'static str, Vec<&'static Handler>, foldhash::fast::RandomState>,
    wildcard: Vec<&'static Handler>,
    duplicate: Option<DuplicateHandlerName>,
}

/// Two handlers share one name. A handler's name is its identity in the idempotency store, so
/// they would share their claims and done markers: the app refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "two webhook handlers are named `{name}`: `{first}` and `{second}`; give one of them another name with `#[nextgen_event(\"...\", name = \"...\")]` (the name keys its idempotency records)"
)]
pub struct DuplicateHandlerName {
    /// The name both have.
    pub name: &'static str,
    /// Where the first one is: its event type and function.
    pub first: String,
    /// Where the second one is.
    pub second: String,
}

impl Registry {
    /// The registry of every handler submitted with `#[nextgen_event]`, in any linked crate.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry::new(inventory::iter::<Handler>.into_iter()))
    }

    /// A registry of just these handlers, for an endpoint of its own
    /// ([`WebhookConfig::with_registry`](crate::WebhookConfig::with_registry)): two NextGen
    /// accounts in one app, each with its handler set, or a test that runs only its handlers.
    /// Pick them from the global registry by name, event type or module.
    ///
    /// ```
    /// use nextgen_events::{prelude::*, Registry};
    ///
    /// #[nextgen_event("charge.succeeded", name = "billing.book")]
    /// async fn book(charge: Charge) {}
    ///
    /// #[nextgen_event("charge.succeeded", name = "marketplace.book")]
    /// async fn book_for_sellers(charge: Charge) {}
    ///
    /// let billing = Registry::from_handlers(
    ///     Registry::global()
    ///         .iter()
    ///         .filter(|handler| handler.name().starts_with("billing.")),
    /// );
    /// let names: Vec<_> = billing.iter().map(|handler| handler.name()).collect();
    /// assert_eq!(names, ["billing.book"]);
    /// ```
    pub fn from_handlers(handlers: impl IntoIterator<Item = &'static Handler>) -> Self {
        Registry::new(handlers.into_iter())
    }

    fn new(handlers: impl Iterator<Item = &'static Handler>) -> Self {
        let mut by_event: HashMap<&'static str, Vec<&'static Handler>, _> =
            HashMap::with_hasher(foldhash::fast::RandomState::default());
        let mut wildcard = Vec::new();
        for handler in handlers {
            if handler.event_type() == WILDCARD {
                wildcard.push(handler);
            } else {
                by_event
                    .entry(handler.event_type())
                    .or_default()
                    .push(handler);
            }
        }
        // Link order is not something users control: run handlers in name order instead.
        for handlers in by_event.values_mut() {
            handlers.sort_by_key(|handler| handler.name());
        }
        wildcard.sort_by_key(|handler| handler.name());
        let mut all: Vec<&'static Handler> = by_event
            .values()
            .flatten()
            .chain(&wildcard)
            .copied()
            .collect();
        all.sort_by_key(|handler| (handler.name(), handler.event_type(), handler.function()));
        let duplicate = all
            .windows(2)
            .find(|pair| pair[0].name() == pair[1].name())
            .map(|pair| DuplicateHandlerName {
                name: pair[0].name(),
                first: pair[0].to_string(),
                second: pair[1].to_string(),
            });
        Registry {
            by_event,
            wildcard,
            duplicate,
        }
    }

    /// Refuses a registry where two handlers share a name.
    /// [`WebhookConfig::check`](crate::WebhookConfig::check) calls it, so no
    /// [`Endpoint`](crate::Endpoint) is built with such a registry and an app that mounts one
    /// stops at start-up.
    pub fn check_names(&self) -> Result<(), DuplicateHandlerName> {
        self.duplicate.clone().map_or(Ok(()), Err)
    }

    /// The handlers registered for exactly this event type (not the wildcard ones).
    pub fn handlers_for(&self, event_type: &str) -> &[&'static Handler] {
        self.by_event.get(event_type).map_or(&[], Vec::as_slice)
    }

    /// The handlers registered for `*`, which see every event.
    pub fn wildcard_handlers(&self) -> &[&'static Handler] {
        &self.wildcard
    }

    /// The event types this app handles, in catalog order: what to subscribe the endpoint
    /// to in NextGen's dashboard. Empty when only `*` handlers exist (see
    /// [`handles_every_event`](Self::handles_every_event)).
    ///
    /// ```
    /// use nextgen_events::{prelude::*, Registry};
    ///
    /// #[nextgen_event("customer.created")]
    /// async fn welcome(customer: Customer) {}
    ///
    /// assert!(Registry::global().event_types().contains(&"customer.created"));
    /// ```
    pub fn event_types(&self) -> Vec<&'static str> {
        crate::catalog::EVENT_TYPES
            .iter()
            .map(|entry| entry.name())
            .filter(|name| self.by_event.contains_key(name))
            .collect()
    }

    /// Whether a `*` handler is registered, so the app handles every event type.
    pub fn handles_every_event(&self) -> bool {
        !self.wildcard.is_empty()
    }

    /// The line the route logs at start-up: which event types to subscribe the endpoint to.
    pub fn subscription_hint(&self) -> String {
        let types = self.event_types();
        match (self.handles_every_event(), types.is_empty()) {
            (true, _) => format!(
                "subscribe this endpoint to every event type (a `*` handler is registered); typed handlers: {}",
                if types.is_empty() { "none".to_owned() } else { types.join(", ") }
            ),
            (false, true) => "no `#[nextgen_event]` handler is linked into this binary: every delivery will be acknowledged without running anything (a handler crate nothing refers to needs `use my_handlers as _;`)".to_owned(),
            (false, false) => format!("subscribe this endpoint to: {}", types.join(", ")),
        }
    }

    /// Every registered handler.
    pub fn iter(&self) -> impl Iterator<Item = &'static Handler> + '_ {
        self.by_event
            .values()
            .flatten()
            .chain(&self.wildcard)
            .copied()
    }
}
