//! The event envelope: `Event<T>`, the JSON object every delivery carries around its payload.
//!
//! ```json
//! {"id": "evt_...", "object": "event", "api_version": "2026-04-17", "created": 1713745200,
//!  "livemode": false, "type": "charge.succeeded", "pending_webhooks": 1,
//!  "data": {"object": { ...the charge... }, "previous_attributes": { ... }}}
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// An event as NextGen sends it, with its payload typed as `T`.
///
/// `T` is the payload type the catalog gives for the event type (`Charge` for
/// `charge.succeeded`, ...), or `serde_json::Value` for any event at all.
///
/// ```
/// use nextgen_events::{Event, payloads::Charge};
///
/// let body = br#"{"id": "evt_1", "object": "event", "api_version": "2026-04-17",
///     "created": 1713745200, "livemode": false, "type": "charge.succeeded",
///     "data": {"object": {"id": "ch_1", "object": "charge", "amount": 2000,
///         "amount_refunded": 0, "currency": "usd", "paid": true, "status": "succeeded"}}}"#;
///
/// let event: Event<Charge> = Event::from_slice(body)?;
/// assert_eq!(event.event_type, "charge.succeeded");
/// assert_eq!(event.data.object.amount, 2000);
/// # Ok::<(), nextgen_events::EnvelopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<T> {
    /// The event's unique id (`evt_...`). Redeliveries of one event share it.
    pub id: String,
    /// The event type, such as `charge.succeeded`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The API version the payload was rendered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// When the event happened, in seconds since the Unix epoch.
    pub created: i64,
    /// Whether the event happened in live mode (`false`: test mode).
    pub livemode: bool,
    /// How many webhook deliveries of this event are still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_webhooks: Option<u32>,
    /// The API request that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<EventRequest>,
    /// The payload.
    pub data: EventData<T>,
}

/// The `data` member of an [`Event`]: the object the event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData<T> {
    /// The object (charge, customer, ...) as it is after the event.
    pub object: T,
    /// For `*.updated` events: the changed fields' previous values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Map<String, Value>>,
}

/// The API request that caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRequest {
    /// The request's id (`req_...`); `None` for events caused by NextGen itself.
    #[serde(default)]
    pub id: Option<String>,
    /// The idempotency key the request was made with.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// An event whose payload is left as JSON: for events no typed handler knows.
pub type UntypedEvent = Event<Value>;

/// An event whose payload has not been parsed yet: the envelope is read once, and `data.object`
/// is deserialized later into whichever type the handlers need.
pub type RawEvent<'a> = Event<&'a RawValue>;

/// Why a body could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not JSON at all.
    #[error("the body is not valid JSON: {message}")]
    NotJson {
        /// What the JSON parser said, with line and column.
        message: String,
    },
    /// The body is JSON but not an event envelope (`id`, `type`, `created`, `livemode`,
    /// `data.object`).
    #[error("the body is not a NextGen event: {path}: {message}")]
    NotAnEvent {
        /// Where in the JSON the problem is, such as `data` or `created`.
        path: String,
        /// What was wrong there.
        message: String,
    },
    /// The envelope is fine but `data.object` does not fit the payload type of the event type:
    /// the API sent something this version of the crate does not understand.
    #[error("the `{event_type}` event's payload does not fit `{payload}`: {path}: {message}")]
    PayloadMismatch {
        /// The event type.
        event_type: String,
        /// The payload type it was parsed into.
        payload: &'static str,
        /// Where in the JSON the problem is, such as `data.object.amount`.
        path: String,
        /// What was wrong there.
        message: String,
    },
}

impl EnvelopeError {
    /// A stable, machine-readable code for this failure class.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::NotJson { .. } => "invalid_json",
            EnvelopeError::NotAnEvent { .. } => "invalid_event",
            EnvelopeError::PayloadMismatch { .. } => "payload_mismatch",
        }
    }

    fn envelope(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = match error.path().to_string() {
            root if root == "." => "(top level)".to_owned(),
            path => path,
        };
        let inner = error.into_inner();
        if inner.is_data() {
            EnvelopeError::NotAnEvent {
                path,
                message: without_values(&inner.to_string()),
            }
        } else {
            EnvelopeError::NotJson {
                message: inner.to_string(),
            }
        }
    }
}

impl<T: DeserializeOwned> Event<T> {
    /// Parses a whole event from a (verified) body, with errors that name the JSON path of the
    /// offending field, such as `data.object.amount`.
    pub fn from_slice(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw = RawEvent::parse(body)?;
        raw.into_typed()
    }
}

impl<'a> RawEvent<'a> {
    /// Reads the envelope of a body, leaving `data.object` unparsed.
    pub fn parse(body: &'a [u8]) -> Result<Self, EnvelopeError> {
        let text = check_utf8(body)?;
        // serde's derive also reads structs from arrays, field by field: an event is an object.
        if body.trim_ascii_start().starts_with(b"[") {
            return Err(EnvelopeError::NotAnEvent {
                path: "(top level)".to_owned(),
                message: "expected an event object, found an array".to_owned(),
            });
        }
        // Path tracking costs on every value: the good path goes without it, and a body that
        // fails is read again with it to say where.
        serde_json::from_str(text).or_else(|_| Self::parse_tracking_path(text))
    }

    fn parse_tracking_path(text: &'a str) -> Result<Self, EnvelopeError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let event: RawEvent<'a> =
            serde_path_to_error::deserialize(&mut deserializer).map_err(EnvelopeError::envelope)?;
        deserializer.end().map_err(|error| EnvelopeError::NotJson {
            message: error.to_string(),
        })?;
        Ok(event)
    }

    /// Parses `data.object` into `T`, keeping the envelope.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<Event<T>, EnvelopeError> {
        let object = self.payload::<T>()?;
        Ok(self.with_object(object))
    }

    /// Parses `data.object` into `T`, leaving this raw event as it is.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_str(self.data.object.get()).or_else(|_| self.payload_tracking_path())
    }

    fn payload_tracking_path<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        let mut deserializer = serde_json::Deserializer::from_str(self.data.object.get());
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            EnvelopeError::PayloadMismatch {
                event_type: self.event_type.clone(),
                payload: short_type_name::<T>(),
                path: match path.as_str() {
                    "." => "data.object".to_owned(),
                    index if index.starts_with('[') => format!("data.object{index}"),
                    field => format!("data.object.{field}"),
                },
                message: without_values(&without_position(&error.into_inner())),
            }
        })
    }
}

impl<T> Event<T> {
    /// This envelope around another object.
    pub fn map_object<U>(self, object: U) -> Event<U> {
        Event {
            id: self.id,
            event_type: self.event_type,
            api_version: self.api_version,
            created: self.created,
            livemode: self.livemode,
            pending_webhooks: self.pending_webhooks,
            request: self.request,
            data: EventData {
                object,
                previous_attributes: self.data.previous_attributes,
            },
        }
    }

    /// The same envelope around another object.
    pub fn with_object<U>(&self, object: U) -> Event<U> {
        Event {
            id: self.id.clone(),
            event_type: self.event_type.clone(),
            api_version: self.api_version.clone(),
            created: self.created,
            livemode: self.livemode,
            pending_webhooks: self.pending_webhooks,
            request: self.request.clone(),
            data: EventData {
                object,
                previous_attributes: self.data.previous_attributes.clone(),
            },
        }
    }
}

/// The body as text. JSON is UTF-8 throughout, but serde_json does not check the members it
/// skips: the whole body is checked here, so that no path accepts what another refuses, and
/// the parsers then read the text without checking each string again.
pub(crate) fn check_utf8(body: &[u8]) -> Result<&str, EnvelopeError> {
    // The SIMD check for the good path; std's only for a bad body, to say where it fails.
    simdutf8::basic::from_utf8(body).or_else(|_| {
        std::str::from_utf8(body).map_err(|error| EnvelopeError::NotJson {
            message: format!("the body is not valid UTF-8: {error}"),
        })
    })
}

/// A serde message with anything quoted from the body left out: answers and logs say where
/// and what was expected, never what a sender wrote (it may be personal data).
///
/// serde words its messages `invalid type: string "x", expected u64`, `unknown variant `x`,
/// expected one of ...`, `invalid length 3, expected ...`: the `expected` part names our types,
/// the rest is the body's. Any other message that quotes something is replaced whole.
pub(crate) fn without_values(message: &str) -> String {
    let found = |unexpected: &str| {
        // `string "x"` -> `a string`, `integer `5`` -> `an integer`, `map` -> `a map`.
        let kind = unexpected
            .split(['"', '`'])
            .next()
            .unwrap_or(unexpected)
            .trim();
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {kind}")
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((unexpected, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            return format!("expected {expected}, found {}", found(unexpected));
        }
    }
    for prefix in ["unknown variant ", "unknown field ", "invalid length "] {
        if let Some((_, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            return format!("{}, expected {expected}", prefix.trim_end());
        }
    }
    // These quote a field name of ours, not a value of the sender's.
    let names_our_field = ["missing field ", "duplicate field "]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    let quotes_the_body = message.contains(['"', '`']) && !names_our_field;
    if quotes_the_body {
        "the value does not fit the expected type".to_owned()
    } else {
        message.to_owned()
    }
}

/// serde_json's message without its "at line L column C": inside `data.object` those count
/// from the object, not from the body, and would send a reader to the wrong place.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&position)
        .map_or_else(|| message.clone(), str::to_owned)
}

/// `nextgen_events::payloads::Charge` -> `Charge`, for messages a person reads.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    // Generic types keep their full name: cutting inside `<...>` would mangle it.
    if full.contains('<') {
        return full;
    }
    full.rsplit("::").next().unwrap_or(full)
}
