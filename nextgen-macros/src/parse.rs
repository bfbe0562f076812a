//! Parsing: the attribute's tokens and the annotated function into our own model.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Type};

/// What `#[nextgen_event("...")] async fn ...` says, in our terms.
pub(crate) struct Handler<'a> {
    /// The event type literal, spanned for errors.
    pub event: LitStr,
    /// The annotated function.
    pub function: &'a ItemFn,
    /// The argument types, in order; the first is the payload.
    pub arg_types: Vec<&'a Type>,
    /// Where to point when the function has no arguments.
    pub args_span: Span,
}

struct EventArg(LitStr);

impl Parse for EventArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            // `input.error` would start with "unexpected end of input"; the attribute itself is
            // the place to point at.
            return Err(syn::Error::new(
                Span::call_site(),
                "missing event type: write `#[nextgen_event(\"charge.succeeded\")]`, or `#[nextgen_event(\"*\")]` for every event",
            ));
        }
        if !input.peek(LitStr) {
            let tokens: TokenStream = input.parse()?;
            let written = tokens.to_string().replace(' ', "");
            // `charge.succeeded` or `*` unquoted: suggest the same, quoted.
            let looks_like_event = written == "*"
                || (written.starts_with(|c: char| c.is_ascii_alphabetic())
                    && written.contains('.')
                    && written
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'));
            let message = if looks_like_event {
                format!(
                    "the event type must be a string literal: write `#[nextgen_event(\"{written}\")]`"
                )
            } else {
                "the event type must be a string literal, as in `#[nextgen_event(\"charge.succeeded\")]`".to_owned()
            };
            return Err(syn::Error::new_spanned(tokens, message));
        }
        let event = input.parse::<LitStr>()?;
        if !input.is_empty() {
            let rest: TokenStream = input.parse()?;
            return Err(syn::Error::new_spanned(
                rest,
                "unexpected tokens after the event type: the attribute takes one string, as in `#[nextgen_event(\"charge.succeeded\")]`; for several events, write one handler each",
            ));
        }
        Ok(EventArg(event))
    }
}

impl<'a> Handler<'a> {
    pub(crate) fn parse(args: TokenStream, function: &'a ItemFn) -> syn::Result<Self> {
        let EventArg(event) = syn::parse2(args)?;
        let mut errors = Vec::new();
        let mut arg_types = Vec::new();
        for input in &function.sig.inputs {
            match input {
                FnArg::Typed(typed) => arg_types.push(&*typed.ty),
                FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                    receiver,
                    "a webhook handler cannot take `self`: make it a free function that takes the event, as in `async fn on_charge(charge: Charge)`",
                )),
            }
        }
        crate::check::combine(errors)?;
        Ok(Handler {
            event,
            function,
            arg_types,
            args_span: function.sig.paren_token.span.join(),
        })
    }

    /// The declared return type, `()` when there is none, with the span to point at.
    pub(crate) fn return_type(&self) -> (TokenStream, Span) {
        match &self.function.sig.output {
            ReturnType::Default => (quote::quote!(()), self.function.sig.ident.span()),
            ReturnType::Type(_, ty) => (quote::quote!(#ty), ty.span()),
        }
    }
}
