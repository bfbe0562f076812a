//! The event catalog: every event type NextGen sends and the payload type it carries.
//!
//! Generated from the same table the `#[nextgen_event]` macro checks names against, so the
//! runtime and the compile-time checks cannot disagree.
//!
//! ```
//! use nextgen_events::catalog::{self, event_types};
//!
//! let charge = catalog::lookup(event_types::CHARGE_SUCCEEDED).unwrap();
//! assert_eq!(charge.payload(), "Charge");
//! assert!(catalog::lookup("charge.succeded").is_none());
//! ```

use std::any::Any;

use serde::de::DeserializeOwned;

use crate::envelope::{EnvelopeError, Event, EventData, RawEvent};

/// Not public API apart from the `#[nextgen_event]` expansion, which names it through
/// `__private`: its one path.
pub(crate) mod erased {
    /// An event parsed into its payload type, with that type erased so handlers of any event
    /// can sit in one registry. Each handler downcasts it back to `Event<ItsPayload>`.
    pub type ErasedEvent = Box<dyn std::any::Any + Send>;
}

pub(crate) use erased::ErasedEvent;

/// How to parse and copy the payload of one event type.
#[derive(Clone, Copy)]
pub(crate) struct PayloadKind {
    pub(crate) parse: fn(&RawEvent<'_>) -> Result<ErasedEvent, EnvelopeError>,
    pub(crate) duplicate: fn(&ErasedEvent) -> Option<ErasedEvent>,
    /// Fills in the envelope of an event boxed by `deserialize_payload`.
    pub(crate) assemble: fn(Event<()>, Box<dyn Any + Send>) -> Option<ErasedEvent>,
    /// The parsed payload's `id` (what `latest_only` keys by), when the payload has one.
    pub(crate) object_id: fn(&ErasedEvent) -> Option<String>,
}

impl PayloadKind {
    pub(crate) const fn of<T: DeserializeOwned + Clone + Send + 'static>() -> Self {
        PayloadKind {
            parse: parse_erased::<T>,
            duplicate: duplicate_erased::<T>,
            assemble: assemble_erased::<T>,
            object_id: |_| None,
        }
    }

    /// The same, for a payload with an `id`: `latest_only` reads it from the parsed payload
    /// instead of reading the body again.
    pub(crate) const fn with_object_id(
        self,
        object_id: fn(&ErasedEvent) -> Option<String>,
    ) -> Self {
        PayloadKind { object_id, ..self }
    }
}

fn parse_erased<T: DeserializeOwned + Send + 'static>(
    raw: &RawEvent<'_>,
) -> Result<ErasedEvent, EnvelopeError> {
    let object = raw.payload::<T>()?;
    Ok(Box::new(raw.with_object(object)))
}

fn duplicate_erased<T: Clone + Send + 'static>(event: &ErasedEvent) -> Option<ErasedEvent> {
    let event = event.downcast_ref::<Event<T>>()?;
    Some(Box::new(event.clone()))
}

fn assemble_erased<T: Send + 'static>(
    meta: Event<()>,
    object: Box<dyn Any + Send>,
) -> Option<ErasedEvent> {
    // The object was parsed straight into an `Event<T>` box (see `deserialize_payload`): the
    // envelope's fields go into it, and the box is the handlers' event as it is.
    let mut event = object.downcast::<Event<T>>().ok()?;
    let Event {
        id,
        event_type,
        api_version,
        created,
        livemode,
        pending_webhooks,
        request,
        data: EventData {
            previous_attributes,
            ..
        },
    } = meta;
    event.id = id;
    event.event_type = event_type;
    event.api_version = api_version;
    event.created = created;
    event.livemode = livemode;
    event.pending_webhooks = pending_webhooks;
    event.request = request;
    event.data.previous_attributes = previous_attributes;
    Some(event)
}

/// An envelope around `object` whose other fields are filled in later by `assemble_erased`:
/// the object is boxed once, in the event its handlers take.
fn boxed_event<T: Send + 'static>(object: T) -> Box<dyn Any + Send> {
    Box::new(Event {
        id: String::new(),
        event_type: String::new(),
        api_version: None,
        created: 0,
        livemode: false,
        pending_webhooks: None,
        request: None,
        data: EventData {
            object,
            previous_attributes: None,
        },
    })
}

/// One entry of the catalog: an event type and its payload type.
#[derive(Clone, Copy)]
pub struct CatalogEntry {
    name: &'static str,
    payload: &'static str,
    pub(crate) kind: PayloadKind,
}

impl CatalogEntry {
    /// The event type, such as `charge.succeeded`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The name of its payload type in [`payloads`](crate::payloads), such as `Charge`.
    pub fn payload(&self) -> &'static str {
        self.payload
    }
}

impl std::fmt::Debug for CatalogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogEntry")
            .field("name", &self.name)
            .field("payload", &self.payload)
            .finish()
    }
}

macro_rules! define_catalog {
    ($($name:literal => $payload:ident as $constant:ident),* $(,)?) => {
        /// Every event type as a constant: a misspelt constant does not compile, a misspelt
        /// string would silently never match.
        pub mod event_types {
            $(
                #[doc = concat!("`", $name, "`, carrying a [`", stringify!($payload), "`](crate::payloads::", stringify!($payload), ").")]
                pub const $constant: &str = $name;
            )*
        }

        /// Deserializes `data.object` of a catalog event type into its payload type, boxed in
        /// an `Event` whose envelope `PayloadKind::assemble` fills in.
        pub(crate) fn deserialize_payload<'de, D: serde::Deserializer<'de>>(
            event_type: &str,
            deserializer: D,
        ) -> Result<Box<dyn Any + Send>, D::Error> {
            match event_type {
                $($name => <crate::payloads::$payload as serde::Deserialize>::deserialize(deserializer)
                    .map(boxed_event),)*
                other => Err(serde::de::Error::custom(format_args!("`{other}` is not in the catalog"))),
            }
        }

        /// Every event type of the catalog, in catalog order.
        pub const EVENT_TYPES: &[CatalogEntry] = &[
            $(CatalogEntry {
                name: $name,
                payload: stringify!($payload),
                kind: PayloadKind::of::<crate::payloads::$payload>().with_object_id(|event| {
                    event
                        .downcast_ref::<Event<crate::payloads::$payload>>()
                        .map(|event| event.data.object.id.clone())
                }),
            }),*
        ];
    };
}

nextgen_macros::__catalog!(define_catalog);

/// Matches every event, known to the catalog or not; its handlers take
/// `Event<serde_json::Value>`, or `Event<Box<RawValue>>` for the object's JSON text.
pub const WILDCARD: &str = "*";

/// How wildcard handlers see every event: as JSON.
pub(crate) const UNTYPED: PayloadKind = PayloadKind::of::<serde_json::Value>();

/// How wildcard handlers that take the object's JSON text see every event.
pub(crate) const RAW: PayloadKind = PayloadKind::of::<Box<serde_json::value::RawValue>>();

/// Looks an event type up by name.
pub fn lookup(name: &str) -> Option<&'static CatalogEntry> {
    EVENT_TYPES.iter().find(|event| event.name == name)
}

/// The catalog's event type closest to a misspelt one, when one is close enough to be a likely
/// typo: the same "did you mean" (and threshold) as the `#[nextgen_event]` compile errors.
///
/// ```
/// use nextgen_events::catalog;
///
/// assert_eq!(catalog::suggest("charge.succeded"), Some("charge.succeeded"));
/// assert_eq!(catalog::suggest("payout.paid"), None);
/// ```
pub fn suggest(name: &str) -> Option<&'static str> {
    nextgen_catalog::suggest(name)
}
