//! Expansion: the function as written, plus its registration with the handler registry.
//!
//! Everything is named through `::nextgen_events`, which re-exports this macro, so users depend
//! on one crate. Type checks are trait bounds spanned on the user's own tokens, so the compiler
//! points at the argument or return type that is wrong, in the words of the traits'
//! `#[diagnostic::on_unimplemented]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::catalog;
use crate::parse::Handler;

pub(crate) fn expand(handler: &Handler<'_>, function: &ItemFn) -> TokenStream {
    let name = &function.sig.ident;
    let event = handler.event.value();
    let payload = match catalog::payload_of(&event) {
        Some(payload) => {
            let payload = format_ident!("{}", payload);
            quote!(::nextgen_events::payloads::#payload)
        }
        None => quote!(::nextgen_events::__private::Value),
    };

    let Some((first, rest)) = handler.arg_types.split_first() else {
        // `check` has already reported a handler without arguments.
        return quote!(#function);
    };
    let first_arg = quote_spanned! {first.span()=>
        <#first as ::nextgen_events::__private::FromEvent<#payload>>::from_event(event)
    };
    let rest_names: Vec<_> = (1..=rest.len())
        .map(|i| format_ident!("__arg{}", i))
        .collect();
    let rest_args = rest.iter().zip(&rest_names).map(|(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg = <#ty as ::nextgen_events::FromContext>::from_context(context)?;
        }
    });
    let (return_type, return_span) = handler.return_type();
    let into_result = quote_spanned! {return_span=>
        <#return_type as ::nextgen_events::__private::IntoHandlerResult>::into_handler_result(result)
    };

    quote! {
        #function

        const _: () = {
            fn __nextgen_start(
                event: ::nextgen_events::__private::ErasedEvent,
                context: &::nextgen_events::Context<'_>,
            ) -> ::core::result::Result<
                ::nextgen_events::__private::HandlerFuture,
                ::nextgen_events::HandlerError,
            > {
                let event = ::nextgen_events::__private::downcast::<#payload>(event)?;
                let __arg0 = #first_arg;
                #(#rest_args)*
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let result: #return_type = #name(__arg0 #(, #rest_names)*).await;
                    #into_result
                }))
            }

            ::nextgen_events::__private::inventory::submit! {
                ::nextgen_events::Handler::new(
                    #event,
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    __nextgen_start,
                )
            }
        };
    }
}
