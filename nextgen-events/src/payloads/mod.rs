//! Typed payloads: the objects carried in an event's `data.object`.
//!
//! Each type follows the NextGen API reference and the fields a payments object
//! normally carries. They are forward compatible:
//!
//! - unknown fields are ignored;
//! - fields that are not guaranteed to be present are [`Option`], and `metadata`
//!   defaults to an empty map;
//! - string enums such as [`ChargeStatus`] keep values this version of the crate
//!   does not know in an `Unknown(String)` variant instead of failing the event.
//!
//! Amounts are integers in the smallest currency unit (e.g. 100 cents for $1.00),
//! currencies are lowercase three-letter ISO codes and timestamps are unix seconds.
//!
//! # Example
//!
//! ```
//! use nextgen_events::payloads::{Charge, ChargeStatus};
//!
//! let charge: Charge = serde_json::from_str(
//!     r#"{"id": "ch_1", "amount": 2000, "amount_refunded": 0, "currency": "usd",
//!         "paid": false, "status": "blocked_for_review", "brand_new_field": 1}"#,
//! )?;
//! assert_eq!(charge.status, ChargeStatus::Unknown("blocked_for_review".into()));
//! assert_eq!(charge.status.as_str(), "blocked_for_review");
//! # Ok::<(), serde_json::Error>(())
//! ```

/// Defines an open string enum: the listed variants, plus `Unknown(String)` for any
/// other value, with `as_str`, `Display`, `FromStr`, `From<&str>`, `From<String>`
/// and string `Serialize`/`Deserialize` impls.
///
/// ```text
/// open_enum! {
///     /// Enum docs.
///     pub enum Name {
///         /// Variant docs.
///         Variant = "wire_value",
///     }
/// }
/// ```
macro_rules! open_enum {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $wire:literal,
            )+
        }
    ) => {
        $(#[$enum_meta])*
        ///
        /// Values this version of the crate does not know are kept verbatim in
        /// [`Unknown`](Self::Unknown) instead of failing deserialization. Build values
        /// from strings with [`From`] (or [`str::parse`]) so that known strings map to
        /// their named variant.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[doc = concat!("\n\nWire value: `", $wire, "`.")]
                $variant,
            )+
            /// A value this version of the crate does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every known variant, in declaration order (`Unknown` excluded).
            pub const KNOWN: &'static [Self] = &[$(Self::$variant),+];

            /// The string NextGen uses for this value on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(value) => value,
                }
            }

            /// Whether this value is one this version of the crate does not know.
            pub fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        impl ::core::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::core::convert::From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Unknown(value),
                }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = ::core::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct OpenEnumVisitor;

                impl ::serde::de::Visitor<'_> for OpenEnumVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }

                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::from(value))
                    }

                    fn visit_string<E: ::serde::de::Error>(self, value: String) -> Result<$name, E> {
                        Ok($name::from(value))
                    }
                }

                deserializer.deserialize_str(OpenEnumVisitor)
            }
        }
    };
}

mod charge;
mod customer;
mod dispute;
mod invoice;
mod refund;

pub use charge::{Charge, ChargeStatus};
pub use customer::Customer;
pub use dispute::{Dispute, DisputeReason, DisputeStatus, EvidenceDetails};
pub use invoice::{Invoice, InvoiceStatus};
pub use refund::{Refund, RefundReason, RefundStatus};
