//! The `Charge` payload: one attempt to collect a payment from a payment source.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

open_enum! {
    /// The state of a charge.
    pub enum ChargeStatus {
        /// The payment was collected.
        Succeeded = "succeeded",
        /// The payment is still being processed (e.g. a bank transfer awaiting confirmation).
        Pending = "pending",
        /// The payment was declined or could not be completed.
        Failed = "failed",
    }
}

/// A charge: an attempt to collect a payment from a card or other payment source.
///
/// Carried by the `charge.succeeded`, `charge.failed`, `charge.pending`,
/// `charge.captured`, `charge.refunded` and `charge.updated` events.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::{Charge, ChargeStatus};
///
/// let charge: Charge = serde_json::from_str(
///     r#"{"id": "ch_1J2k3L4m5N6o", "object": "charge", "amount": 2000,
///         "amount_refunded": 0, "currency": "usd", "description": null,
///         "paid": true, "status": "succeeded"}"#,
/// )?;
/// assert_eq!(charge.amount, 2000);
/// assert_eq!(charge.status, ChargeStatus::Succeeded);
/// assert_eq!(charge.description, None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Unique identifier of the charge (`ch_...`).
    pub id: String,
    /// Amount intended to be collected, in the smallest currency unit (e.g. 100 cents for $1.00).
    pub amount: i64,
    /// Amount actually captured, in the smallest currency unit.
    pub amount_captured: Option<i64>,
    /// Amount refunded so far, in the smallest currency unit (can be less than `amount` for partial refunds).
    pub amount_refunded: i64,
    /// Balance transaction describing the charge's impact on the account balance (`txn_...`).
    pub balance_transaction: Option<String>,
    /// Whether the charge was captured (`false` for an authorization not yet captured).
    pub captured: Option<bool>,
    /// Time the charge was created, in unix seconds.
    pub created: Option<i64>,
    /// Three-letter ISO currency code, in lowercase (e.g. `usd`).
    pub currency: String,
    /// Customer the charge belongs to (`cus_...`), if any.
    pub customer: Option<String>,
    /// Arbitrary description attached to the charge.
    pub description: Option<String>,
    /// Whether the charge has been disputed by the customer.
    pub disputed: Option<bool>,
    /// Error code explaining why the charge failed (e.g. `card_declined`).
    pub failure_code: Option<String>,
    /// Human-readable message explaining why the charge failed.
    pub failure_message: Option<String>,
    /// Invoice this charge pays (`in_...`), if any.
    pub invoice: Option<String>,
    /// `true` in live mode, `false` in test mode.
    pub livemode: Option<bool>,
    /// Key-value pairs attached to the charge by the merchant.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Whether the charge succeeded or was successfully authorized for later capture.
    pub paid: bool,
    /// Payment intent that created this charge (`pi_...`), if any.
    pub payment_intent: Option<String>,
    /// Email address the receipt was sent to.
    pub receipt_email: Option<String>,
    /// URL of the charge's receipt.
    pub receipt_url: Option<String>,
    /// Whether the charge has been fully refunded.
    pub refunded: Option<bool>,
    /// Text that appears on the customer's card or bank statement.
    pub statement_descriptor: Option<String>,
    /// State of the charge.
    pub status: ChargeStatus,
}
