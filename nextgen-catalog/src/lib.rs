//! The NextGen event catalog: every event type NextGen sends and the payload type it carries,
//! and the "did you mean" over it.
//!
//! This table is the one source of truth. The `#[nextgen_event]` macro reads it to check event
//! names at compile time, `nextgen-events` gets its runtime catalog from it, and both suggest
//! spellings with [`suggest`], so they can never disagree.

/// `(event type, payload type name in nextgen_events::payloads)`.
pub const EVENTS: &[(&str, &str)] = &[
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
pub const WITH_OBJECT_ID: &[&str] = &["Charge", "Dispute", "Customer", "Refund", "Invoice"];

/// Whether a payload type has an `id` (see [`WITH_OBJECT_ID`]).
pub fn has_object_id(payload: &str) -> bool {
    WITH_OBJECT_ID.contains(&payload)
}

/// The event type that matches every event, known or not.
pub const WILDCARD: &str = "*";

/// The payload type name for an event type, when the catalog has it.
pub fn payload_of(event: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, payload)| *payload)
}

/// The catalog name closest to a misspelt one, when one is close enough to be a likely typo:
/// the "did you mean" of the macro's compile errors and of the `trigger` tool.
///
/// ```
/// assert_eq!(nextgen_catalog::suggest("charge.succeded"), Some("charge.succeeded"));
/// assert_eq!(nextgen_catalog::suggest("payout.paid"), None);
/// ```
pub fn suggest(event: &str) -> Option<&'static str> {
    closest(event, EVENTS.iter().map(|(name, _)| *name))
}

/// The candidate closest to a misspelt word, when one is close enough to be a likely typo.
pub fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // darling's threshold: close enough that the suggestion is usually right.
    const THRESHOLD: f64 = 0.8;
    candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::jaro_winkler(written, candidate)))
        .filter(|(_, score)| *score > THRESHOLD)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
}
