//! The `Invoice` payload: a statement of amounts owed, e.g. for a recurring billing cycle.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

open_enum! {
    /// The state of an invoice.
    pub enum InvoiceStatus {
        /// Being prepared; it can still be edited and is not yet payable.
        Draft = "draft",
        /// Finalized and awaiting payment.
        Open = "open",
        /// Fully paid.
        Paid = "paid",
        /// Unlikely to be paid; treated as bad debt.
        Uncollectible = "uncollectible",
        /// Canceled; it will never be paid.
        Void = "void",
    }
}

/// An invoice: the amounts a customer owes, typically for one billing cycle of a
/// subscription.
///
/// Carried by the `invoice.paid`, `invoice.payment_succeeded` and
/// `invoice.payment_failed` events.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::{Invoice, InvoiceStatus};
///
/// let invoice: Invoice = serde_json::from_str(
///     r#"{"id": "in_1", "customer": "cus_8mNq2Lp5Zk9Xw", "status": "paid",
///         "amount_due": 1500, "amount_paid": 1500, "amount_remaining": 0,
///         "currency": "usd", "created": 1713745200}"#,
/// )?;
/// assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
/// assert_eq!(invoice.amount_remaining, 0);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Unique identifier of the invoice (`in_...`).
    pub id: String,
    /// Final amount due, in the smallest currency unit (e.g. 100 cents for $1.00).
    pub amount_due: i64,
    /// Amount paid so far, in the smallest currency unit.
    pub amount_paid: i64,
    /// Amount still owed, in the smallest currency unit.
    pub amount_remaining: i64,
    /// Number of payment attempts made for this invoice.
    pub attempt_count: Option<u32>,
    /// Whether a payment attempt has been made for this invoice.
    pub attempted: Option<bool>,
    /// Why the invoice was created (e.g. `subscription_cycle`, `subscription_create`, `manual`).
    pub billing_reason: Option<String>,
    /// Latest charge made to pay this invoice (`ch_...`), if any.
    pub charge: Option<String>,
    /// Time the invoice was created, in unix seconds.
    pub created: i64,
    /// Three-letter ISO currency code, in lowercase (e.g. `usd`).
    pub currency: String,
    /// Customer being billed (`cus_...`).
    pub customer: Option<String>,
    /// Email address of the customer being billed.
    pub customer_email: Option<String>,
    /// Arbitrary description shown on the invoice.
    pub description: Option<String>,
    /// Date the payment is due, in unix seconds (invoices sent for manual payment).
    pub due_date: Option<i64>,
    /// URL of the hosted page where the customer can view and pay the invoice.
    pub hosted_invoice_url: Option<String>,
    /// URL of the invoice's PDF.
    pub invoice_pdf: Option<String>,
    /// `true` in live mode, `false` in test mode.
    pub livemode: Option<bool>,
    /// Key-value pairs attached to the invoice by the merchant.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Human-readable invoice number, set once the invoice is finalized.
    pub number: Option<String>,
    /// Whether the invoice has been paid.
    pub paid: Option<bool>,
    /// Payment intent used to pay this invoice (`pi_...`), if any.
    pub payment_intent: Option<String>,
    /// End of the billing period covered, in unix seconds.
    pub period_end: Option<i64>,
    /// Start of the billing period covered, in unix seconds.
    pub period_start: Option<i64>,
    /// State of the invoice.
    pub status: Option<InvoiceStatus>,
    /// Subscription this invoice was generated for (`sub_...`), if any.
    pub subscription: Option<String>,
    /// Total before discounts and taxes, in the smallest currency unit.
    pub subtotal: Option<i64>,
    /// Total after discounts and taxes, in the smallest currency unit.
    pub total: Option<i64>,
}
