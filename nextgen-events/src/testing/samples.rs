//! Realistic sample events for every type of the event catalog: the one source of sample
//! events for the `trigger` tool, the example server's tests, the end-to-end tests, the
//! benchmarks, the fuzz seeds and the load scripts (through `trigger --write`).
//!
//! The objects follow the NextGen API reference: the charge `ch_1J2k3L4m5N6o` (2000 usd, "My
//! First Test Charge"), the customer `cus_8mNq2Lp5Zk9Xw` (Jane Doe) and the refund
//! `re_3L9mZ1K0Xp4Qw` (1000 usd, requested by the customer), plus a dispute of that charge and
//! a subscription invoice of that customer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{API_VERSION, now};
use crate::catalog::{self, CatalogEntry, event_types};

/// The charge of the API reference.
pub const CHARGE_ID: &str = "ch_1J2k3L4m5N6o";
/// The customer of the API reference.
pub const CUSTOMER_ID: &str = "cus_8mNq2Lp5Zk9Xw";
/// The refund of the API reference.
pub const REFUND_ID: &str = "re_3L9mZ1K0Xp4Qw";
/// The dispute of the reference's charge.
pub const DISPUTE_ID: &str = "dp_1P4qR7sT2uV9w";
/// The invoice of the reference's customer's subscription.
pub const INVOICE_ID: &str = "in_1Q8rS3tU6vW2x";

/// A full event envelope, as NextGen would send it, for a type of the event catalog: a fresh
/// `evt_...` id, created now, in test mode, with a realistic `data.object` whose status fits
/// the event (`charge.failed` carries a failed charge with its failure code, `charge.refunded`
/// a fully refunded one, ...). `*.updated` events also carry `data.previous_attributes`.
///
/// `None` for a type outside the catalog.
///
/// ```
/// use nextgen_events::testing::sample;
///
/// let event = sample("charge.succeeded").unwrap();
/// assert_eq!(event["data"]["object"]["id"], "ch_1J2k3L4m5N6o");
/// assert_eq!(event["data"]["object"]["status"], "succeeded");
/// assert!(sample("charge.succeded").is_none());
/// ```
pub fn sample(event_type: &str) -> Option<Value> {
    let entry = catalog::lookup(event_type)?;
    let (object, previous_attributes) = sample_object(entry)?;
    let mut data = json!({ "object": object });
    if let Some(previous) = previous_attributes {
        data["previous_attributes"] = previous;
    }
    Some(json!({
        "id": new_event_id(),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "livemode": false,
        "type": entry.name(),
        "pending_webhooks": 1,
        "data": data,
    }))
}

/// The compact JSON body of a [`sample`], with the envelope's fields in NextGen's order: `type`
/// before `data`, as the one-pass reader expects of real deliveries (a `Value` alone would
/// write its keys sorted, `data` first). Fields of a value that is not an object are written
/// as they are.
///
/// ```
/// use nextgen_events::testing::{sample, sample_body};
///
/// let body = sample_body(&sample("refund.created").unwrap());
/// let text = String::from_utf8(body).unwrap();
/// assert!(text.find("\"type\"").unwrap() < text.find("\"data\"").unwrap());
/// ```
pub fn sample_body(event: &Value) -> Vec<u8> {
    const ORDER: [&str; 8] = [
        "id",
        "object",
        "api_version",
        "created",
        "livemode",
        "type",
        "pending_webhooks",
        "request",
    ];
    let Value::Object(fields) = event else {
        return event.to_string().into_bytes();
    };
    let ordered = ORDER.iter().filter_map(|key| fields.get_key_value(*key));
    let rest = fields
        .iter()
        .filter(|(key, _)| !ORDER.contains(&key.as_str()));
    let mut body = String::from("{");
    for (index, (key, value)) in ordered.chain(rest).enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&Value::String(key.clone()).to_string());
        body.push(':');
        body.push_str(&value.to_string());
    }
    body.push('}');
    body.into_bytes()
}

/// `data.object` and, for updates, `data.previous_attributes`: chosen by the catalog entry's
/// payload type, then shaped by the event type.
fn sample_object(entry: &CatalogEntry) -> Option<(Value, Option<Value>)> {
    let event_type = entry.name();
    let mut previous = None;
    let object = match entry.payload() {
        "Charge" => {
            let mut charge = charge();
            match event_type {
                event_types::CHARGE_FAILED => {
                    merge(
                        &mut charge,
                        json!({
                            "amount_captured": 0,
                            "balance_transaction": null,
                            "captured": false,
                            "failure_code": "card_declined",
                            "failure_message": "Your card was declined.",
                            "paid": false,
                            "receipt_url": null,
                            "status": "failed",
                        }),
                    );
                }
                event_types::CHARGE_PENDING => {
                    merge(
                        &mut charge,
                        json!({
                            "balance_transaction": null,
                            "paid": false,
                            "receipt_url": null,
                            "status": "pending",
                        }),
                    );
                }
                event_types::CHARGE_REFUNDED => {
                    let amount = charge["amount"].clone();
                    merge(
                        &mut charge,
                        json!({ "amount_refunded": amount, "refunded": true }),
                    );
                }
                event_types::CHARGE_UPDATED => {
                    previous = Some(json!({
                        "description": charge["description"],
                        "metadata": { "order_id": "6735" },
                    }));
                    merge(
                        &mut charge,
                        json!({
                            "description": "My First Test Charge (order 6735, gift wrapped)",
                            "metadata": { "order_id": "6735", "gift": "true" },
                        }),
                    );
                }
                _ => {}
            }
            charge
        }
        "Dispute" => {
            let mut dispute = dispute();
            match event_type {
                event_types::CHARGE_DISPUTE_UPDATED => {
                    previous = Some(json!({
                        "status": "needs_response",
                        "evidence_details": dispute["evidence_details"],
                    }));
                    merge(
                        &mut dispute,
                        json!({
                            "status": "under_review",
                            "evidence_details": {
                                "due_by": 1_714_953_599,
                                "has_evidence": true,
                                "past_due": false,
                                "submission_count": 1,
                            },
                        }),
                    );
                }
                event_types::CHARGE_DISPUTE_CLOSED => {
                    merge(
                        &mut dispute,
                        json!({
                            "status": "won",
                            "evidence_details": {
                                "due_by": 1_714_953_599,
                                "has_evidence": true,
                                "past_due": false,
                                "submission_count": 1,
                            },
                        }),
                    );
                }
                _ => {}
            }
            dispute
        }
        "Customer" => {
            let mut customer = customer();
            match event_type {
                event_types::CUSTOMER_UPDATED => {
                    previous = Some(json!({ "phone": null }));
                    merge(&mut customer, json!({ "phone": "+15555550123" }));
                }
                event_types::CUSTOMER_DELETED => {
                    merge(&mut customer, json!({ "deleted": true }));
                }
                _ => {}
            }
            customer
        }
        "Refund" => {
            let mut refund = refund();
            match event_type {
                event_types::REFUND_UPDATED => {
                    previous = Some(json!({ "metadata": {} }));
                    merge(
                        &mut refund,
                        json!({ "metadata": { "support_ticket": "T-4821" } }),
                    );
                }
                event_types::REFUND_FAILED => {
                    merge(
                        &mut refund,
                        json!({
                            "failure_reason": "expired_or_canceled_card",
                            "status": "failed",
                        }),
                    );
                }
                _ => {}
            }
            refund
        }
        "Invoice" => {
            let mut invoice = invoice();
            if event_type == event_types::INVOICE_PAYMENT_FAILED {
                let amount_due = invoice["amount_due"].clone();
                merge(
                    &mut invoice,
                    json!({
                        "amount_paid": 0,
                        "amount_remaining": amount_due,
                        "charge": "ch_3N5oP7qR9sT1u",
                        "next_payment_attempt": 1_713_951_600,
                        "paid": false,
                        "status": "open",
                    }),
                );
            }
            invoice
        }
        _ => return None,
    };
    Some((object, previous))
}

/// The reference's charge, succeeded and captured.
fn charge() -> Value {
    json!({
        "id": CHARGE_ID,
        "object": "charge",
        "amount": 2000,
        "amount_captured": 2000,
        "amount_refunded": 0,
        "balance_transaction": "txn_1J2k3L4m5N6oTx",
        "captured": true,
        "created": 1_713_745_500,
        "currency": "usd",
        "customer": CUSTOMER_ID,
        "description": "My First Test Charge",
        "disputed": false,
        "failure_code": null,
        "failure_message": null,
        "invoice": null,
        "livemode": false,
        "metadata": { "order_id": "6735" },
        "paid": true,
        "payment_intent": "pi_1J2k3L4m5N6oPi",
        "receipt_email": "jane.doe@example.com",
        "receipt_url": "https://pay.nextgen.tech/receipts/ch_1J2k3L4m5N6o",
        "refunded": false,
        "statement_descriptor": "NEXTGEN TEST",
        "status": "succeeded",
    })
}

/// The reference's customer.
fn customer() -> Value {
    json!({
        "id": CUSTOMER_ID,
        "object": "customer",
        "balance": 0,
        "created": 1_713_745_200,
        "currency": "usd",
        "default_source": "card_1J2k3L4m5N6oCd",
        "deleted": null,
        "delinquent": false,
        "description": "My First Test Customer",
        "email": "jane.doe@example.com",
        "invoice_prefix": "8MNQ2LP5",
        "livemode": false,
        "metadata": {},
        "name": "Jane Doe",
        "phone": null,
    })
}

/// The reference's refund: half of the reference's charge, requested by the customer.
fn refund() -> Value {
    json!({
        "id": REFUND_ID,
        "object": "refund",
        "amount": 1000,
        "balance_transaction": "txn_3L9mZ1K0Xp4QwTx",
        "charge": CHARGE_ID,
        "created": 1_713_745_800,
        "currency": "usd",
        "failure_reason": null,
        "metadata": {},
        "payment_intent": "pi_1J2k3L4m5N6oPi",
        "reason": "requested_by_customer",
        "receipt_number": "1842-7731",
        "status": "succeeded",
    })
}

/// A fraud dispute of the reference's charge, awaiting evidence.
fn dispute() -> Value {
    json!({
        "id": DISPUTE_ID,
        "object": "dispute",
        "amount": 2000,
        "charge": CHARGE_ID,
        "created": 1_713_832_200,
        "currency": "usd",
        "evidence_details": {
            "due_by": 1_714_953_599,
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0,
        },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "payment_intent": "pi_1J2k3L4m5N6oPi",
        "reason": "fraudulent",
        "status": "needs_response",
    })
}

/// A paid monthly subscription invoice of the reference's customer.
fn invoice() -> Value {
    json!({
        "id": INVOICE_ID,
        "object": "invoice",
        "amount_due": 1500,
        "amount_paid": 1500,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": true,
        "billing_reason": "subscription_cycle",
        "charge": "ch_3M4n5O6p7Q8r",
        "created": 1_713_745_200,
        "currency": "usd",
        "customer": CUSTOMER_ID,
        "customer_email": "jane.doe@example.com",
        "description": "Pro plan (monthly)",
        "due_date": null,
        "hosted_invoice_url": "https://pay.nextgen.tech/invoices/in_1Q8rS3tU6vW2x",
        "invoice_pdf": "https://pay.nextgen.tech/invoices/in_1Q8rS3tU6vW2x/pdf",
        "livemode": false,
        "metadata": {},
        "number": "8MNQ2LP5-0004",
        "paid": true,
        "payment_intent": "pi_3M4n5O6p7Q8rPi",
        "period_end": 1_713_745_200,
        "period_start": 1_711_066_800,
        "status": "paid",
        "subscription": "sub_1K7lM2nO3pQ4r",
        "subtotal": 1500,
        "total": 1500,
    })
}

/// Overwrites `object`'s members with `changes`' members.
fn merge(object: &mut Value, changes: Value) {
    if let (Value::Object(object), Value::Object(changes)) = (object, changes) {
        object.extend(changes);
    }
}

/// `evt_` and 24 random alphanumerics, distinct for every call.
fn new_event_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    // `RandomState` is seeded randomly per process and varies per instance: enough
    // uniqueness for sample ids without a random-number dependency.
    let state = RandomState::new();
    let mut id = String::from("evt_");
    for position in 0..24u8 {
        let mut hasher = state.build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(counter);
        hasher.write_u8(position);
        let index = usize::try_from(hasher.finish() % 62).unwrap_or(0);
        id.push(char::from(ALPHABET[index]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use crate::payloads::{
        Charge, ChargeStatus, Customer, Dispute, DisputeStatus, Invoice, InvoiceStatus, Refund,
        RefundStatus,
    };
    use serde::de::DeserializeOwned;

    fn body(event_type: &str) -> Vec<u8> {
        let Some(sample) = sample(event_type) else {
            panic!("no sample for catalog type {event_type}");
        };
        match serde_json::to_vec(&sample) {
            Ok(body) => body,
            Err(error) => panic!("{event_type}: {error}"),
        }
    }

    fn typed<T: DeserializeOwned>(event_type: &str) -> Event<T> {
        match Event::<T>::from_slice(&body(event_type)) {
            Ok(event) => event,
            Err(error) => panic!("{event_type}: {error}"),
        }
    }

    #[test]
    fn every_catalog_type_parses_as_its_payload() {
        for entry in catalog::EVENT_TYPES {
            let name = entry.name();
            let untyped: Event<Value> = match Event::from_slice(&body(name)) {
                Ok(event) => event,
                Err(error) => panic!("{name}: not an envelope: {error}"),
            };
            assert_eq!(untyped.event_type, name);
            assert!(untyped.id.starts_with("evt_"), "{name}: id {}", untyped.id);
            assert_eq!(untyped.api_version.as_deref(), Some("2026-04-17"));
            assert!(!untyped.livemode);
            assert_eq!(untyped.pending_webhooks, Some(1));
            assert!(untyped.created > 1_713_745_200);
            assert_eq!(
                untyped.data.previous_attributes.is_some(),
                name.ends_with(".updated"),
                "{name}: previous_attributes exactly on updates"
            );
            let object = untyped.data.object;
            let parsed = match entry.payload() {
                "Charge" => serde_json::from_value::<Charge>(object).map(drop),
                "Customer" => serde_json::from_value::<Customer>(object).map(drop),
                "Dispute" => serde_json::from_value::<Dispute>(object).map(drop),
                "Invoice" => serde_json::from_value::<Invoice>(object).map(drop),
                "Refund" => serde_json::from_value::<Refund>(object).map(drop),
                other => panic!("{name}: payload type {other} is not covered by this test"),
            };
            if let Err(error) = parsed {
                panic!("{name}: data.object is not a {}: {error}", entry.payload());
            }
        }
    }

    #[test]
    fn envelope_has_object_event_and_fresh_ids() {
        let (Some(first), Some(second)) = (sample("charge.succeeded"), sample("charge.succeeded"))
        else {
            panic!("no charge.succeeded sample");
        };
        assert_eq!(first["object"], "event");
        assert_ne!(first["id"], second["id"]);
        let id = first["id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), "evt_".len() + 24);
        assert!(
            id["evt_".len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn outside_the_catalog_is_none() {
        assert!(sample("charge.succeded").is_none());
        assert!(sample("*").is_none());
        assert!(sample("").is_none());
    }

    #[test]
    fn statuses_fit_the_event() {
        let charge = typed::<Charge>(event_types::CHARGE_SUCCEEDED).data.object;
        assert_eq!(charge.id, CHARGE_ID);
        assert_eq!((charge.amount, charge.currency.as_str()), (2000, "usd"));
        assert_eq!(charge.description.as_deref(), Some("My First Test Charge"));
        assert_eq!(charge.status, ChargeStatus::Succeeded);
        assert!(charge.paid);

        let failed = typed::<Charge>(event_types::CHARGE_FAILED).data.object;
        assert_eq!(failed.status, ChargeStatus::Failed);
        assert!(!failed.paid);
        assert_eq!(failed.failure_code.as_deref(), Some("card_declined"));
        assert!(failed.failure_message.is_some());

        let pending = typed::<Charge>(event_types::CHARGE_PENDING).data.object;
        assert_eq!(pending.status, ChargeStatus::Pending);

        let refunded = typed::<Charge>(event_types::CHARGE_REFUNDED).data.object;
        assert_eq!(refunded.refunded, Some(true));
        assert_eq!(refunded.amount_refunded, refunded.amount);

        let updated = typed::<Charge>(event_types::CHARGE_UPDATED);
        let previous = updated.data.previous_attributes.unwrap_or_default();
        assert_eq!(previous["description"], "My First Test Charge");

        let customer = typed::<Customer>(event_types::CUSTOMER_CREATED).data.object;
        assert_eq!(customer.id, CUSTOMER_ID);
        assert_eq!(customer.name.as_deref(), Some("Jane Doe"));
        assert_eq!(customer.deleted, None);
        let deleted = typed::<Customer>(event_types::CUSTOMER_DELETED).data.object;
        assert_eq!(deleted.deleted, Some(true));

        let refund = typed::<Refund>(event_types::REFUND_CREATED).data.object;
        assert_eq!((refund.id.as_str(), refund.amount), (REFUND_ID, 1000));
        assert_eq!(refund.charge, CHARGE_ID);
        assert_eq!(refund.status, RefundStatus::Succeeded);
        let failed = typed::<Refund>(event_types::REFUND_FAILED).data.object;
        assert_eq!(failed.status, RefundStatus::Failed);
        assert!(failed.failure_reason.is_some());

        let opened = typed::<Dispute>(event_types::CHARGE_DISPUTE_CREATED)
            .data
            .object;
        assert_eq!(opened.status, DisputeStatus::NeedsResponse);
        assert_eq!(opened.charge, CHARGE_ID);
        let closed = typed::<Dispute>(event_types::CHARGE_DISPUTE_CLOSED)
            .data
            .object;
        assert_eq!(closed.status, DisputeStatus::Won);

        for paid in [
            event_types::INVOICE_PAID,
            event_types::INVOICE_PAYMENT_SUCCEEDED,
        ] {
            let invoice = typed::<Invoice>(paid).data.object;
            assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
            assert_eq!(invoice.amount_remaining, 0);
        }
        let unpaid = typed::<Invoice>(event_types::INVOICE_PAYMENT_FAILED)
            .data
            .object;
        assert_eq!(unpaid.status, Some(InvoiceStatus::Open));
        assert_eq!(unpaid.paid, Some(false));
        assert_eq!(unpaid.amount_remaining, unpaid.amount_due);
    }
}
