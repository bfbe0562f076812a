//! `VerifiedDelivery`: a delivery whose signature was verified, kept for handling later.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::envelope::{EnvelopeError, Event};

/// A delivery whose signature has been verified but whose handlers have not run yet.
///
/// Serializable, for services that queue events when they arrive and handle them later: the
/// body is kept byte for byte, with the event's id, type, verified timestamp and signature
/// header beside it. [`Endpoint::verify`](crate::Endpoint::verify) (or an extractor) makes
/// one; [`Endpoint::handle`](crate::Endpoint::handle) takes it as the route takes a delivery.
///
/// Deserializing does not verify anything: trust a queued delivery only as far as you trust
/// the queue. [`Endpoint::handle`](crate::Endpoint::handle) refuses one whose id or type is
/// not its body's.
///
/// ```
/// use nextgen_events::{sign, Context, Endpoint, VerifiedDelivery, WebhookConfig};
///
/// # actix_rt::System::new().block_on(async {
/// let endpoint = Endpoint::new(WebhookConfig::new("whsec_test").with_clock(|| 1_713_745_200))?;
/// let body = br#"{"id":"evt_1","object":"event","type":"customer.created","created":1713745200,
///                 "livemode":false,"data":{"object":{"id":"cus_1","balance":0,"created":1713745200}}}"#;
/// let header = sign(body, "whsec_test", 1_713_745_200);
///
/// let delivery = endpoint.verify(body.to_vec(), Some(&header))?;
/// let queued = serde_json::to_string(&delivery)?;
///
/// let later: VerifiedDelivery = serde_json::from_str(&queued)?;
/// assert_eq!(later, delivery);
/// assert_eq!(later.event_type, "customer.created");
/// let customer = later.event::<nextgen_events::payloads::Customer>()?;
/// assert_eq!(customer.data.object.id, "cus_1");
/// endpoint.handle(&later, &Context::new()).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedDelivery {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The signature's verified timestamp, in seconds since the Unix epoch.
    pub timestamp: u64,
    // The `NextGen-Signature` header it was verified with: an inbox verifies it again before
    // its workers dispatch it. Absent from deliveries serialized before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(with = "body_text")]
    body: Bytes,
}

impl VerifiedDelivery {
    /// A delivery whose `body` (with that event id and type) verified against `signature` at
    /// `timestamp`.
    pub(crate) fn new(
        (event_id, event_type): (String, String),
        timestamp: u64,
        signature: &str,
        body: Bytes,
    ) -> Self {
        VerifiedDelivery {
            event_id,
            event_type,
            timestamp,
            signature: Some(signature.to_owned()),
            body,
        }
    }

    /// The raw body, exactly as it was signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The `NextGen-Signature` header value it was verified with; `None` for a delivery
    /// serialized by a version of nextgen-events that did not keep it.
    pub fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }

    /// Parses the event with its payload as `T`.
    pub fn event<T: DeserializeOwned>(&self) -> Result<Event<T>, EnvelopeError> {
        Event::from_slice(&self.body)
    }
}

mod body_text {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};

    pub(super) fn serialize<S: Serializer>(body: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(body).map_err(S::Error::custom)?;
        serializer.serialize_str(text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        let text = String::deserialize(deserializer).map_err(D::Error::custom)?;
        Ok(Bytes::from(text))
    }
}
