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
    by_event: HashMap<&'static str, Vec<&'static Handler>>,
    wildcard: Vec<&'static Handler>,
}

impl Registry {
    /// The registry of every handler submitted with `#[nextgen_event]`, in any linked crate.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry::new(inventory::iter::<Handler>.into_iter()))
    }

    fn new(handlers: impl Iterator<Item = &'static Handler>) -> Self {
        let mut by_event: HashMap<&'static str, Vec<&'static Handler>> = HashMap::new();
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
        Registry { by_event, wildcard }
    }

    /// The handlers registered for exactly this event type (not the wildcard ones).
    pub fn handlers_for(&self, event_type: &str) -> &[&'static Handler] {
        self.by_event.get(event_type).map_or(&[], Vec::as_slice)
    }

    /// The handlers registered for `*`, which see every event.
    pub fn wildcard_handlers(&self) -> &[&'static Handler] {
        &self.wildcard
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
