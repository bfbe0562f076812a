//! Handlers shared by the end-to-end tests, in a library crate of their own.
//!
//! They prove that `#[nextgen_event]` handlers defined in a library register in any binary that
//! links it: a test binary that names this crate (`use nextgen_tests as _;`, or through
//! [`calls_for`]) finds them in `Registry::global()` and dispatch runs them. Each call is
//! recorded in [`CALLS`] under a key the test chose (a customer id, an event id), so tests that
//! run in parallel threads only ever look at their own calls.

pub mod contract;
pub mod hooked;
pub mod services;

use std::sync::{Mutex, PoisonError};

use nextgen_events::prelude::*;

/// One call of one of this crate's handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The handler's name, such as `welcome_customer`.
    pub handler: &'static str,
    /// What the call is filed under: the customer's id for [`welcome_customer`], the event's id
    /// for [`book_refund`].
    pub key: String,
    /// What the handler saw, such as `refund re_1 of 500 usd`.
    pub detail: String,
}

/// Every call of this crate's handlers, in the order they happened.
pub static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());

fn record(handler: &'static str, key: &str, detail: String) {
    CALLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Call {
            handler,
            key: key.to_owned(),
            detail,
        });
}

/// The calls filed under `key`, in the order they happened.
pub fn calls_for(key: &str) -> Vec<Call> {
    CALLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|call| call.key == key)
        .cloned()
        .collect()
}

/// Greets a new customer: takes the payload alone, so its calls are filed under the
/// customer's id.
#[nextgen_event("customer.created")]
pub async fn welcome_customer(customer: Customer) {
    let detail = format!(
        "welcome {}",
        customer.email.as_deref().unwrap_or("(no email)")
    );
    record("welcome_customer", &customer.id, detail);
}

/// Books a refund: takes the whole event, so its calls are filed under the event's id. Fails
/// on a refund that is not positive, to show a library handler's error being reported.
#[nextgen_event("refund.created")]
pub async fn book_refund(event: Event<Refund>) -> Result<(), String> {
    let refund = &event.data.object;
    record(
        "book_refund",
        &event.id,
        format!(
            "refund {} of {} {}",
            refund.id, refund.amount, refund.currency
        ),
    );
    if refund.amount > 0 {
        Ok(())
    } else {
        Err(format!(
            "refund {} has a non-positive amount {}",
            refund.id, refund.amount
        ))
    }
}
