//! Parsing: the attribute's tokens and the annotated function into our own model.

use proc_macro2::{Ident, Spacing, Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Token, Type};

/// What `#[nextgen_event("...")] async fn ...` says, in our terms.
pub(crate) struct Handler<'a> {
    /// The event type literal, spanned for errors.
    pub event: LitStr,
    /// `name = "..."`: the handler's name, in place of the function's path.
    pub name: Option<LitStr>,
    /// `latest_only`: the flag's token, spanned for errors.
    pub latest_only: Option<Ident>,
    /// The annotated function.
    pub function: &'a ItemFn,
    /// The argument types, in order; the first is the payload.
    pub arg_types: Vec<&'a Type>,
    /// Where to point when the function has no arguments.
    pub args_span: Span,
    /// The positions in `arg_types` of the arguments that take the app's transaction
    /// (`&mut PgConnection`, `&mut SqliteTx`), with its backend.
    pub transactions: Vec<(usize, Backend)>,
}

/// The database of a transaction a handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `&mut PgConnection`.
    Postgres,
    /// `&mut SqliteTx`.
    Sqlite,
}

/// The backend of `ty` when it is `&mut PgConnection` or `&mut SqliteTx` (by any path): the
/// app's transaction.
pub(crate) fn transaction_of(ty: &Type) -> Option<Backend> {
    match ty {
        Type::Reference(reference) if reference.mutability.is_some() => {
            names_transaction(&reference.elem)
        }
        _ => None,
    }
}

/// The backend of `ty` when it is a path ending in `PgConnection` or `SqliteTx`.
pub(crate) fn names_transaction(ty: &Type) -> Option<Backend> {
    match ty {
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            if !last.arguments.is_empty() {
                return None;
            }
            match last.ident.to_string().as_str() {
                "PgConnection" => Some(Backend::Postgres),
                "SqliteTx" => Some(Backend::Sqlite),
                _ => None,
            }
        }
        Type::Paren(inner) => names_transaction(&inner.elem),
        _ => None,
    }
}

/// The attribute: `"event.type"`, then any of [`ARGUMENTS`], comma-separated, in any order.
struct Attribute {
    event: LitStr,
    arguments: Arguments,
}

/// The arguments after the event type, as far as they are parsed.
#[derive(Default)]
struct Arguments {
    name: Option<LitStr>,
    latest_only: Option<Ident>,
}

/// The arguments accepted after the event type: the key, and how error messages spell it.
///
/// A new argument is a row here, a field in [`Arguments`] and an arm in [`argument`].
const ARGUMENTS: &[(&str, &str)] = &[
    ("name", "`name = \"...\"`"),
    ("latest_only", "`latest_only`"),
];

/// An example of the whole attribute, for error messages.
const EXAMPLE: &str = "`#[nextgen_event(\"charge.succeeded\", name = \"ledger.book_charge\")]`";

impl Parse for Attribute {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            // `input.error` would start with "unexpected end of input"; the attribute itself is
            // the place to point at.
            return Err(syn::Error::new(
                Span::call_site(),
                "missing event type: write `#[nextgen_event(\"charge.succeeded\")]`, or `#[nextgen_event(\"*\")]` for every event",
            ));
        }
        // Each argument's error is collected and parsing goes on at the next comma, so every
        // mistake in the attribute is reported at once.
        let event = event_type(input);
        let mut arguments = Arguments::default();
        let mut errors = Vec::new();
        let mut after_event = true;
        while !input.is_empty() {
            if !input.peek(Token![,]) {
                let several_events = after_event && input.peek(LitStr);
                let rest = until_comma(input)?;
                errors.push(if several_events {
                    several_events_error(rest)
                } else {
                    syn::Error::new_spanned(
                        rest,
                        format!(
                            "unexpected tokens: separate the attribute's arguments with commas, as in {EXAMPLE}"
                        ),
                    )
                });
                continue;
            }
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break; // a trailing comma
            }
            if let Err(error) = argument(input, &mut arguments, after_event) {
                errors.push(error);
                until_comma(input)?;
            }
            after_event = false;
        }
        match event {
            Ok(event) => crate::errors::combine(errors).map(|()| Attribute { event, arguments }),
            Err(mut error) => {
                for other in errors {
                    error.combine(other);
                }
                Err(error)
            }
        }
    }
}

/// The event type: a string literal, first. On error, skips to the next comma.
fn event_type(input: ParseStream) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let tokens = until_comma(input)?;
    let unquoted = match path_text(&tokens) {
        Some(path) if path.contains('.') => Some(path),
        _ if tokens.to_string() == "*" => Some("*".to_owned()),
        _ => None,
    };
    let first = tokens
        .clone()
        .into_iter()
        .next()
        .map(|token| token.to_string());
    let message = if let Some(unquoted) = unquoted {
        // `charge.succeeded` or `*` unquoted: suggest the same, quoted.
        format!("the event type must be a string literal: write `#[nextgen_event(\"{unquoted}\")]`")
    } else if ARGUMENTS
        .iter()
        .any(|(key, _)| first.as_deref() == Some(key))
    {
        // `#[nextgen_event(name = "...")]`: the event type was left out.
        format!("missing event type: it comes first, as in {EXAMPLE}")
    } else {
        "the event type must be a string literal, as in `#[nextgen_event(\"charge.succeeded\")]`"
            .to_owned()
    };
    Err(syn::Error::new_spanned(tokens, message))
}

/// One argument after the event type, such as `name = "..."`.
fn argument(input: ParseStream, arguments: &mut Arguments, after_event: bool) -> syn::Result<()> {
    if after_event && input.peek(LitStr) {
        return Err(several_events_error(until_comma(input)?));
    }
    if !input.peek(Ident::peek_any) {
        let accepted: Vec<&str> = ARGUMENTS.iter().map(|(_, spelt)| *spelt).collect();
        return Err(syn::Error::new_spanned(
            until_comma(input)?,
            format!(
                "unexpected tokens after the event type: the attribute accepts {}, as in {EXAMPLE}",
                crate::errors::and_list(&accepted)
            ),
        ));
    }
    let key = Ident::parse_any(input)?;
    match key.to_string().as_str() {
        "name" => {
            let value = string_value(input, &key)?;
            if let Some(first) = &arguments.name {
                return Err(syn::Error::new_spanned(
                    quote::quote!(#key = #value),
                    format!(
                        "`name` is given twice: a handler has one name, and it is already `name = {}`; remove one",
                        first.token()
                    ),
                ));
            }
            arguments.name = Some(value);
        }
        "latest_only" => {
            if !input.is_empty() && !input.peek(Token![,]) {
                let rest = until_comma(input)?;
                return Err(syn::Error::new_spanned(
                    quote::quote!(#key #rest),
                    "`latest_only` takes no value: write `latest_only` alone, as in `#[nextgen_event(\"customer.updated\", latest_only)]`",
                ));
            }
            if arguments.latest_only.is_some() {
                return Err(syn::Error::new(
                    key.span(),
                    "`latest_only` is given twice: write it once, as in `#[nextgen_event(\"customer.updated\", latest_only)]`",
                ));
            }
            arguments.latest_only = Some(key);
        }
        _ => return Err(unknown_argument(&key)),
    }
    Ok(())
}

/// The string after `key =`, as in `name = "ledger.book_charge"`.
fn string_value(input: ParseStream, key: &Ident) -> syn::Result<LitStr> {
    let example = format!("`{key} = \"ledger.book_charge\"`");
    if !input.peek(Token![=]) {
        let rest = until_comma(input)?;
        // `name: "..."` or `name("...")`: keep the string the user wrote.
        let written = match rest.clone().into_iter().last() {
            Some(TokenTree::Group(group)) => syn::parse2::<LitStr>(group.stream()).ok(),
            Some(last) => syn::parse2::<LitStr>(last.into()).ok(),
            None => None,
        };
        let instead = match written {
            Some(written) => format!("`{key} = {}`", written.token()),
            None => example,
        };
        return Err(syn::Error::new_spanned(
            quote::quote!(#key #rest),
            format!("`{key}` needs a string value: write {instead}"),
        ));
    }
    let eq: Token![=] = input.parse()?;
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new_spanned(
            quote::quote!(#key #eq),
            format!("`{key}` needs a string value: write {example}"),
        ));
    }
    if input.peek(LitStr) {
        return input.parse();
    }
    let tokens = until_comma(input)?;
    let message = if let Some(written) = path_text(&tokens) {
        // `name = ledger.book_charge`: suggest the same, quoted.
        format!("`{key}` must be a string literal: write `{key} = \"{written}\"`")
    } else {
        format!("`{key}` must be a string literal, as in {example}")
    };
    Err(syn::Error::new_spanned(tokens, message))
}

/// An argument key that is not in [`ARGUMENTS`]: what is accepted, and the closest key.
fn unknown_argument(key: &Ident) -> syn::Error {
    let written = key.to_string();
    let accepted: Vec<&str> = ARGUMENTS.iter().map(|(_, spelt)| *spelt).collect();
    let accepted = crate::errors::and_list(&accepted);
    let message = match crate::errors::closest(&written, ARGUMENTS.iter().map(|(key, _)| *key)) {
        Some(close) => format!(
            "unknown argument `{written}`: did you mean `{close}`? After the event type, the attribute accepts {accepted}"
        ),
        None => format!(
            "unknown argument `{written}`: after the event type, the attribute accepts {accepted}, as in {EXAMPLE}"
        ),
    };
    syn::Error::new(key.span(), message)
}

/// A second string after the event type.
fn several_events_error(tokens: TokenStream) -> syn::Error {
    syn::Error::new_spanned(
        tokens,
        "a handler takes one event type: for several events, write one handler each, as in `#[nextgen_event(\"charge.succeeded\")]`",
    )
}

/// `charge.succeeded`, `some_ident`, `a::b` written unquoted: the text a user meant to quote,
/// when the tokens are identifiers joined by `.` or `::`.
fn path_text(tokens: &TokenStream) -> Option<String> {
    let mut text = String::new();
    let mut expect_ident = true;
    for token in tokens.clone() {
        match token {
            TokenTree::Ident(ident) if expect_ident => {
                text.push_str(&ident.to_string());
                expect_ident = false;
            }
            TokenTree::Punct(punct) if !expect_ident && matches!(punct.as_char(), '.' | ':') => {
                text.push(punct.as_char());
                expect_ident = punct.spacing() == Spacing::Alone;
            }
            _ => return None,
        }
    }
    (!expect_ident).then_some(text)
}

/// The tokens up to the next top-level comma (not consumed), or the end.
fn until_comma(input: ParseStream) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<TokenTree>()?]);
    }
    Ok(tokens)
}

impl<'a> Handler<'a> {
    pub(crate) fn parse(args: TokenStream, function: &'a ItemFn) -> syn::Result<Self> {
        let attribute = syn::parse2::<Attribute>(args);
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
        let attribute = match attribute {
            Ok(attribute) => attribute,
            Err(mut error) => {
                for other in errors {
                    error.combine(other);
                }
                return Err(error);
            }
        };
        crate::errors::combine(errors)?;
        let transactions = arg_types
            .iter()
            .enumerate()
            .filter_map(|(position, ty)| Some((position, transaction_of(ty)?)))
            .collect();
        Ok(Handler {
            event: attribute.event,
            name: attribute.arguments.name,
            latest_only: attribute.arguments.latest_only,
            function,
            arg_types,
            args_span: function.sig.paren_token.span.join(),
            transactions,
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
