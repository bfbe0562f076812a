//! The event catalog: every event type NextGen sends and the payload type it carries.
//!
//! This table is the one source of truth. The attribute macro reads it to check event names at
//! compile time, and `nextgen-events` gets its runtime catalog from it through the hidden
//! `__catalog!` macro, so the two can never disagree.

/// `(event type, payload type name in nextgen_events::payloads)`.
pub(crate) const EVENTS: &[(&str, &str)] = &[
    ("charge.succeeded", "Charge"),
    ("charge.failed", "Charge"),
    ("charge.pending", "Charge"),
    ("charge.captured", "Charge"),
    ("charge.refunded", "Charge"),
    ("charge.updated", "Charge"),
    ("charge.dispute.created", "Dispute"),
    ("charge.dispute.updated", "Dispute"),
    ("charge.dispute.closed", "Dispute"),
    ("customer.created", "Customer"),
    ("customer.updated", "Customer"),
    ("customer.deleted", "Customer"),
    ("refund.created", "Refund"),
    ("refund.updated", "Refund"),
    ("refund.failed", "Refund"),
    ("invoice.paid", "Invoice"),
    ("invoice.payment_succeeded", "Invoice"),
    ("invoice.payment_failed", "Invoice"),
];

/// The payload types with an `id` field (a `String`), which `latest_only` handlers key the
/// newest state by. The expansion checks it against the type, so this list cannot be wrong
/// silently.
pub(crate) const WITH_OBJECT_ID: &[&str] = &["Charge", "Dispute", "Customer", "Refund", "Invoice"];

/// Whether a payload type has an `id` (see [`WITH_OBJECT_ID`]).
pub(crate) fn has_object_id(payload: &str) -> bool {
    WITH_OBJECT_ID.contains(&payload)
}

/// The event type that matches every event, known or not.
pub(crate) const WILDCARD: &str = "*";

/// The payload type name for an event type, when the catalog has it.
pub(crate) fn payload_of(event: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, payload)| *payload)
}

/// The catalog name closest to a misspelt one, when one is close enough to be a likely typo.
pub(crate) fn suggest(event: &str) -> Option<&'static str> {
    crate::errors::closest(event, EVENTS.iter().map(|(name, _)| *name))
}

/// The Rust constant name for an event type: `charge.dispute.created` -> `CHARGE_DISPUTE_CREATED`.
pub(crate) fn const_name(event: &str) -> String {
    event
        .chars()
        .map(|c| match c {
            '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}
