//! Expansion: the function as written, plus its registration with the handler registry.
//!
//! Everything is named through `::nextgen_events`, which re-exports this macro, so users depend
//! on one crate. Type checks are trait bounds spanned on the user's own tokens, so the compiler
//! points at the argument or return type that is wrong.
//!
//! The first argument and the return type go through traits declared in the expansion itself,
//! each implemented in terms of the runtime's (`FromEvent`, `IntoHandlerResult`) and carrying a
//! `#[diagnostic::on_unimplemented]` written for this one handler: the error names the event
//! type, the type the user wrote and the type to write instead, in one message at the offending
//! tokens. Their impls are `#[diagnostic::do_not_recommend]`, so the compiler reports the bound
//! on our trait instead of digging into the runtime's impls (which would give a generic
//! message, or `Display`'s own).

use std::collections::HashSet;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, ItemFn, PathArguments, Type};

use crate::catalog;
use crate::parse::{Backend, Handler};

pub(crate) fn expand(handler: &Handler<'_>, function: &ItemFn) -> TokenStream {
    let name = &function.sig.ident;
    let event = handler.event.value();
    let (payload, payload_text) = match catalog::payload_of(&event) {
        Some(payload) => {
            let ident = format_ident!("{}", payload);
            (quote!(::nextgen_events::payloads::#ident), payload)
        }
        None => (
            quote!(::nextgen_events::__private::Value),
            "serde_json::Value",
        ),
    };

    let Some((first, rest)) = handler.arg_types.split_first() else {
        // `check` has already reported a handler without arguments.
        return quote!(#function);
    };
    // The traits are named for the help line rustc adds ("the trait `ChargeSucceededPayload` is
    // not implemented for `Refund`"), and renamed if the signature uses the same name, which
    // they would shadow inside the expansion.
    let taken = signature_idents(function);
    let first_trait = unused_ident(&payload_trait_name(&event), &taken);
    let return_trait_name = unused_ident("WebhookHandlerReturn", &taken);
    let first_arg_trait = first_argument_trait(&first_trait, &event, payload_text, first, &payload);
    let wildcard = event == catalog::WILDCARD;
    // A `*` handler says how it takes the object (a `Value` tree or the JSON text), so that
    // dispatch builds only the forms its `*` handlers take.
    let take_event = if wildcard {
        quote_spanned! {first.span()=>
            let __arg0 = <#first as #first_trait>::__nextgen_take(event)?;
        }
    } else {
        quote_spanned! {first.span()=>
            let event = ::nextgen_events::__private::downcast::<#payload>(event)?;
            let __arg0 = <#first as #first_trait>::__nextgen_take(event);
        }
    };
    let object_form = if wildcard {
        quote_spanned! {first.span()=>
            .object_form(<#first as #first_trait>::__NEXTGEN_FORM)
        }
    } else {
        quote!()
    };
    // The transaction argument, if any (`check` let at most one through, after the event):
    // not taken from the context, but handed over when dispatch has begun the transaction.
    let transaction = handler
        .transactions
        .first()
        .map(|&(at, backend)| (at, handler.arg_types[at], backend));
    let rest_names: Vec<_> = (1..=rest.len())
        .map(|i| match transaction {
            Some((at, ..)) if at == i => format_ident!("__nextgen_tx"),
            _ => format_ident!("__arg{}", i),
        })
        .collect();
    let rest_args = rest
        .iter()
        .zip(&rest_names)
        .filter(|(_, arg)| *arg != "__nextgen_tx")
        .map(|(ty, arg)| {
            quote_spanned! {ty.span()=>
                let #arg = <#ty as ::nextgen_events::FromContext>::from_context(context)?;
            }
        });
    // The runtime keys idempotency records by the name: `name = "..."` keeps it when the
    // function moves or is renamed.
    let handler_name = match &handler.name {
        Some(pinned) => quote!(#pinned),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#name)
        )),
    };
    // `latest_only`: the catalog says the payload has an `id`; the type system makes sure.
    let (latest_only, object_id_check) = match &handler.latest_only {
        Some(flag) => (
            quote!(.latest_only()),
            quote_spanned! {flag.span()=>
                const _: fn(&#payload) -> &str = <#payload as ::nextgen_events::__private::ObjectId>::object_id;
            },
        ),
        None => (quote!(), quote!()),
    };
    let (return_type, return_span) = handler.return_type();
    let return_trait = return_trait(&return_trait_name, name, &function.sig.output);
    let into_result = quote_spanned! {return_span=>
        <#return_type as #return_trait_name>::__nextgen_into_result(result)
    };

    if let Some((_, transaction, backend)) = transaction {
        let (call_type, call, register, check, wrapper) = match backend {
            Backend::Postgres => (
                quote!(PgCall),
                quote!(postgres_call),
                quote!(in_postgres_transaction),
                quote!(postgres_transaction),
                quote!(__in_postgres_transaction),
            ),
            Backend::Sqlite => (
                quote!(SqliteCall),
                quote!(sqlite_call),
                quote!(in_sqlite_transaction),
                quote!(sqlite_transaction),
                quote!(__in_sqlite_transaction),
            ),
        };
        let run = quote! {
            const _: () = {
                #first_arg_trait
                #return_trait

                fn __nextgen_start(
                    event: ::nextgen_events::__private::ErasedEvent,
                    context: &::nextgen_events::Context<'_>,
                ) -> ::core::result::Result<
                    ::nextgen_events::__private::#call_type,
                    ::nextgen_events::HandlerError,
                > {
                    #take_event
                    #(#rest_args)*
                    ::core::result::Result::Ok(::nextgen_events::__private::#call(
                        move |__nextgen_tx| ::std::boxed::Box::pin(async move {
                            let __nextgen_tx: #transaction = __nextgen_tx;
                            let result: #return_type = #name(__arg0 #(, #rest_names)*).await;
                            #into_result
                        }),
                    ))
                }

                static __NEXTGEN_METRICS: ::nextgen_events::__private::HandlerMetrics =
                    ::nextgen_events::__private::HandlerMetrics::new();

                ::nextgen_events::__private::inventory::submit! {
                    ::nextgen_events::Handler::#register(
                        #event,
                        #handler_name,
                        __nextgen_start,
                    )
                    .with_metrics(&__NEXTGEN_METRICS)
                    .defined_at(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)))
                }
            };
        };
        // The argument's type is checked where it was written: without the backend's cargo
        // feature the error names the feature; with it, a `PgConnection` of another sqlx.
        let check = quote_spanned! {transaction.span()=>
            const _: () = {
                fn __nextgen_transaction() {
                    ::nextgen_events::__private::#check::<#transaction>();
                }
            };
        };
        return quote! {
            #function

            #check

            ::nextgen_events::#wrapper! { #run }
        };
    }

    quote! {
        #function

        const _: () = {
            #first_arg_trait
            #return_trait
            #object_id_check

            fn __nextgen_start(
                event: ::nextgen_events::__private::ErasedEvent,
                context: &::nextgen_events::Context<'_>,
            ) -> ::core::result::Result<
                ::nextgen_events::__private::HandlerFuture,
                ::nextgen_events::HandlerError,
            > {
                #take_event
                #(#rest_args)*
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let result: #return_type = #name(__arg0 #(, #rest_names)*).await;
                    #into_result
                }))
            }

            // Its metric keys, made on its first run: a static, since the registered handler
            // itself must be free of interior mutability.
            static __NEXTGEN_METRICS: ::nextgen_events::__private::HandlerMetrics =
                ::nextgen_events::__private::HandlerMetrics::new();

            ::nextgen_events::__private::inventory::submit! {
                ::nextgen_events::Handler::new(
                    #event,
                    #handler_name,
                    __nextgen_start,
                )
                .with_metrics(&__NEXTGEN_METRICS)
                #object_form
                .defined_at(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)))
                #latest_only
            }
        };
    }
}

/// The trait the first argument must implement: the runtime's `FromEvent<Payload>`, with an
/// error message naming this handler's event type and the type written.
fn first_argument_trait(
    trait_name: &Ident,
    event: &str,
    payload_text: &str,
    first: &Type,
    payload: &TokenStream,
) -> TokenStream {
    let written = escape(&type_text(first));
    let payload_text = escape(payload_text);
    if event == catalog::WILDCARD {
        let message = format!(
            "a `\"*\"` handler cannot take `{written}`: it sees every event, known or not, as JSON"
        );
        let label = "expected `Event<serde_json::Value>` or `Event<Box<RawValue>>`";
        let note = "take `event: Event<serde_json::Value>`, or `event: Event<Box<serde_json::value::RawValue>>` for the object's JSON text without building a `Value` (or either object alone), or name the event type to get a typed payload, as in `#[nextgen_event(\"charge.succeeded\")]` with `charge: Charge`";
        return quote! {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            trait #trait_name: ::core::marker::Sized {
                const __NEXTGEN_FORM: ::nextgen_events::__private::ObjectForm;
                fn __nextgen_take(
                    event: ::nextgen_events::__private::ErasedEvent,
                ) -> ::core::result::Result<Self, ::nextgen_events::HandlerError>;
            }

            #[diagnostic::do_not_recommend]
            impl<T: ::nextgen_events::__private::FromAnyEvent> #trait_name for T {
                const __NEXTGEN_FORM: ::nextgen_events::__private::ObjectForm =
                    <T as ::nextgen_events::__private::FromAnyEvent>::FORM;
                fn __nextgen_take(
                    event: ::nextgen_events::__private::ErasedEvent,
                ) -> ::core::result::Result<Self, ::nextgen_events::HandlerError> {
                    <T as ::nextgen_events::__private::FromAnyEvent>::from_any_event(event)
                }
            }
        };
    }
    let (message, label, note) = {
        let argument = payload_text.to_lowercase();
        (
            format!(
                "a `{event}` handler cannot take `{written}`: the event carries a `{payload_text}`"
            ),
            format!("expected `{payload_text}` or `Event<{payload_text}>`"),
            format!(
                "the event catalog gives each event type one payload type: take it, as in `{argument}: {payload_text}`, or the whole envelope, as in `event: Event<{payload_text}>`"
            ),
        )
    };
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name: ::core::marker::Sized {
            fn __nextgen_take(event: ::nextgen_events::Event<#payload>) -> Self;
        }

        #[diagnostic::do_not_recommend]
        impl<T: ::nextgen_events::__private::FromEvent<#payload>> #trait_name for T {
            fn __nextgen_take(event: ::nextgen_events::Event<#payload>) -> Self {
                <T as ::nextgen_events::__private::FromEvent<#payload>>::from_event(event)
            }
        }
    }
}

/// The trait the return type must implement: the runtime's `IntoHandlerResult`, with an error
/// message naming the type written, and its error type when it is spelt `Result<(), E>`.
fn return_trait(trait_name: &Ident, name: &Ident, output: &syn::ReturnType) -> TokenStream {
    let (message, label, note) = match output {
        syn::ReturnType::Type(_, ty) => match result_error_type(ty) {
            Some(error) => {
                let error = escape(&type_text(error));
                (
                    format!(
                        "the error type of webhook handler `{name}` must implement `Display`, and `{error}` does not"
                    ),
                    format!("`{error}` does not implement `std::fmt::Display`"),
                    "a handler's `Err` is reported by its `Display` text (and answered with 500, so the sender delivers the event again): implement `Display` for it (`thiserror` does), or return `Result<(), String>`, `Result<(), Box<dyn std::error::Error + Send + Sync>>` or `anyhow::Result<()>`".to_owned(),
                )
            }
            None => {
                let written = escape(&type_text(ty));
                (
                    format!("webhook handler `{name}` cannot return `{written}`"),
                    "return `()` or `Result<(), E>` where `E: Display`".to_owned(),
                    "an `Err` is reported and answered with 500, so the sender delivers the event again".to_owned(),
                )
            }
        },
        // `()` always works; the trait is still declared so the expansion is uniform.
        syn::ReturnType::Default => (
            format!("webhook handler `{name}` cannot return `()`"),
            "return `()` or `Result<(), E>` where `E: Display`".to_owned(),
            "this is a bug in nextgen-events, please report it".to_owned(),
        ),
    };
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name {
            fn __nextgen_into_result(
                self,
            ) -> ::core::result::Result<(), ::nextgen_events::HandlerError>;
        }

        #[diagnostic::do_not_recommend]
        impl #trait_name for () {
            fn __nextgen_into_result(
                self,
            ) -> ::core::result::Result<(), ::nextgen_events::HandlerError> {
                ::nextgen_events::__private::IntoHandlerResult::into_handler_result(self)
            }
        }

        #[diagnostic::do_not_recommend]
        impl<E: ::core::fmt::Display> #trait_name for ::core::result::Result<(), E> {
            fn __nextgen_into_result(
                self,
            ) -> ::core::result::Result<(), ::nextgen_events::HandlerError> {
                ::nextgen_events::__private::IntoHandlerResult::into_handler_result(self)
            }
        }
    }
}

/// `E` when `ty` is spelt `Result<(), E>` (any path ending in `Result`).
fn result_error_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter().filter_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(Type::Tuple(unit)), Some(error), None) if unit.elems.is_empty() => Some(error),
        _ => None,
    }
}

/// A type as the user wrote it, spaced the way rustc prints types: `Event<Refund>`, not
/// `Event < Refund >`.
pub(crate) fn type_text(ty: &Type) -> String {
    let mut text = quote!(#ty).to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        ("( )", "()"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// Escapes `{` and `}`, which `on_unimplemented` reads as format arguments.
fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// `charge.dispute.created` -> `ChargeDisputeCreatedPayload`; `*` -> `AnyEventPayload`.
fn payload_trait_name(event: &str) -> String {
    if event == catalog::WILDCARD {
        return "AnyEventPayload".to_owned();
    }
    let mut name = String::new();
    for word in event.split(['.', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    name.push_str("Payload");
    name
}

/// Every identifier in the function's signature.
fn signature_idents(function: &ItemFn) -> HashSet<String> {
    fn walk(tokens: TokenStream, idents: &mut HashSet<String>) {
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => {
                    idents.insert(ident.to_string());
                }
                TokenTree::Group(group) => walk(group.stream(), idents),
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
    let sig = &function.sig;
    let mut idents = HashSet::new();
    walk(quote!(#sig), &mut idents);
    idents
}

/// `name`, with underscores appended until it is not in `taken`.
fn unused_ident(name: &str, taken: &HashSet<String>) -> Ident {
    let mut name = name.to_owned();
    while taken.contains(&name) {
        name.push('_');
    }
    format_ident!("{}", name)
}
