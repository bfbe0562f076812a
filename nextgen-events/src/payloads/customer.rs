//! The `Customer` payload: a customer of the merchant.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A customer: someone the merchant charges, with saved contact and payment details.
///
/// Carried by the `customer.created`, `customer.updated` and `customer.deleted`
/// events.
///
/// # Example
///
/// ```
/// use nextgen_events::payloads::Customer;
///
/// let customer: Customer = serde_json::from_str(
///     r#"{"id": "cus_8mNq2Lp5Zk9Xw", "object": "customer", "balance": 0,
///         "created": 1713745200, "email": "jane.doe@example.com", "name": null}"#,
/// )?;
/// assert_eq!(customer.email.as_deref(), Some("jane.doe@example.com"));
/// assert_eq!(customer.name, None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Unique identifier of the customer (`cus_...`).
    pub id: String,
    /// Balance applied to the customer's next invoice, in the smallest currency unit
    /// (negative is a credit, positive an amount owed).
    pub balance: i64,
    /// Time the customer was created, in unix seconds.
    pub created: i64,
    /// Three-letter ISO currency code, in lowercase, the customer is billed in.
    pub currency: Option<String>,
    /// Default payment source used for charges (e.g. a card id), if any.
    pub default_source: Option<String>,
    /// `true` when the customer has been deleted (`customer.deleted` events).
    pub deleted: Option<bool>,
    /// Whether the customer's latest invoice is past due.
    pub delinquent: Option<bool>,
    /// Arbitrary description attached to the customer.
    pub description: Option<String>,
    /// The customer's email address.
    pub email: Option<String>,
    /// Prefix used to generate the customer's invoice numbers.
    pub invoice_prefix: Option<String>,
    /// `true` in live mode, `false` in test mode.
    pub livemode: Option<bool>,
    /// Key-value pairs attached to the customer by the merchant.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// The customer's full name or business name.
    pub name: Option<String>,
    /// The customer's phone number.
    pub phone: Option<String>,
}
