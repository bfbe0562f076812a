//! The `Dispute` payload: a customer disputing a charge with their bank.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

open_enum! {
    /// The reason the customer's bank gave for a dispute.
    pub enum DisputeReason {
        /// The bank could not process the payment.
        BankCannotProcess = "bank_cannot_process",
        /// A check payment was returned.
        CheckReturned = "check_returned",
        /// The customer was promised a credit or refund that was not processed.
        CreditNotProcessed = "credit_not_processed",
        /// The customer initiated the dispute with their bank.
        CustomerInitiated = "customer_initiated",
        /// The customer did not authorize the debit.
        DebitNotAuthorized = "debit_not_authorized",
        /// The customer was charged more than once for the same purchase.
        Duplicate = "duplicate",
        /// The cardholder did not authorize the payment.
        Fraudulent = "fraudulent",
        /// An uncategorized reason.
        General = "general",
        /// The payment was made to incorrect account details.
        IncorrectAccountDetails = "incorrect_account_details",
        /// The account had insufficient funds.
        InsufficientFunds = "insufficient_funds",
        /// The customer did not receive the goods or services.
        ProductNotReceived = "product_not_received",
        /// The goods or services were defective, damaged or not as described.
        ProductUnacceptable = "product_unacceptable",
        /// The customer was charged for a subscription they had canceled.
        SubscriptionCanceled = "subscription_canceled",
        /// The customer does not recognize the charge.
        Unrecognized = "unrecognized",
    }
}

open_enum! {
    /// The state of a dispute.
    pub enum DisputeStatus {
        /// An inquiry (early warning) that needs a response; funds are not yet withdrawn.
        WarningNeedsResponse = "warning_needs_response",
        /// Evidence for an inquiry was submitted and is being reviewed.
        WarningUnderReview = "warning_under_review",
        /// The inquiry was closed without becoming a full dispute.
        WarningClosed = "warning_closed",
        /// The dispute needs evidence from the merchant.
        NeedsResponse = "needs_response",
        /// Evidence was submitted and the bank is reviewing it.
        UnderReview = "under_review",
        /// The dispute was resolved in the merchant's favor.
        Won = "won",
        /// The dispute was resolved in the customer's favor.
        Lost = "lost",
    }
}

/// Information about the evidence submitted for a dispute.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::EvidenceDetails;
///
/// let details: EvidenceDetails = serde_json::from_str(
///     r#"{"due_by": 1714953599, "has_evidence": false, "past_due": false,
///         "submission_count": 0}"#,
/// )?;
/// assert_eq!(details.due_by, Some(1714953599));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceDetails {
    /// Deadline for submitting evidence, in unix seconds.
    pub due_by: Option<i64>,
    /// Whether evidence has been saved for the dispute.
    pub has_evidence: Option<bool>,
    /// Whether the last evidence submission was after the deadline.
    pub past_due: Option<bool>,
    /// Number of times evidence has been submitted.
    pub submission_count: Option<u32>,
}

/// A dispute (chargeback): the customer asked their bank to reverse a charge.
///
/// Carried by the `charge.dispute.created`, `charge.dispute.updated` and
/// `charge.dispute.closed` events.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::{Dispute, DisputeReason, DisputeStatus};
///
/// let dispute: Dispute = serde_json::from_str(
///     r#"{"id": "dp_1", "amount": 2000, "charge": "ch_1J2k3L4m5N6o",
///         "created": 1713832200, "currency": "usd", "reason": "fraudulent",
///         "status": "needs_response"}"#,
/// )?;
/// assert_eq!(dispute.reason, DisputeReason::Fraudulent);
/// assert_eq!(dispute.status, DisputeStatus::NeedsResponse);
/// assert_eq!(dispute.evidence_details, None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// Unique identifier of the dispute (`dp_...`).
    pub id: String,
    /// Disputed amount, in the smallest currency unit (e.g. 100 cents for $1.00).
    pub amount: i64,
    /// Charge that was disputed (`ch_...`).
    pub charge: String,
    /// Time the dispute was created, in unix seconds.
    pub created: i64,
    /// Three-letter ISO currency code, in lowercase (e.g. `usd`).
    pub currency: String,
    /// Information about the evidence submitted, including the response deadline.
    pub evidence_details: Option<EvidenceDetails>,
    /// Whether the disputed charge can still be refunded (only possible for inquiries).
    pub is_charge_refundable: Option<bool>,
    /// `true` in live mode, `false` in test mode.
    pub livemode: Option<bool>,
    /// Key-value pairs attached to the dispute by the merchant.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Payment intent of the disputed charge (`pi_...`), if any.
    pub payment_intent: Option<String>,
    /// Reason the customer's bank gave for the dispute.
    pub reason: DisputeReason,
    /// State of the dispute.
    pub status: DisputeStatus,
}
