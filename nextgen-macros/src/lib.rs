//! The `#[nextgen_event("...")]` attribute. Use it through `nextgen-events`, which re-exports it
//! and documents it.
//!
//! It takes the event type, then optionally `name = "..."`, which pins the handler's name (its
//! idempotency key) in place of the function's path:
//! `#[nextgen_event("charge.succeeded", name = "ledger.book_charge")]`.
//!
//! Laid out like dtolnay's derive crates: [`parse`] reads the tokens into our own model,
//! [`check`] validates it against the event catalog, [`expand`] writes the registration.
//! [`errors`] holds what the first two share to report errors.

mod catalog;
mod check;
mod errors;
mod expand;
mod parse;

use proc_macro::TokenStream;
use quote::{format_ident, quote};

/// Registers an `async fn` as the handler of a NextGen event type. See `nextgen_events` for
/// the full documentation.
#[proc_macro_attribute]
pub fn nextgen_event(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as syn::ItemFn);
    let handler = parse::Handler::parse(args.into(), &function).and_then(|handler| {
        check::check(&handler)?;
        Ok(handler)
    });
    match handler {
        Ok(handler) => expand::expand(&handler, &function),
        // The function stays as written, so the user sees our error and not a cascade of
        // "cannot find function" errors from its callers.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #function)
        }
    }
    .into()
}

/// Calls `$callback! { "charge.succeeded" => Charge as CHARGE_SUCCEEDED, ... }` with the catalog.
///
/// Not public API: `nextgen-events` builds its runtime catalog with it.
#[doc(hidden)]
#[proc_macro]
pub fn __catalog(input: TokenStream) -> TokenStream {
    let callback = syn::parse_macro_input!(input as syn::Path);
    let entries = catalog::EVENTS.iter().map(|(name, payload)| {
        let payload = format_ident!("{}", payload);
        let constant = format_ident!("{}", catalog::const_name(name));
        quote!(#name => #payload as #constant)
    });
    quote!(#callback! { #(#entries),* }).into()
}
