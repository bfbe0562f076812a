//! Test helpers: build signed deliveries and run them through your handlers, without HTTP.
//!
//! ```
//! use nextgen_events::prelude::*;
//! use nextgen_events::testing::{sample_event, SignedDelivery};
//! use nextgen_events::{Endpoint, WebhookConfig};
//!
//! #[nextgen_event("customer.deleted")]
//! async fn forget(customer: Customer) -> Result<(), String> {
//!     if customer.deleted == Some(true) { Ok(()) } else { Err("not deleted".into()) }
//! }
//!
//! # actix_rt::System::new().block_on(async {
//! let customer: Customer = serde_json::from_value(serde_json::json!({
//!     "id": "cus_1", "balance": 0, "created": 1713745200, "deleted": true
//! })).unwrap();
//! let event = sample_event("customer.deleted", customer);
//! let delivery = SignedDelivery::now(&event, "whsec_test").unwrap();
//!
//! let endpoint = Endpoint::new(WebhookConfig::new("whsec_test"))?;
//! let taken = endpoint.receive(&delivery.body, Some(&delivery.signature), &Context::new()).await?;
//! let report = taken.report().expect("inline mode: handled now");
//! assert!(report.outcomes.iter().any(|outcome| outcome.handler.ends_with("::forget")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod samples;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use samples::{CHARGE_ID, CUSTOMER_ID, DISPUTE_ID, INVOICE_ID, REFUND_ID, sample, sample_body};

use crate::dispatch::{self, DispatchReport};
use crate::envelope::{Event, EventData};
use crate::error::WebhookError;
use crate::handler::Context;
use crate::registry::Registry;
use crate::signature::sign;

/// How many bodies this process has read for their handlers so far (the parse into the
/// catalog's payload types): each delivery is read so once, whichever way it came in, so a
/// test can count the reads around one delivery.
pub fn handler_reads() -> u64 {
    dispatch::PREPARED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs every matching handler of the global registry on `body`, in the caller's task, for
/// unit tests of handlers alone: it skips what an [`Endpoint`](crate::Endpoint) does around
/// them. No signature check (`body` is trusted as it is), no idempotency store (every call runs
/// every handler) and no inbox. A service takes deliveries through an `Endpoint`, which does
/// all three.
///
/// ```
/// use nextgen_events::Context;
/// use nextgen_events::testing::run_handlers_unverified;
///
/// # actix_rt::System::new().block_on(async {
/// let body = br#"{"id":"evt_1","object":"event","type":"something.new","created":1713745200,
///                 "livemode":false,"data":{"object":{}}}"#;
/// let report = run_handlers_unverified(body, &Context::new()).await?;
/// assert_eq!(report.event_id, "evt_1");
/// # Ok::<(), nextgen_events::WebhookError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
///
/// [`WebhookError::Envelope`] when the body is not an event envelope, or a known event's
/// object does not fit its payload: as the route refuses it.
pub async fn run_handlers_unverified(
    body: &[u8],
    context: &Context<'_>,
) -> Result<DispatchReport, WebhookError> {
    let run = dispatch::start(body, Registry::global(), context, None, None)?;
    Ok(run.await?)
}

/// The API version samples are stamped with.
pub const API_VERSION: &str = "2026-04-17";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Wraps a payload in a test-mode envelope with a fresh `evt_test_...` id and the current time.
pub fn sample_event<T>(event_type: &str, object: T) -> Event<T> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let created = now();
    Event {
        id: format!(
            "evt_test_{created}_{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
        event_type: event_type.to_owned(),
        api_version: Some(API_VERSION.to_owned()),
        created: i64::try_from(created).unwrap_or(i64::MAX),
        livemode: false,
        pending_webhooks: Some(1),
        request: None,
        data: EventData {
            object,
            previous_attributes: None,
        },
    }
}

/// A body and the `NextGen-Signature` header value that signs it, as NextGen would send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDelivery {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The `NextGen-Signature` header value.
    pub signature: String,
}

impl SignedDelivery {
    /// Serializes `event` (with `"object": "event"`, as NextGen sends it) and signs it at
    /// `timestamp`. Fails only when the payload's `Serialize` does.
    pub fn new<T: Serialize>(
        event: &Event<T>,
        secret: &str,
        timestamp: u64,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::from_body(event_body(event)?, secret, timestamp))
    }

    /// Like [`new`](SignedDelivery::new), signed at the current time.
    pub fn now<T: Serialize>(event: &Event<T>, secret: &str) -> Result<Self, serde_json::Error> {
        Self::new(event, secret, now())
    }

    /// Signs a body as it is.
    pub fn from_body(body: impl Into<Vec<u8>>, secret: &str, timestamp: u64) -> Self {
        let body = body.into();
        let signature = sign(&body, secret, timestamp);
        SignedDelivery { body, signature }
    }
}

/// The JSON body NextGen would send for `event`: the event with `"object": "event"`.
pub fn event_body<T: Serialize>(event: &Event<T>) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Wire<'a, T> {
        object: &'static str,
        #[serde(flatten)]
        event: &'a Event<T>,
    }
    serde_json::to_vec(&Wire {
        object: "event",
        event,
    })
}
