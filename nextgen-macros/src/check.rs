//! Checks: what can be known about a handler from its tokens, against the event catalog.
//!
//! Type checks (is the first argument the event's payload, is the return type acceptable) are
//! left to the compiler through trait bounds in the expansion: comparing token text would reject
//! aliases and re-imports that are perfectly right.

use syn::spanned::Spanned;

use crate::catalog;
use crate::parse::Handler;

/// Every problem found, combined into one error so the user sees them all at once.
pub(crate) fn check(handler: &Handler<'_>) -> syn::Result<()> {
    let mut errors = Vec::new();
    let sig = &handler.function.sig;

    let event = handler.event.value();
    if event != catalog::WILDCARD && catalog::payload_of(&event).is_none() {
        let message = match catalog::suggest(&event) {
            Some(close) => format!("unknown event type `{event}`: did you mean `{close}`?"),
            None => format!(
                "unknown event type `{event}`: use one of the catalog's event types (see `nextgen_events::catalog::event_types`), or \"*\" for every event"
            ),
        };
        errors.push(syn::Error::new(handler.event.span(), message));
    }
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "a webhook handler must be an `async fn`: write `async fn {}(...)`",
                sig.ident
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span(),
            "a webhook handler cannot be a `const fn`: remove `const`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a webhook handler cannot be generic: its argument types come from the event type; remove the generic parameters",
        ));
    }
    for ty in &handler.arg_types {
        if let syn::Type::ImplTrait(impl_trait) = ty {
            errors.push(syn::Error::new_spanned(
                impl_trait,
                "a webhook handler cannot take `impl Trait` arguments: name the type, such as `Charge` or `web::Data<Db>`",
            ));
        }
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a webhook handler cannot be variadic",
        ));
    }
    if handler.arg_types.is_empty() && sig.receiver().is_none() {
        let example = match catalog::payload_of(&event) {
            Some(payload) => format!(
                "`{}: {payload}` or `event: Event<{payload}>`",
                payload.to_lowercase()
            ),
            None => "`event: Event<serde_json::Value>`".to_owned(),
        };
        errors.push(syn::Error::new(
            handler.args_span,
            format!("a webhook handler takes the event as its first argument: add {example}"),
        ));
    }
    combine(errors)
}

/// Folds several errors into one, or `Ok` when there are none.
pub(crate) fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    errors
        .into_iter()
        .reduce(|mut all, error| {
            all.combine(error);
            all
        })
        .map_or(Ok(()), Err)
}
