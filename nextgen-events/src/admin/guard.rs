//! The page's defence against cross-site requests: a token that must match a cookie, and the
//! request's own word on where it comes from.
//!
//! Every form carries `token`, the value of the browser's `nextgen_inbox_csrf` cookie (a
//! random nonce set on the first visit, `SameSite=Strict`, `HttpOnly`). Another site can
//! neither read the cookie nor send it, so it cannot forge an action (a double-submit token:
//! nothing is kept on the server, so every replica takes every form). A POST must also not
//! come from elsewhere: its `Origin` (when sent) names this host, and its `Sec-Fetch-Site`
//! (when sent) says `same-origin`, which also stops a sibling subdomain that set the cookie.

use sha2::Digest as _;
use subtle::ConstantTimeEq;

use super::request::PageRequest;

/// The cookie the forms' token must match.
pub(crate) const COOKIE: &str = "nextgen_inbox_csrf";

/// A nonce's length in hex digits.
const NONCE_HEX: usize = 64;

/// Why a POST was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(
        "the form carries no token, or this browser has no `{COOKIE}` cookie: open the page again and submit its form"
    )]
    NoToken,
    #[error(
        "the form's token does not belong to this browser's `{COOKIE}` cookie: open the page again and submit its form"
    )]
    WrongToken,
    #[error("the request comes from another origin (`{0}`): actions are taken only from this page")]
    OtherOrigin(String),
    #[error(
        "the request comes from another site (Sec-Fetch-Site: `{0}`): actions are taken only from this page"
    )]
    OtherSite(String),
}

/// The browser's nonce, and the `Set-Cookie` value that gives it one when it has none: the
/// token of the forms served with this answer.
pub(crate) fn nonce(request: &PageRequest<'_>, mount: &str) -> (String, Option<String>) {
    match request.cookie_value(COOKIE) {
        Some(nonce) if nonce.len() == NONCE_HEX && const_hex::decode(nonce).is_ok() => {
            (nonce.to_owned(), None)
        }
        _ => {
            let nonce = const_hex::encode(random_bytes());
            let path = if mount.is_empty() { "/" } else { mount };
            let cookie = format!("{COOKIE}={nonce}; Path={path}; HttpOnly; SameSite=Strict");
            (nonce, Some(cookie))
        }
    }
}

/// Checks that a POST comes from this page, in this browser.
pub(crate) fn check(request: &PageRequest<'_>) -> Result<(), Refusal> {
    if let Some(site) = request.sec_fetch_site
        && site != "same-origin"
    {
        return Err(Refusal::OtherSite(site.to_owned()));
    }
    if let Some(origin) = request.origin {
        let authority = origin.split_once("://").map(|(_, authority)| authority);
        if authority.is_none() || authority != request.host {
            return Err(Refusal::OtherOrigin(origin.to_owned()));
        }
    }
    let nonce = request.cookie_value(COOKIE).ok_or(Refusal::NoToken)?;
    let token = request.form_value("token").ok_or(Refusal::NoToken)?;
    if nonce.len() == NONCE_HEX && bool::from(nonce.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without system randomness the nonce is still unguessable enough from another site
        // for its purpose: the Origin check stands beside it.
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &bytes);
        bytes = sha2::Sha256::digest(seed.as_bytes()).into();
    }
    bytes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::admin::request::{Method, PageRequest};

    fn post<'a>(cookie: Option<&'a str>, body: &'a [u8]) -> PageRequest<'a> {
        PageRequest {
            method: Method::Post,
            path: "/replay",
            query: "",
            body,
            host: Some("127.0.0.1:8080"),
            origin: Some("http://127.0.0.1:8080"),
            sec_fetch_site: Some("same-origin"),
            cookie,
        }
    }

    #[test]
    fn a_token_is_taken_only_with_its_own_cookie_and_from_this_origin() {
        let nonce = "ab".repeat(32);
        let cookie = format!("theme=dark; {COOKIE}={nonce}");
        let body = format!("token={nonce}&id=evt_1");
        assert_eq!(check(&post(Some(&cookie), body.as_bytes())), Ok(()));

        let other = format!("{COOKIE}={}", "cd".repeat(32));
        assert_eq!(
            check(&post(Some(&other), body.as_bytes())),
            Err(Refusal::WrongToken)
        );
        assert_eq!(check(&post(None, body.as_bytes())), Err(Refusal::NoToken));
        assert_eq!(
            check(&post(Some(&cookie), b"id=evt_1")),
            Err(Refusal::NoToken)
        );

        let mut elsewhere = post(Some(&cookie), body.as_bytes());
        elsewhere.origin = Some("https://evil.example");
        assert!(matches!(check(&elsewhere), Err(Refusal::OtherOrigin(_))));
        let mut cross = post(Some(&cookie), body.as_bytes());
        cross.sec_fetch_site = Some("cross-site");
        assert!(matches!(check(&cross), Err(Refusal::OtherSite(_))));
    }

    #[test]
    fn a_browser_without_a_nonce_is_given_one_and_keeps_it() {
        let request = post(None, b"");
        let (nonce, cookie) = nonce(&request, "/webhooks/inbox");
        let cookie = cookie.unwrap();
        assert_eq!(nonce.len(), NONCE_HEX);
        assert!(
            cookie.contains("Path=/webhooks/inbox; HttpOnly; SameSite=Strict"),
            "{cookie}"
        );
        let header = format!("{COOKIE}={nonce}");
        let again = post(Some(&header), b"");
        assert_eq!(super::nonce(&again, "/webhooks/inbox"), (nonce, None));
    }
}
