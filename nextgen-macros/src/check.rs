//! Checks: what can be known about a handler from its tokens, against the event catalog.
//!
//! Type checks (is the first argument the event's payload, is the return type acceptable) are
//! left to the compiler through trait bounds in the expansion: comparing token text would reject
//! aliases and re-imports that are perfectly right.

use syn::spanned::Spanned;

use crate::catalog;
use crate::parse::{Backend, Handler};

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
    if let Some(name) = &handler.name {
        errors.extend(check_name(name));
    }
    if let Some(latest_only) = &handler.latest_only {
        errors.extend(check_latest_only(latest_only, &event));
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
    errors.extend(check_transactions(handler, &event));
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
            None => "`event: Event<serde_json::Value>` or `event: Event<Box<RawValue>>`".to_owned(),
        };
        errors.push(syn::Error::new(
            handler.args_span,
            format!("a webhook handler takes the event as its first argument: add {example}"),
        ));
    }
    crate::errors::combine(errors)
}

/// `name = "..."`: the runtime's idempotency key for the handler, so it must be something a
/// store can key by (the in-memory store joins it to the event id with a NUL).
fn check_name(name: &syn::LitStr) -> Option<syn::Error> {
    let value = name.value();
    let is_bad = |c: char| c.is_whitespace() || c.is_control();
    let words: Vec<&str> = value
        .split(is_bad)
        .filter(|word| !word.is_empty())
        .collect();
    if words.is_empty() {
        let what = if value.is_empty() { "empty" } else { "blank" };
        return Some(syn::Error::new(
            name.span(),
            format!(
                "the handler name cannot be {what}: write one that stays the same when the code moves, as in `name = \"ledger.book_charge\"`, or remove `name` to use the function's path"
            ),
        ));
    }
    let bad = value.chars().find(|c| is_bad(*c))?;
    let found = match bad {
        ' ' => "a space".to_owned(),
        c => format!("'{}'", c.escape_debug()),
    };
    Some(syn::Error::new(
        name.span(),
        format!(
            "the handler name cannot contain whitespace or control characters, and this one has {found}: write `name = {:?}`",
            words.join("_")
        ),
    ))
}

/// `latest_only` keys the newest state by `data.object.id`: the event's payload must have one.
fn check_latest_only(latest_only: &syn::Ident, event: &str) -> Option<syn::Error> {
    let message = if event == catalog::WILDCARD {
        "`latest_only` cannot be used on a `\"*\"` handler: it keeps the newest state per object of one event type, and `\"*\"` sees every event, some without an object id; name the event type, as in `#[nextgen_event(\"customer.updated\", latest_only)]`, or remove `latest_only`".to_owned()
    } else {
        // An unknown event type is reported on its own.
        let payload = catalog::payload_of(event)?;
        if catalog::has_object_id(payload) {
            return None;
        }
        format!(
            "`latest_only` cannot be used on `{event}`: its payload `{payload}` has no `id` to tell its objects apart; remove `latest_only`, and compare the event's `created` with the state you keep in the handler"
        )
    };
    Some(syn::Error::new(latest_only.span(), message))
}

/// The catalog's event families, as `` `charge.*`, `customer.*` and `refund.*` ``, in catalog order.
fn families() -> String {
    let mut families: Vec<String> = Vec::new();
    for (name, _) in catalog::EVENTS {
        let family = name.rsplit_once('.').map_or(*name, |(family, _)| family);
        let family = format!("`{family}.*`");
        if !families.contains(&family) {
            families.push(family);
        }
    }
    crate::errors::and_list(&families)
}

/// What a handler that takes the app's transaction must look like: one `&mut PgConnection`
/// (or `&mut SqliteTx`), after the event, on a handler of one event type without
/// `latest_only`.
fn check_transactions(handler: &Handler<'_>, event: &str) -> Vec<syn::Error> {
    const SHAPE: &str = "`async fn book(charge: Charge, tx: &mut PgConnection) -> Result<(), E>`";
    let mut errors = Vec::new();
    for ty in &handler.arg_types {
        let misused = match ty {
            syn::Type::Reference(reference) if reference.mutability.is_none() => {
                crate::parse::names_transaction(&reference.elem)
            }
            syn::Type::Reference(reference) if transaction_type(&reference.elem) => {
                Some(Backend::Postgres)
            }
            syn::Type::Reference(_) => None,
            other if transaction_type(other) => Some(Backend::Postgres),
            other => crate::parse::names_transaction(other),
        };
        let instead = match misused {
            Some(Backend::Postgres) => format!(
                "a handler takes the app's transaction as `&mut PgConnection`: the library begins it, writes the done marker in it and commits it (or rolls it back on an `Err` or a panic); write {SHAPE}"
            ),
            Some(Backend::Sqlite) => "a handler takes its SQLite writes as `&mut SqliteTx`: it queues them there, and the library applies them with the done marker in one transaction; write `tx: &mut SqliteTx`".to_owned(),
            None => continue,
        };
        errors.push(syn::Error::new_spanned(ty, instead));
    }
    let mut positions = handler.transactions.iter();
    let Some(&(first, _)) = positions.next() else {
        return errors;
    };
    for &(again, _) in positions {
        errors.push(syn::Error::new_spanned(
            handler.arg_types[again],
            format!(
                "a handler takes one transaction, and this one already takes `{}`: its writes and its done marker go into that one; remove this argument",
                crate::expand::type_text(handler.arg_types[first])
            ),
        ));
    }
    let at = handler.arg_types[first];
    if first == 0 {
        errors.push(syn::Error::new_spanned(
            at,
            format!("the event comes first, then the transaction: write {SHAPE}"),
        ));
    }
    if event == catalog::WILDCARD {
        errors.push(syn::Error::new_spanned(
            at,
            "a `\"*\"` handler cannot take a transaction: name the event type, as in `#[nextgen_event(\"charge.succeeded\")]`, or write the `*` handler's effects idempotently (keyed by the event id)",
        ));
    }
    if let Some(latest_only) = &handler.latest_only {
        errors.push(syn::Error::new(
            latest_only.span(),
            "a `latest_only` handler cannot take a transaction yet (its watermark is not written in it): remove `latest_only` and compare the event's `created` with the state your tables keep, in the transaction, or take the transaction out",
        ));
    }
    errors
}

/// Whether `ty` is sqlx's `Transaction<..>`, which a handler should not take itself.
fn transaction_type(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Transaction"),
        _ => false,
    }
}
