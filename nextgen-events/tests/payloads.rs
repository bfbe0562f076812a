//! Typed payloads: the API reference's samples parse as-is, unknown fields and enum
//! values are tolerated, and wrong types are rejected.

use std::fmt::Debug;

use nextgen_events::payloads::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type TestResult = Result<(), serde_json::Error>;

/// The "Create a charge" response, verbatim from the API reference.
const REFERENCE_CHARGE: &str = r#"{
  "id": "ch_1J2k3L4m5N6o",
  "object": "charge",
  "amount": 2000,
  "amount_refunded": 0,
  "currency": "usd",
  "description": "My First Test Charge",
  "paid": true,
  "status": "succeeded"
}"#;

/// The "Create a customer" response, verbatim from the API reference.
const REFERENCE_CUSTOMER: &str = r#"{
  "id": "cus_8mNq2Lp5Zk9Xw",
  "object": "customer",
  "balance": 0,
  "created": 1713745200,
  "currency": "usd",
  "description": "My First Test Customer",
  "email": "jane.doe@example.com",
  "name": "Jane Doe"
}"#;

/// The "Create a refund" response, verbatim from the API reference.
const REFERENCE_REFUND: &str = r#"{
  "id": "re_3L9mZ1K0Xp4Qw",
  "object": "refund",
  "amount": 1000,
  "charge": "ch_1J2k3L4m5N6o",
  "created": 1713745800,
  "currency": "usd",
  "reason": "requested_by_customer",
  "status": "succeeded"
}"#;

/// The reference charge with `field` replaced by `value` (or removed when `None`).
fn charge_with(field: &str, value: Option<Value>) -> Value {
    let mut charge: Value =
        serde_json::from_str(REFERENCE_CHARGE).expect("reference charge is JSON");
    let object = charge
        .as_object_mut()
        .expect("reference charge is an object");
    match value {
        Some(value) => object.insert(field.to_owned(), value),
        None => object.remove(field),
    };
    charge
}

#[test]
fn reference_charge_sample_parses() -> TestResult {
    let charge: Charge = serde_json::from_str(REFERENCE_CHARGE)?;
    assert_eq!(charge.id, "ch_1J2k3L4m5N6o");
    assert_eq!(charge.amount, 2000);
    assert_eq!(charge.amount_refunded, 0);
    assert_eq!(charge.currency, "usd");
    assert_eq!(charge.description.as_deref(), Some("My First Test Charge"));
    assert!(charge.paid);
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    Ok(())
}

#[test]
fn reference_customer_sample_parses() -> TestResult {
    let customer: Customer = serde_json::from_str(REFERENCE_CUSTOMER)?;
    assert_eq!(customer.id, "cus_8mNq2Lp5Zk9Xw");
    assert_eq!(customer.balance, 0);
    assert_eq!(customer.created, 1_713_745_200);
    assert_eq!(customer.currency.as_deref(), Some("usd"));
    assert_eq!(
        customer.description.as_deref(),
        Some("My First Test Customer")
    );
    assert_eq!(customer.email.as_deref(), Some("jane.doe@example.com"));
    assert_eq!(customer.name.as_deref(), Some("Jane Doe"));
    assert_eq!(customer.deleted, None);
    Ok(())
}

#[test]
fn reference_refund_sample_parses() -> TestResult {
    let refund: Refund = serde_json::from_str(REFERENCE_REFUND)?;
    assert_eq!(refund.id, "re_3L9mZ1K0Xp4Qw");
    assert_eq!(refund.amount, 1000);
    assert_eq!(refund.charge, "ch_1J2k3L4m5N6o");
    assert_eq!(refund.created, 1_713_745_800);
    assert_eq!(refund.currency, "usd");
    assert_eq!(refund.reason, Some(RefundReason::RequestedByCustomer));
    assert_eq!(refund.status, RefundStatus::Succeeded);
    Ok(())
}

#[test]
fn fields_absent_from_the_reference_sample_are_none_or_empty() -> TestResult {
    let charge: Charge = serde_json::from_str(REFERENCE_CHARGE)?;
    assert_eq!(charge.amount_captured, None);
    assert_eq!(charge.captured, None);
    assert_eq!(charge.created, None);
    assert_eq!(charge.customer, None);
    assert_eq!(charge.failure_code, None);
    assert_eq!(charge.failure_message, None);
    assert_eq!(charge.livemode, None);
    assert_eq!(charge.refunded, None);
    assert!(charge.metadata.is_empty());

    let refund: Refund = serde_json::from_value(json!({
        "id": "re_1", "amount": 500, "charge": "ch_1", "created": 1713745800,
        "currency": "eur", "status": "pending"
    }))?;
    assert_eq!(refund.reason, None);
    assert_eq!(refund.failure_reason, None);
    assert_eq!(refund.payment_intent, None);
    assert!(refund.metadata.is_empty());

    let customer: Customer = serde_json::from_value(json!({
        "id": "cus_1", "balance": -250, "created": 1713745200
    }))?;
    assert_eq!(customer.balance, -250);
    assert_eq!(
        (customer.email, customer.name, customer.description),
        (None, None, None)
    );
    Ok(())
}

#[test]
fn explicit_nulls_are_none() -> TestResult {
    let charge: Charge = serde_json::from_value(json!({
        "id": "ch_1", "amount": 2000, "amount_refunded": 0, "currency": "usd",
        "description": null, "customer": null, "failure_code": null,
        "paid": true, "status": "succeeded"
    }))?;
    assert_eq!(charge.description, None);
    assert_eq!(charge.customer, None);
    assert_eq!(charge.failure_code, None);

    let refund: Refund = serde_json::from_str(
        &REFERENCE_REFUND.replace(r#""reason": "requested_by_customer""#, r#""reason": null"#),
    )?;
    assert_eq!(refund.reason, None);
    Ok(())
}

#[test]
fn unknown_fields_are_ignored() -> TestResult {
    let mut extended = charge_with("brand_new_field", Some(json!("surprise")));
    extended["outcome"] = json!({"network_status": "approved_by_network", "risk_score": 12});
    extended["payment_method_details"] = json!({"card": {"brand": "visa", "last4": "4242"}});
    let charge: Charge = serde_json::from_value(extended)?;
    let reference: Charge = serde_json::from_str(REFERENCE_CHARGE)?;
    assert_eq!(charge, reference);
    Ok(())
}

#[test]
fn full_charge_with_metadata_parses() -> TestResult {
    let charge: Charge = serde_json::from_value(json!({
        "id": "ch_3PqR", "object": "charge", "amount": 4999, "amount_captured": 4999,
        "amount_refunded": 1000, "balance_transaction": "txn_1", "captured": true,
        "created": 1713745200, "currency": "gbp", "customer": "cus_8mNq2Lp5Zk9Xw",
        "description": null, "disputed": false, "failure_code": null, "failure_message": null,
        "invoice": "in_1", "livemode": false, "metadata": {"order_id": "6735"},
        "paid": true, "payment_intent": "pi_1", "receipt_email": "jane.doe@example.com",
        "receipt_url": "https://pay.nextgen.tech/receipts/ch_3PqR", "refunded": false,
        "statement_descriptor": "NEXTGEN*SHOP", "status": "succeeded"
    }))?;
    assert_eq!(charge.amount_captured, Some(4999));
    assert_eq!(charge.amount_refunded, 1000);
    assert_eq!(charge.captured, Some(true));
    assert_eq!(charge.customer.as_deref(), Some("cus_8mNq2Lp5Zk9Xw"));
    assert_eq!(charge.refunded, Some(false));
    assert_eq!(
        charge.metadata.get("order_id").map(String::as_str),
        Some("6735")
    );

    let round_tripped: Charge = serde_json::from_value(serde_json::to_value(&charge)?)?;
    assert_eq!(round_tripped, charge);
    Ok(())
}

#[test]
fn failed_charge_carries_failure_details() -> TestResult {
    let charge: Charge = serde_json::from_value(json!({
        "id": "ch_2", "amount": 2000, "amount_refunded": 0, "currency": "usd",
        "paid": false, "status": "failed", "failure_code": "card_declined",
        "failure_message": "Your card was declined."
    }))?;
    assert_eq!(charge.status, ChargeStatus::Failed);
    assert_eq!(charge.failure_code.as_deref(), Some("card_declined"));
    assert_eq!(
        charge.failure_message.as_deref(),
        Some("Your card was declined.")
    );
    Ok(())
}

#[test]
fn unknown_enum_values_are_kept_and_round_trip() -> TestResult {
    let charge: Charge =
        serde_json::from_value(charge_with("status", Some(json!("blocked_for_review"))))?;
    assert_eq!(
        charge.status,
        ChargeStatus::Unknown("blocked_for_review".to_owned())
    );
    assert!(charge.status.is_unknown());
    assert_eq!(charge.status.as_str(), "blocked_for_review");
    assert_eq!(charge.status.to_string(), "blocked_for_review");
    let serialized = serde_json::to_value(&charge)?;
    assert_eq!(serialized["status"], "blocked_for_review");
    assert_eq!(serde_json::from_value::<Charge>(serialized)?, charge);

    let refund: Refund = serde_json::from_str(
        &REFERENCE_REFUND.replace("requested_by_customer", "expired_uncaptured_charge"),
    )?;
    assert_eq!(
        refund.reason,
        Some(RefundReason::Unknown(
            "expired_uncaptured_charge".to_owned()
        ))
    );
    assert_eq!(
        serde_json::to_value(&refund)?["reason"],
        "expired_uncaptured_charge"
    );

    assert_eq!(
        serde_json::from_value::<DisputeStatus>(json!("prevented"))?,
        DisputeStatus::Unknown("prevented".to_owned())
    );
    assert_eq!(
        serde_json::from_value::<InvoiceStatus>(json!("deleted"))?,
        InvoiceStatus::Unknown("deleted".to_owned())
    );
    Ok(())
}

#[test]
fn wrong_types_are_rejected() {
    let amount_as_string = charge_with("amount", Some(json!("20")));
    let err =
        serde_json::from_value::<Charge>(amount_as_string).expect_err("amount must be an integer");
    assert!(err.to_string().contains("invalid type"), "{err}");

    let status_as_number = charge_with("status", Some(json!(3)));
    let err =
        serde_json::from_value::<Charge>(status_as_number).expect_err("status must be a string");
    assert!(
        err.to_string().contains("expected a ChargeStatus string"),
        "{err}"
    );

    let metadata_as_list = charge_with("metadata", Some(json!(["order_id"])));
    assert!(serde_json::from_value::<Charge>(metadata_as_list).is_err());

    let reason_as_bool = REFERENCE_REFUND.replace(r#""requested_by_customer""#, "true");
    assert!(serde_json::from_str::<Refund>(&reason_as_bool).is_err());
}

#[test]
fn required_fields_are_required() {
    let without_amount = charge_with("amount", None);
    let err = serde_json::from_value::<Charge>(without_amount).expect_err("amount is required");
    assert!(err.to_string().contains("missing field `amount`"), "{err}");

    let without_charge = REFERENCE_REFUND.replace(r#""charge": "ch_1J2k3L4m5N6o","#, "");
    let err = serde_json::from_str::<Refund>(&without_charge).expect_err("charge is required");
    assert!(err.to_string().contains("missing field `charge`"), "{err}");
}

/// Checks that `wires` are exactly the enum's known values, in order, and that each
/// one maps to a named variant whose `as_str`, `Display` and serde forms agree.
fn assert_known_values<T>(wires: &[&str], known: &[T], as_str: fn(&T) -> &str) -> TestResult
where
    T: Debug + PartialEq + Serialize + DeserializeOwned + for<'a> From<&'a str> + ToString,
{
    assert_eq!(known.len(), wires.len(), "known variants: {known:?}");
    for (wire, expected) in wires.iter().zip(known) {
        let parsed: T = serde_json::from_value(json!(wire))?;
        assert_eq!(&parsed, expected, "{wire} maps to the wrong variant");
        assert_eq!(T::from(wire), parsed);
        assert_eq!(as_str(&parsed), *wire);
        assert_eq!(parsed.to_string(), *wire);
        assert_eq!(serde_json::to_value(&parsed)?, json!(wire));
    }
    Ok(())
}

#[test]
fn every_known_enum_value_round_trips() -> TestResult {
    assert_known_values(
        &["succeeded", "pending", "failed"],
        ChargeStatus::KNOWN,
        ChargeStatus::as_str,
    )?;
    assert_known_values(
        &["duplicate", "fraudulent", "requested_by_customer"],
        RefundReason::KNOWN,
        RefundReason::as_str,
    )?;
    assert_known_values(
        &[
            "pending",
            "requires_action",
            "succeeded",
            "failed",
            "canceled",
        ],
        RefundStatus::KNOWN,
        RefundStatus::as_str,
    )?;
    assert_known_values(
        &[
            "bank_cannot_process",
            "check_returned",
            "credit_not_processed",
            "customer_initiated",
            "debit_not_authorized",
            "duplicate",
            "fraudulent",
            "general",
            "incorrect_account_details",
            "insufficient_funds",
            "product_not_received",
            "product_unacceptable",
            "subscription_canceled",
            "unrecognized",
        ],
        DisputeReason::KNOWN,
        DisputeReason::as_str,
    )?;
    assert_known_values(
        &[
            "warning_needs_response",
            "warning_under_review",
            "warning_closed",
            "needs_response",
            "under_review",
            "won",
            "lost",
        ],
        DisputeStatus::KNOWN,
        DisputeStatus::as_str,
    )?;
    assert_known_values(
        &["draft", "open", "paid", "uncollectible", "void"],
        InvoiceStatus::KNOWN,
        InvoiceStatus::as_str,
    )?;
    assert!(
        ChargeStatus::KNOWN
            .iter()
            .all(|status| !status.is_unknown())
    );
    Ok(())
}

#[test]
fn deleted_customer_parses() -> TestResult {
    let customer: Customer = serde_json::from_str(&REFERENCE_CUSTOMER.replace(
        r#""name": "Jane Doe""#,
        r#""name": "Jane Doe", "deleted": true"#,
    ))?;
    assert_eq!(customer.deleted, Some(true));
    assert_eq!(customer.id, "cus_8mNq2Lp5Zk9Xw");
    Ok(())
}

#[test]
fn realistic_dispute_parses() -> TestResult {
    let dispute: Dispute = serde_json::from_value(json!({
        "id": "dp_1PkQ7w2eZvKYlo2C",
        "object": "dispute",
        "amount": 2000,
        "balance_transactions": [],
        "charge": "ch_1J2k3L4m5N6o",
        "created": 1713832200,
        "currency": "usd",
        "evidence": {"customer_email_address": "jane.doe@example.com", "product_description": null},
        "evidence_details": {
            "due_by": 1714694399,
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0
        },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "payment_intent": null,
        "reason": "product_not_received",
        "status": "needs_response"
    }))?;
    assert_eq!(dispute.amount, 2000);
    assert_eq!(dispute.charge, "ch_1J2k3L4m5N6o");
    assert_eq!(dispute.reason, DisputeReason::ProductNotReceived);
    assert_eq!(dispute.status, DisputeStatus::NeedsResponse);
    assert_eq!(dispute.is_charge_refundable, Some(false));
    assert_eq!(dispute.payment_intent, None);
    let details = dispute
        .evidence_details
        .as_ref()
        .expect("evidence_details is present");
    assert_eq!(details.due_by, Some(1_714_694_399));
    assert_eq!(details.submission_count, Some(0));
    assert_eq!(details.has_evidence, Some(false));
    Ok(())
}

#[test]
fn realistic_invoice_parses() -> TestResult {
    let invoice: Invoice = serde_json::from_value(json!({
        "id": "in_1PkR2s2eZvKYlo2C",
        "object": "invoice",
        "amount_due": 1500,
        "amount_paid": 1500,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": true,
        "billing_reason": "subscription_cycle",
        "charge": "ch_1PkR3t2eZvKYlo2C",
        "created": 1713745200,
        "currency": "usd",
        "customer": "cus_8mNq2Lp5Zk9Xw",
        "customer_email": "jane.doe@example.com",
        "description": null,
        "due_date": null,
        "hosted_invoice_url": "https://invoice.nextgen.tech/i/in_1PkR2s2eZvKYlo2C",
        "invoice_pdf": "https://pay.nextgen.tech/invoice/in_1PkR2s2eZvKYlo2C/pdf",
        "lines": {"object": "list", "data": [{"id": "il_1", "amount": 1500}], "has_more": false},
        "livemode": false,
        "metadata": {"plan": "pro"},
        "number": "A1B2C3D4-0007",
        "paid": true,
        "payment_intent": "pi_1PkR3t2eZvKYlo2C",
        "period_end": 1713745200,
        "period_start": 1711066800,
        "status": "paid",
        "subscription": "sub_1OaB2c2eZvKYlo2C",
        "subtotal": 1500,
        "total": 1500
    }))?;
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(invoice.amount_due, 1500);
    assert_eq!(invoice.amount_remaining, 0);
    assert_eq!(invoice.attempt_count, Some(1));
    assert_eq!(
        invoice.billing_reason.as_deref(),
        Some("subscription_cycle")
    );
    assert_eq!(
        invoice.subscription.as_deref(),
        Some("sub_1OaB2c2eZvKYlo2C")
    );
    assert_eq!(invoice.period_start, Some(1_711_066_800));
    assert_eq!(invoice.due_date, None);
    assert_eq!(
        invoice.metadata.get("plan").map(String::as_str),
        Some("pro")
    );

    let minimal: Invoice = serde_json::from_value(json!({
        "id": "in_2", "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
        "currency": "usd", "created": 1713745200, "customer": null, "status": null
    }))?;
    assert_eq!(
        (minimal.customer, minimal.subscription, minimal.status),
        (None, None, None)
    );
    Ok(())
}
