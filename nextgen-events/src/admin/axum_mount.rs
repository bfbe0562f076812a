//! The inbox page mounted in axum: [`inbox_page`](crate::axum::inbox_page).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Method as HttpMethod, StatusCode};
use axum::response::Response;
use axum::routing::any;

use super::{InboxPage, Method, PageAccess, PageRequest, PageSource, SECURITY_HEADERS};

/// The largest form an action posts (a page's selection of ids is far smaller).
const FORM_LIMIT: usize = 256 * 1024;

/// Mounts the inbox page at `path` (its overview; the entries, an entry and the actions
/// under it) for `source`'s inbox, each request decided by `access`, the app's own rule, from
/// the request's parts (its headers, and the extensions an authentication layer put there;
/// see [`admin`](crate::admin)). Merge the router into the app's.
///
/// # Panics
///
/// When `source` has no inbox to show (an [`Endpoint`](crate::Endpoint) outside inbox mode)
/// or `path` is not an absolute path: the app stops at start-up with a message naming the
/// fix ([`PageError`](crate::admin::PageError)).
///
/// ```
/// use axum::Router;
/// use axum::http::request::Parts;
/// use nextgen_events::axum::inbox_page;
/// use nextgen_events::admin::PageAccess;
/// # use nextgen_events::inbox::InboxOperator;
///
/// #[derive(Clone)]
/// struct User(String);
///
/// fn on_call(request: &Parts) -> PageAccess {
///     // What the app's authentication layer found.
///     match request.extensions.get::<User>() {
///         Some(User(name)) => PageAccess::read_only(name.clone()),
///         None => PageAccess::Deny,
///     }
/// }
///
/// # fn app(inbox: std::sync::Arc<dyn InboxOperator>) {
/// let app: Router = Router::new().merge(inbox_page("/webhooks/inbox", inbox, on_call));
/// # }
/// ```
pub fn inbox_page<S, A>(path: &str, source: impl PageSource, access: A) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    A: Fn(&Parts) -> PageAccess + Send + Sync + 'static,
{
    let page = match InboxPage::new(path, source) {
        Ok(page) => page,
        Err(error) => panic!("cannot mount the inbox page at `{path}`: {error}"),
    };
    let mount = page.mount().to_owned();
    let mounted = Arc::new((page, access));
    let serve = move |request: Request| {
        let mounted = Arc::clone(&mounted);
        async move {
            let (page, access) = &*mounted;
            serve(page, access, request).await
        }
    };
    let (overview, below) = if mount.is_empty() {
        ("/".to_owned(), "/{*rest}".to_owned())
    } else {
        (mount.clone(), format!("{mount}/{{*rest}}"))
    };
    Router::new()
        .route(&overview, any(serve.clone()))
        .route(&below, any(serve))
}

async fn serve<A>(page: &InboxPage, access: &A, request: Request) -> Response
where
    A: Fn(&Parts) -> PageAccess,
{
    let (parts, body) = request.into_parts();
    let access = access(&parts);
    let Ok(body) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return status_only(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .or_else(|| parts.uri.authority().map(|authority| authority.as_str()));
    let method = match parts.method {
        HttpMethod::GET | HttpMethod::HEAD => Method::Get,
        HttpMethod::POST => Method::Post,
        _ => Method::Other,
    };
    let path = parts.uri.path();
    let page_request = PageRequest {
        method,
        path: path.strip_prefix(page.mount()).unwrap_or(path),
        query: parts.uri.query().unwrap_or(""),
        body: &body,
        host,
        origin: header("origin"),
        sec_fetch_site: header("sec-fetch-site"),
        cookie: header("cookie"),
    };
    let answer = page.respond(&page_request, &access).await;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in SECURITY_HEADERS {
        response = response.header(name, value);
    }
    response = response.header("content-security-policy", answer.content_security_policy);
    if let Some(cookie) = answer.set_cookie {
        response = response.header("set-cookie", cookie);
    }
    response
        .body(Body::from(answer.body))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR))
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
