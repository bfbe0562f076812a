//! The event catalog, from `nextgen-catalog`: the macro checks names against it, and
//! `nextgen-events` gets its runtime catalog through the hidden `__catalog!` macro.

pub(crate) use nextgen_catalog::{EVENTS, WILDCARD, has_object_id, payload_of, suggest};

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
