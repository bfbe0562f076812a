//! One request to the inbox page and its answer, as the actix and axum mounts hand them over.

/// The request's method, as far as the page tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Other,
}

/// A request to the page: the part of its path under the mount, its query, its form body and
/// the headers the page reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest<'a> {
    pub(crate) method: Method,
    /// The path after the mount's own (`""`, `"/entries"`...).
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    /// An `application/x-www-form-urlencoded` body (a POST's form).
    pub(crate) body: &'a [u8],
    pub(crate) host: Option<&'a str>,
    pub(crate) origin: Option<&'a str>,
    pub(crate) sec_fetch_site: Option<&'a str>,
    /// The whole `Cookie` header.
    pub(crate) cookie: Option<&'a str>,
}

impl PageRequest<'_> {
    /// The query's values for `name`, in order.
    pub(crate) fn query_values(&self, name: &str) -> Vec<String> {
        values(self.query.as_bytes(), name)
    }

    /// The query's first non-empty value for `name`.
    pub(crate) fn query_value(&self, name: &str) -> Option<String> {
        first(self.query.as_bytes(), name)
    }

    /// The form's values for `name`, in order.
    pub(crate) fn form_values(&self, name: &str) -> Vec<String> {
        values(self.body, name)
    }

    /// The form's first non-empty value for `name`.
    pub(crate) fn form_value(&self, name: &str) -> Option<String> {
        first(self.body, name)
    }

    /// The value of the cookie `name`.
    pub(crate) fn cookie_value(&self, name: &str) -> Option<&str> {
        self.cookie?.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
    }
}

fn values(encoded: &[u8], name: &str) -> Vec<String> {
    form_urlencoded::parse(encoded)
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

fn first(encoded: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(key, value)| key == name && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_owned())
}

/// The page's answer: a status, an HTML body and, on the first visit, the cookie that the
/// forms' token is bound to. Every answer carries the same security headers
/// ([`SECURITY_HEADERS`] and the content security policy).
#[derive(Debug, Clone)]
pub(crate) struct PageResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) set_cookie: Option<String>,
    pub(crate) content_security_policy: &'static str,
}

/// The headers of every answer but the content security policy: no framing (clickjacking a
/// replay button), no sniffing, no caching of what an inbox holds, no referrer to another site
/// (an event id in an address stays here). Same-origin referrers stay: under `no-referrer`
/// a browser sends a form's POST with `Origin: null`, which the cross-site check refuses.
pub(crate) const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/html; charset=utf-8"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
    ("referrer-policy", "same-origin"),
];

/// Encodes `value` for a query string.
pub(crate) fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
