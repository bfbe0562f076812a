//! Reading a verified body: the UTF-8 check, the one-pass reader, the thorough fallback.
//!
//! The one-pass reader: when `type` comes before `data` (NextGen's order), `data.object` is
//! deserialized straight into its payload type while the envelope is read, so a delivery's
//! JSON is scanned once, as a hand-written `serde_json::from_slice` would.
//!
//! It only ever has to be right on good input: on any error the body is read again the
//! thorough way (the raw envelope, then the path-tracking payload parse), whose errors are the
//! ones users see (see `RawEvent::parse`).

use std::any::Any;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalog;
use crate::envelope::{self, EnvelopeError, Event, EventData, EventRequest, RawEvent};

/// `data.object`, either parsed already or left for later.
pub(crate) enum Object<'a> {
    /// Parsed into the catalog's payload type for the event type (a `Box<Event<Payload>>`
    /// whose envelope is still to be filled in).
    Typed(Box<dyn Any + Send>),
    /// Parsed as `Typed`, and its JSON text kept too, for the `*` handlers.
    Both(Box<dyn Any + Send>, &'a RawValue),
    /// Not parsed: `type` came after `data`, or the caller did not want it parsed.
    Raw(&'a RawValue),
}

/// An envelope read in one pass; `meta.data.object` is a placeholder for [`Object`].
pub(crate) struct Envelope<'a> {
    pub(crate) meta: Event<()>,
    pub(crate) object: Object<'a>,
}

/// Reads a verified body for dispatch: in one pass, payload included, when
/// `eager(event_type)` says its payload is wanted typed; otherwise the envelope, with the
/// payload left raw. With `keep_raw` (`*` handlers), a typed payload keeps its JSON text too.
/// Errors say what is wrong and where.
pub(crate) fn read_verified<'a>(
    body: &'a [u8],
    eager: &dyn Fn(&str) -> bool,
    keep_raw: bool,
) -> Result<Envelope<'a>, EnvelopeError> {
    let text = envelope::check_utf8(body)?;
    if let Some(envelope) = read_one_pass(text, eager, keep_raw) {
        return Ok(envelope);
    }
    // The thorough way: its errors say what is wrong and where. When the envelope is fine,
    // the payload is what failed, and dispatch parses it again to say where.
    let raw = RawEvent::parse(body)?;
    let object = raw.data.object;
    Ok(Envelope {
        meta: raw.map_object(()),
        object: Object::Raw(object),
    })
}

/// `None` means "read it the thorough way".
fn read_one_pass<'a>(
    body: &'a str,
    eager: &dyn Fn(&str) -> bool,
    keep_raw: bool,
) -> Option<Envelope<'a>> {
    // From the checked text: serde_json then checks no string's UTF-8 again.
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let envelope = EnvelopeSeed {
        eager,
        keep_raw,
        body: body.as_bytes(),
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(envelope)
}

struct EnvelopeSeed<'e> {
    eager: &'e dyn Fn(&str) -> bool,
    keep_raw: bool,
    body: &'e [u8],
}

/// The value of the last `"type": "..."` in the body. When members come in alphabetical order,
/// as many senders write them, `type` is the envelope's last member and `data` comes before
/// it: this guesses the type so `data.object` can still be parsed in the same pass. The guess
/// is checked against the real `type` once it is read.
fn last_type(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"type\"";
    let at = body.windows(KEY.len()).rposition(|window| window == KEY)?;
    let rest = body[at + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    std::str::from_utf8(&rest[..end]).ok()
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id: Option<String> = None;
        let mut event_type: Option<String> = None;
        let mut api_version: Option<Option<String>> = None;
        let mut created: Option<i64> = None;
        let mut livemode: Option<bool> = None;
        let mut pending_webhooks: Option<Option<u32>> = None;
        let mut request: Option<Option<EventRequest>> = None;
        let mut data: Option<(Object<'de>, Option<Map<String, Value>>)> = None;
        let mut guessed_type = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "id" => set(&mut id, map.next_value()?)?,
                "type" => set(&mut event_type, map.next_value()?)?,
                "api_version" => set(&mut api_version, map.next_value()?)?,
                "created" => set(&mut created, map.next_value()?)?,
                "livemode" => set(&mut livemode, map.next_value()?)?,
                "pending_webhooks" => set(&mut pending_webhooks, map.next_value()?)?,
                "request" => set(&mut request, map.next_value()?)?,
                "data" => {
                    let known = event_type.as_deref();
                    if known.is_none() {
                        guessed_type = last_type(self.body);
                    }
                    let eager_type = known.or(guessed_type).filter(|name| (self.eager)(name));
                    let seed = DataSeed {
                        eager_type,
                        keep_raw: self.keep_raw,
                    };
                    set(&mut data, map.next_value_seed(seed)?)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |field| de::Error::missing_field(field);
        let (object, previous_attributes) = data.ok_or_else(|| missing("data"))?;
        if let (Object::Typed(_) | Object::Both(..), Some(guess)) = (&object, guessed_type)
            && event_type.as_deref() != Some(guess)
        {
            return Err(de::Error::custom(
                "the payload was parsed for another event type",
            ));
        }
        Ok(Envelope {
            meta: Event {
                id: id.ok_or_else(|| missing("id"))?,
                event_type: event_type.ok_or_else(|| missing("type"))?,
                api_version: api_version.flatten(),
                created: created.ok_or_else(|| missing("created"))?,
                livemode: livemode.ok_or_else(|| missing("livemode"))?,
                pending_webhooks: pending_webhooks.flatten(),
                request: request.flatten(),
                data: EventData {
                    object: (),
                    previous_attributes,
                },
            },
            object,
        })
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(E::custom("duplicate field")),
    }
}

struct DataSeed<'t> {
    eager_type: Option<&'t str>,
    keep_raw: bool,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = (Object<'de>, Option<Map<String, Value>>);

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = (Object<'de>, Option<Map<String, Value>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event's data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = None;
        let mut previous_attributes: Option<Option<Map<String, Value>>> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "object" => {
                    let value = match (self.eager_type, self.keep_raw) {
                        (Some(event_type), false) => {
                            Object::Typed(map.next_value_seed(PayloadSeed { event_type })?)
                        }
                        // The object's text is skipped over once (cheap: no value is built),
                        // then parsed from that text: the envelope is still read once.
                        (Some(event_type), true) => {
                            let raw: &'de RawValue = map.next_value()?;
                            let mut object = serde_json::Deserializer::from_str(raw.get());
                            let typed = PayloadSeed { event_type }
                                .deserialize(&mut object)
                                .map_err(de::Error::custom)?;
                            Object::Both(typed, raw)
                        }
                        (None, _) => Object::Raw(map.next_value()?),
                    };
                    set(&mut object, value)?;
                }
                "previous_attributes" => set(&mut previous_attributes, map.next_value()?)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let object = object.ok_or_else(|| de::Error::missing_field("object"))?;
        Ok((object, previous_attributes.flatten()))
    }
}

struct PayloadSeed<'t> {
    event_type: &'t str,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Box<dyn Any + Send>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        catalog::deserialize_payload(self.event_type, deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id": "evt_1", "object": "event", "type": "charge.succeeded",
        "created": 1713745200, "livemode": false, "data": {"object": { "id": "ch_1",
        "object": "charge", "amount": 2000, "amount_refunded": 0, "currency": "usd",
        "paid": true, "status": "succeeded" }}}"#;

    #[test]
    fn with_star_handlers_the_payload_is_still_read_in_the_one_pass() {
        // `keep_raw` is what `*` handlers ask for: the typed payload comes with the text.
        let envelope = read_one_pass(BODY, &|_| true, true).expect("one pass");
        let Object::Both(typed, raw) = envelope.object else {
            panic!("expected the typed payload and its text");
        };
        assert!(
            typed
                .downcast_ref::<Event<crate::payloads::Charge>>()
                .is_some()
        );
        let text = BODY;
        let start = text.find("{ \"id\": \"ch_1\"").expect("object");
        let end = text.rfind("}}}").expect("end") + 1;
        assert_eq!(raw.get(), &text[start..end]);
    }

    #[test]
    fn without_star_handlers_no_text_is_kept() {
        let envelope = read_one_pass(BODY, &|_| true, false).expect("one pass");
        assert!(matches!(envelope.object, Object::Typed(_)));
    }
}
