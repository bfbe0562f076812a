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
                "unknown event type `{event}`: the catalog has {} events (see `nextgen_events::catalog::event_types`); use \"*\" to receive every event, known or not",
                families()
            ),
        };
        errors.push(syn::Error::new(handler.event.span(), message));
    }
    match (&sig.constness, &sig.asyncness) {
        (None, Some(_)) => {}
        (None, None) => errors.push(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "a webhook handler must be an `async fn`: write `async fn {}(...)`",
                sig.ident
            ),
        )),
        (Some(constness), None) => errors.push(syn::Error::new(
            constness.span(),
            format!(
                "a webhook handler must be an `async fn`, not a `const fn`: write `async fn {}(...)`",
                sig.ident
            ),
        )),
        // rustc reports `const async fn` itself ("functions cannot be both `const` and
        // `async`"), on the function we emit either way: a second error would only repeat it.
        (Some(_), Some(_)) => {}
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a webhook handler cannot be generic: its argument types come from the event type; remove the generic parameters",
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "a webhook handler cannot have a `where` clause: its argument types come from the event type; remove it",
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

/// The catalog's event families, as `` `charge.*`, `customer.*` and `refund.*` ``, in catalog order.
fn families() -> String {
    let mut families: Vec<&str> = Vec::new();
    for (name, _) in catalog::EVENTS {
        let family = name.rsplit_once('.').map_or(*name, |(family, _)| family);
        if !families.contains(&family) {
            families.push(family);
        }
    }
    let mut text = String::new();
    for (index, family) in families.iter().enumerate() {
        if index > 0 {
            text.push_str(if index + 1 == families.len() {
                " and "
            } else {
                ", "
            });
        }
        text.push_str(&format!("`{family}.*`"));
    }
    text
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
