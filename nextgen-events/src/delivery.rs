//! Deliveries: verify a raw body, then dispatch it now or keep it for later.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::WebhookConfig;
use crate::context::Context;
use crate::dispatch;
use crate::envelope::{EnvelopeError, Event, RawEvent};
use crate::error::WebhookError;
use crate::inbox::{Appended, InboxEntry, InboxMode};
use crate::report::DispatchReport;
use crate::signature::{SignatureError, SignatureHeader};

/// Verifies a delivery and runs every matching handler: the whole path of one webhook,
/// without HTTP. `signature` is the `NextGen-Signature` header value, if the request had one.
///
/// Handler failures come back as [`WebhookError::HandlersFailed`] with the full report.
///
/// ```
/// use nextgen_events::{receive, Context, WebhookConfig, sign};
///
/// # actix_rt::System::new().block_on(async {
/// let config = WebhookConfig::new("whsec_test").with_clock(|| 1_713_745_200);
/// let body = br#"{"id":"evt_1","object":"event","type":"something.new","created":1713745200,
///                 "livemode":false,"data":{"object":{}}}"#;
/// let header = sign(body, "whsec_test", 1_713_745_200);
///
/// let report = receive(&config, body, Some(&header), &Context::new()).await?;
/// assert_eq!(report.event_id, "evt_1");
///
/// let forged = receive(&config, body, Some("t=1713745200,v1=00"), &Context::new()).await;
/// assert_eq!(forged.unwrap_err().code(), "signature_malformed");
/// # Ok::<(), nextgen_events::WebhookError>(())
/// # }).unwrap();
/// ```
pub async fn receive(
    config: &WebhookConfig,
    body: &[u8],
    signature: Option<&str>,
    context: &Context<'_>,
) -> Result<DispatchReport, WebhookError> {
    let signature = signature.ok_or(SignatureError::MissingHeader)?;
    config.verifier().verify(body, signature)?;
    // Parsed only once verified: unauthenticated bytes never reach the JSON parser.
    dispatch::dispatch_with(body, context, config)
        .await?
        .into_result()
}

/// A delivery whose signature has been verified but whose handlers have not run yet.
///
/// Serializable, for services that queue events when they arrive and handle them later: the
/// body is kept byte for byte, with the event's id, type and verified timestamp beside it.
///
/// Deserializing does not verify anything: trust a queued delivery only as far as you trust
/// the queue. [`dispatch`](Self::dispatch) refuses one whose id or type is not its body's.
///
/// ```
/// use nextgen_events::{Context, VerifiedDelivery, WebhookConfig, sign};
///
/// let config = WebhookConfig::new("whsec_test").with_clock(|| 1_713_745_200);
/// let body = br#"{"id":"evt_1","object":"event","type":"customer.created","created":1713745200,
///                 "livemode":false,"data":{"object":{"id":"cus_1","balance":0,"created":1713745200}}}"#;
/// let header = sign(body, "whsec_test", 1_713_745_200);
///
/// let delivery = VerifiedDelivery::verify(&config, body.to_vec(), Some(&header))?;
/// let queued = serde_json::to_string(&delivery).unwrap();
///
/// let later: VerifiedDelivery = serde_json::from_str(&queued).unwrap();
/// assert_eq!(later, delivery);
/// assert_eq!(later.event_type, "customer.created");
/// let customer = later.event::<nextgen_events::payloads::Customer>()?;
/// assert_eq!(customer.data.object.id, "cus_1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedDelivery {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The signature's verified timestamp, in seconds since the Unix epoch.
    pub timestamp: u64,
    #[serde(with = "body_text")]
    body: Bytes,
}

impl VerifiedDelivery {
    /// Verifies `body` against the `NextGen-Signature` header value and reads its envelope.
    pub fn verify(
        config: &WebhookConfig,
        body: impl Into<Bytes>,
        signature: Option<&str>,
    ) -> Result<Self, WebhookError> {
        let signature = signature.ok_or(SignatureError::MissingHeader)?;
        Self::verify_parsed(config, body.into(), &SignatureHeader::parse(signature)?)
    }

    /// [`verify`](VerifiedDelivery::verify) for a header already parsed (the extractor
    /// parses it before reading the body, to refuse unsigned requests cheaply).
    pub(crate) fn verify_parsed(
        config: &WebhookConfig,
        body: Bytes,
        header: &SignatureHeader<'_>,
    ) -> Result<Self, WebhookError> {
        let verifier = config.verifier();
        let timestamp = verifier.verify_parsed(&body, header, verifier.now())?;
        let raw = RawEvent::parse(&body)?;
        Ok(VerifiedDelivery {
            event_id: raw.id,
            event_type: raw.event_type,
            timestamp,
            body,
        })
    }

    /// The raw body, exactly as it was signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Parses the event with its payload as `T`.
    pub fn event<T: DeserializeOwned>(&self) -> Result<Event<T>, EnvelopeError> {
        Event::from_slice(&self.body)
    }

    /// Runs every matching handler, skipping those that already succeeded for this event id
    /// according to `config`'s idempotency store. Handler failures come back as
    /// [`WebhookError::HandlersFailed`] with the full report.
    ///
    /// The `event_id` and `event_type` fields are checked against the body first, in the
    /// one read of the body that dispatch makes: a delivery altered after it was verified
    /// (it is deserializable, from any queue) is refused with
    /// [`WebhookError::DeliveryMismatch`] and no handler runs. The signature is not checked
    /// again: the queue it came through is trusted to hold what was verified.
    pub async fn dispatch(
        &self,
        config: &WebhookConfig,
        context: &Context<'_>,
    ) -> Result<DispatchReport, WebhookError> {
        let expected = dispatch::Expected {
            event_id: &self.event_id,
            event_type: &self.event_type,
        };
        dispatch::start(&self.body, context, config, Some(expected))?
            .await?
            .into_result()
    }
}

/// The body as a JSON string: it is JSON text, so it is valid UTF-8 once its envelope parsed.
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

/// Inbox mode's half of a delivery: checks the envelope of a verified body and appends it to
/// the inbox, durably; a new entry wakes a worker. Returns the event type and what appending did.
pub(crate) async fn enqueue(
    mode: &InboxMode,
    body: &[u8],
    signature: &str,
    signed_at: u64,
) -> Result<(String, Appended), WebhookError> {
    let raw = RawEvent::parse(body)?;
    let entry = InboxEntry {
        event_id: raw.id,
        event_type: raw.event_type,
        body: body.to_vec(),
        signed_at,
        received_at_ms: mode.inbox.now_ms(),
        signature: Some(signature.to_owned()),
    };
    let event_id = entry.event_id.clone();
    let event_type = entry.event_type.clone();
    let appended = mode.inbox.append(entry).await.map_err(|error| {
        crate::metrics::store_failure("inbox");
        WebhookError::Inbox(error)
    })?;
    match appended {
        Appended::New => {
            tracing::info!(%event_id, "delivery kept in the inbox");
            mode.wake();
        }
        Appended::Duplicate => tracing::info!(%event_id, "delivery already in the inbox"),
    }
    Ok((event_type, appended))
}
