//! The `Refund` payload: money returned to the customer for a charge.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

open_enum! {
    /// Why a refund was made.
    pub enum RefundReason {
        /// The charge was a duplicate of another one.
        Duplicate = "duplicate",
        /// The charge was fraudulent.
        Fraudulent = "fraudulent",
        /// The customer asked for the refund.
        RequestedByCustomer = "requested_by_customer",
    }
}

open_enum! {
    /// The state of a refund.
    pub enum RefundStatus {
        /// The refund is being processed.
        Pending = "pending",
        /// The customer must take an action before the refund can be processed.
        RequiresAction = "requires_action",
        /// The money was returned to the customer.
        Succeeded = "succeeded",
        /// The refund could not be processed (see `failure_reason`).
        Failed = "failed",
        /// The refund was canceled.
        Canceled = "canceled",
    }
}

/// A refund: all or part of a charge's amount returned to the customer's card or
/// account.
///
/// Carried by the `refund.created`, `refund.updated` and `refund.failed` events.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::{Refund, RefundReason, RefundStatus};
///
/// let refund: Refund = serde_json::from_str(
///     r#"{"id": "re_3L9mZ1K0Xp4Qw", "amount": 1000, "charge": "ch_1J2k3L4m5N6o",
///         "created": 1713745800, "currency": "usd",
///         "reason": "requested_by_customer", "status": "succeeded"}"#,
/// )?;
/// assert_eq!(refund.charge, "ch_1J2k3L4m5N6o");
/// assert_eq!(refund.reason, Some(RefundReason::RequestedByCustomer));
/// assert_eq!(refund.status, RefundStatus::Succeeded);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Unique identifier of the refund (`re_...`).
    pub id: String,
    /// Amount refunded, in the smallest currency unit (e.g. 100 cents for $1.00).
    pub amount: i64,
    /// Balance transaction describing the refund's impact on the account balance (`txn_...`).
    pub balance_transaction: Option<String>,
    /// Charge that was refunded (`ch_...`).
    pub charge: String,
    /// Time the refund was created, in unix seconds.
    pub created: i64,
    /// Three-letter ISO currency code, in lowercase (e.g. `usd`).
    pub currency: String,
    /// Why the refund failed (e.g. `expired_or_canceled_card`), when `status` is `failed`.
    pub failure_reason: Option<String>,
    /// Key-value pairs attached to the refund by the merchant.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Payment intent of the refunded charge (`pi_...`), if any.
    pub payment_intent: Option<String>,
    /// Why the refund was made, if a reason was given.
    pub reason: Option<RefundReason>,
    /// Number shown on the refund's receipt.
    pub receipt_number: Option<String>,
    /// State of the refund.
    pub status: RefundStatus,
}
