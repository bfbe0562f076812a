//! The inbox page for the people on call: what failed and why, and replays, in a browser.
//!
//! One line mounts it in the app's own server, on the endpoint it runs (or on any inbox
//! opened with [`backend::open_inbox`](crate::backend::open_inbox)), behind an access function
//! the app writes: it cannot be mounted without one.
//!
//! ```no_run
//! use actix_web::{App, HttpRequest, HttpServer};
//! use nextgen_events::actix::{inbox_page, webhooks};
//! use nextgen_events::admin::PageAccess;
//! use nextgen_events::{Endpoint, WebhookConfig};
//!
//! /// The app's own rule: here, a header its authenticating proxy sets.
//! fn on_call(request: &HttpRequest) -> PageAccess {
//!     match request.headers().get("x-user").and_then(|user| user.to_str().ok()) {
//!         Some("alice") => PageAccess::full("alice"),
//!         Some(user) => PageAccess::read_only(user),
//!         None => PageAccess::Deny,
//!     }
//! }
//!
//! # async fn run(config: WebhookConfig) -> std::io::Result<()> {
//! let endpoint = Endpoint::new(config).map_err(std::io::Error::other)?;
//! let mounted = endpoint.clone();
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(webhooks("/webhook", mounted.clone()))
//!         .configure(inbox_page("/webhooks/inbox", mounted.clone(), on_call))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await
//! # }
//! ```
//!
//! With axum, [`axum::inbox_page`](crate::axum::inbox_page) is the same, its access function
//! taking the request's [`Parts`](::axum::http::request::Parts) (and so the extensions an
//! authentication layer put there).
//!
//! # What it shows
//!
//! - **Overview** (the path itself): the entries in each state, how long the oldest delivery
//!   has waited for its first attempt, the last 24 hours as a chart (received, handled,
//!   retried, dead per hour: SQLite and PostgreSQL keep it; a Redis inbox says it has no
//!   history rather than draw a wrong chart), the handlers failing most with their last
//!   error, and the errors grouped by handler and message.
//! - **Entries** (`/entries`): filtered by state, event type and failing handler, or found by
//!   event id; newest first, 50 a page, each next page found from where the last one ended,
//!   so a page deep in a million entries costs what the first does.
//! - **An entry** (`/entry?id=...`): its fields, attempts and times, each failing handler's
//!   last error, and its body, pretty-printed, only when asked for.
//!
//! # Actions
//!
//! With [`PageAccess::Full`]: replay one entry, the selected ones, or every dead letter since a
//! time. A replay puts entries back to pending, due now; handlers that succeeded for them stay
//! skipped. An entry's page also runs one handler that succeeded once more
//! ([`InboxOperator::rerun`](crate::inbox::InboxOperator::rerun)), when its effect was lost or
//! wrong: mounted on an [`Endpoint`](crate::Endpoint), its form offers the event type's handler
//! names; a name that has not succeeded is answered with the names that have. Each action asks
//! for a confirmation, then shows what it did, and is logged (`tracing`, at `INFO`) with the
//! `who` the access function gave.
//!
//! # Security
//!
//! - The access function decides every request: [`PageAccess::Deny`] is a 403, and
//!   [`PageAccess::ReadOnly`] shows no button and refuses every action with 403.
//! - An action is a POST that must carry the token of the page's own form (matched to a
//!   `SameSite=Strict` cookie) and must not come from another origin (`Origin` and
//!   `Sec-Fetch-Site` are checked); anything else is a 403 that says why.
//! - Every value from a delivery (ids, types, errors, bodies) is escaped, its control
//!   characters shown as `\u{1b}` rather than obeyed.
//! - The page has no script at all and loads nothing from anywhere: its
//!   `Content-Security-Policy` allows only its own inline style block and forms posted to
//!   itself, and forbids framing. Answers are never cached.
//! - Tokens are kept in no server memory, so every replica of an app takes every form.

mod access;
#[cfg(feature = "actix")]
pub(crate) mod actix_mount;
#[cfg(feature = "axum")]
pub(crate) mod axum_mount;
mod guard;
mod page;
mod request;
mod views;

pub use access::PageAccess;
pub use page::{PageError, PageSource};

#[cfg(any(feature = "actix", feature = "axum"))]
use page::InboxPage;
#[cfg(any(feature = "actix", feature = "axum"))]
use request::{Method, PageRequest, SECURITY_HEADERS};
