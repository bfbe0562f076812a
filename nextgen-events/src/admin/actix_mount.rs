//! The inbox page mounted in actix-web: [`inbox_page`](crate::actix::inbox_page).

use std::sync::Arc;

use actix_web::http::{Method as HttpMethod, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{InboxPage, Method, PageAccess, PageRequest, PageSource, SECURITY_HEADERS};

/// The page and the app's access function, shared by the apps actix builds per thread.
struct Mounted {
    page: InboxPage,
    access: Box<dyn Fn(&HttpRequest) -> PageAccess + Send + Sync>,
}

/// Mounts the inbox page at `path` (its overview; the entries, an entry and the actions
/// under it) for `source`'s inbox, each request decided by `access`, the app's own rule
/// (see [`admin`](crate::admin)).
///
/// # Panics
///
/// When `source` has no inbox to show (an [`Endpoint`](crate::Endpoint) outside inbox mode)
/// or `path` is not an absolute path: the app stops at start-up with a message naming the
/// fix ([`PageError`](crate::admin::PageError)).
///
/// ```
/// use actix_web::{App, HttpRequest};
/// use nextgen_events::actix::inbox_page;
/// use nextgen_events::admin::PageAccess;
/// # use nextgen_events::inbox::InboxOperator;
///
/// fn on_call(request: &HttpRequest) -> PageAccess {
///     // The app's own session or proxy header decides.
///     match request.headers().get("x-on-call") {
///         Some(_) => PageAccess::full("on call"),
///         None => PageAccess::Deny,
///     }
/// }
///
/// # fn app(inbox: std::sync::Arc<dyn InboxOperator>) {
/// let app = App::new().configure(inbox_page("/webhooks/inbox", inbox, on_call));
/// # }
/// ```
pub fn inbox_page<A>(
    path: &str,
    source: impl PageSource,
    access: A,
) -> impl FnOnce(&mut web::ServiceConfig)
where
    A: Fn(&HttpRequest) -> PageAccess + Send + Sync + 'static,
{
    let page = match InboxPage::new(path, source) {
        Ok(page) => page,
        Err(error) => panic!("cannot mount the inbox page at `{path}`: {error}"),
    };
    let mounted = web::Data::from(Arc::new(Mounted {
        page,
        access: Box::new(access),
    }));
    move |service: &mut web::ServiceConfig| {
        let scope = mounted.page.mount().to_owned();
        service.service(
            web::scope(&scope)
                .app_data(mounted)
                .default_service(web::to(serve)),
        );
    }
}

async fn serve(request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let Some(mounted) = request.app_data::<web::Data<Mounted>>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let access = (mounted.access)(&request);
    let host = request.connection_info().host().to_owned();
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let method = match *request.method() {
        HttpMethod::GET | HttpMethod::HEAD => Method::Get,
        HttpMethod::POST => Method::Post,
        _ => Method::Other,
    };
    let page_request = PageRequest {
        method,
        path: request.match_info().unprocessed(),
        query: request.query_string(),
        body: &body,
        host: Some(&host),
        origin: header("origin"),
        sec_fetch_site: header("sec-fetch-site"),
        cookie: header("cookie"),
    };
    let answer = mounted.page.respond(&page_request, &access).await;
    let mut response = HttpResponse::build(
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for header in SECURITY_HEADERS {
        response.insert_header(header);
    }
    response.insert_header(("content-security-policy", answer.content_security_policy));
    if let Some(cookie) = answer.set_cookie {
        response.insert_header(("set-cookie", cookie));
    }
    response.body(answer.body)
}
