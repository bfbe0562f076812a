//! `InboxPage`: one request to the page in, one answer out, whichever framework carried it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::access::PageAccess;
use super::guard;
use super::request::{Method, PageRequest, PageResponse};
use super::views::{self, CONTENT_SECURITY_POLICY, Listing, Overview};
use crate::backend::OpenedInbox;
use crate::endpoint::Endpoint;
use crate::handler::Handler;
use crate::idempotency::StoreError;
use crate::inbox::{InboxOperator, InboxRecord, InboxState, ListCursor, ListFilter, Rerun};
use crate::registry::Registry;
use crate::text::Escaped;

/// How many entries a list page shows.
const PAGE: usize = 50;
/// How many of the newest retrying and of the newest dead entries the overview groups.
const GROUPED: usize = 250;
/// How many entries one replay takes (a list page's selection is at most [`PAGE`]).
const MOST_REPLAYED: usize = 500;
/// How many replayed entries the result reads back to show where they stand.
const SHOWN_AFTER: usize = 50;

/// Why an inbox page cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// The endpoint runs without an inbox.
    #[error(
        "the endpoint has no inbox: the page shows an inbox's deliveries; configure one (WebhookConfig::with_inbox), or mount the page on an inbox opened with backend::open_inbox"
    )]
    NoInbox,
    /// The endpoint's inbox offers no operator view.
    #[error(
        "the endpoint's inbox has no operator view (its Inbox::operator answers None): mount the page on its InboxOperator instead"
    )]
    NoOperatorView,
    /// The path to mount at is not one.
    #[error(
        "`{0}` cannot be the page's path: give an absolute path such as \"/webhooks/inbox\", without a query"
    )]
    BadPath(String),
}

/// What an inbox page can show: an [`Endpoint`] in inbox mode, an inbox opened from a URL
/// ([`OpenedInbox`]), or an operator view itself.
pub trait PageSource {
    /// The operator view the page reads and replays through.
    ///
    /// # Errors
    ///
    /// [`PageError::NoInbox`] or [`PageError::NoOperatorView`] for an endpoint without one.
    fn into_operator(self) -> Result<Arc<dyn InboxOperator>, PageError>;

    /// The handlers the app runs, where the source knows them (an [`Endpoint`] does): an
    /// entry's re-run form then offers its event type's handler names. `None` (the default):
    /// the form takes any name, and a name that did not succeed is answered with those that
    /// did.
    fn registry(&self) -> Option<&Registry> {
        None
    }
}

impl PageSource for Endpoint {
    fn into_operator(self) -> Result<Arc<dyn InboxOperator>, PageError> {
        (&self).into_operator()
    }

    fn registry(&self) -> Option<&Registry> {
        Some(self.config().registry())
    }
}

impl PageSource for &Endpoint {
    fn into_operator(self) -> Result<Arc<dyn InboxOperator>, PageError> {
        if self.config().inbox().is_none() {
            return Err(PageError::NoInbox);
        }
        self.inbox_operator().ok_or(PageError::NoOperatorView)
    }

    fn registry(&self) -> Option<&Registry> {
        Some(self.config().registry())
    }
}

impl PageSource for OpenedInbox {
    fn into_operator(self) -> Result<Arc<dyn InboxOperator>, PageError> {
        Ok(self.operator())
    }
}

impl PageSource for Arc<dyn InboxOperator> {
    fn into_operator(self) -> Result<Arc<dyn InboxOperator>, PageError> {
        Ok(self)
    }
}

/// The inbox page: what the actix and axum mounts serve under their path.
#[derive(Clone)]
pub(crate) struct InboxPage {
    operator: Arc<dyn InboxOperator>,
    /// The path it is mounted at, without a trailing `/` (`""` at the root).
    mount: String,
    /// The app's handler names, where the source knew them.
    handlers: Option<Arc<HandlerNames>>,
}

/// The names of an app's handlers, as an entry's re-run form offers them.
struct HandlerNames {
    by_event: HashMap<&'static str, Vec<&'static str>>,
    wildcard: Vec<&'static str>,
}

impl HandlerNames {
    fn of(registry: &Registry) -> Self {
        let names = |handlers: &[&'static Handler]| -> Vec<&'static str> {
            handlers.iter().map(|handler| handler.name()).collect()
        };
        HandlerNames {
            by_event: registry
                .event_types()
                .into_iter()
                .map(|event_type| (event_type, names(registry.handlers_for(event_type))))
                .collect(),
            wildcard: names(registry.wildcard_handlers()),
        }
    }

    /// The handlers that run for `event_type`, its own then the `*` ones.
    fn for_event(&self, event_type: &str) -> Vec<&'static str> {
        let own = self.by_event.get(event_type).map_or(&[][..], Vec::as_slice);
        own.iter().chain(&self.wildcard).copied().collect()
    }
}

impl InboxPage {
    /// The page of `source`'s inbox, at `path`.
    pub(crate) fn new(path: &str, source: impl PageSource) -> Result<Self, PageError> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(PageError::BadPath(path.to_owned()));
        }
        let handlers = source
            .registry()
            .map(|registry| Arc::new(HandlerNames::of(registry)));
        Ok(InboxPage {
            operator: source.into_operator()?,
            mount: path.trim_end_matches('/').to_owned(),
            handlers,
        })
    }

    /// The path it is mounted at, `""` at the root.
    pub(crate) fn mount(&self) -> &str {
        &self.mount
    }

    /// Answers `request`, which `access` was decided for.
    pub(crate) async fn respond(
        &self,
        request: &PageRequest<'_>,
        access: &PageAccess,
    ) -> PageResponse {
        let mount = self.mount.as_str();
        let (nonce, set_cookie) = guard::nonce(request, mount);
        let (status, body) = match access {
            PageAccess::Deny => (
                403,
                views::message(
                    mount,
                    "Access denied",
                    "This page is not open to you: the app's access rule denied the request.",
                ),
            ),
            PageAccess::ReadOnly { .. } | PageAccess::Full { .. } => {
                self.route(request, access, &nonce).await
            }
        };
        PageResponse {
            status,
            body,
            set_cookie,
            content_security_policy: CONTENT_SECURITY_POLICY.as_str(),
        }
    }

    async fn route(
        &self,
        request: &PageRequest<'_>,
        access: &PageAccess,
        nonce: &str,
    ) -> (u16, String) {
        let mount = self.mount.as_str();
        let who = access.who();
        let answer = match (request.method, request.path) {
            (Method::Get, "" | "/") => self.overview(who).await,
            (Method::Get, "/entries") => self.list(request, access).await,
            (Method::Get, "/entry") => self.entry(request, access).await,
            (Method::Get, "/confirm") if access.may_act() => Ok(self.confirm(request, who, nonce)),
            (Method::Post, "/replay" | "/replay-dead" | "/rerun") => {
                if !access.may_act() {
                    tracing::warn!(who = %Escaped(who.unwrap_or_default()), path = request.path, "inbox page: an action was refused: read-only access");
                    return (
                        403,
                        views::message(
                            mount,
                            "Read-only",
                            "Your access to this page is read-only: actions are refused.",
                        ),
                    );
                }
                if let Err(refusal) = guard::check(request) {
                    tracing::warn!(who = %Escaped(who.unwrap_or_default()), path = request.path, %refusal, "inbox page: an action was refused");
                    return (403, views::message(mount, "Refused", &refusal.to_string()));
                }
                self.act(request, who).await
            }
            (Method::Get, "/confirm") => Ok((
                403,
                views::message(
                    mount,
                    "Read-only",
                    "Your access to this page is read-only: actions are refused.",
                ),
            )),
            (Method::Get, _) | (Method::Post, _) => Ok((
                404,
                views::message(mount, "Not found", "The inbox page has no such address."),
            )),
            (Method::Other, _) => Ok((
                405,
                views::message(
                    mount,
                    "Method not allowed",
                    "The inbox page takes GET, and POST for its actions.",
                ),
            )),
        };
        answer.unwrap_or_else(|error| {
            tracing::warn!(%error, "inbox page: the inbox's store failed");
            (
                503,
                views::message(
                    mount,
                    "The inbox cannot be read",
                    &format!("{error}. Try again once the store is reachable."),
                ),
            )
        })
    }

    async fn overview(&self, who: Option<&str>) -> Result<(u16, String), StoreError> {
        let now_ms = now_ms();
        let stats = self.operator.stats().await?;
        let history = match self.operator.history() {
            Some(history) => Some(
                history
                    .hourly(now_ms.saturating_sub(23 * 3_600_000), 24)
                    .await?,
            ),
            None => None,
        };
        let mut failed = Vec::new();
        for state in [InboxState::Retrying, InboxState::Dead] {
            failed.extend(
                self.operator
                    .list(ListFilter {
                        state: Some(state),
                        limit: GROUPED,
                        ..ListFilter::default()
                    })
                    .await?,
            );
        }
        let (failing, errors) = Overview::group(&failed);
        let view = Overview {
            stats,
            now_ms,
            history,
            failing,
            errors,
            read: failed.len(),
        };
        Ok((200, views::overview(&self.mount, who, &view)))
    }

    async fn list(
        &self,
        request: &PageRequest<'_>,
        access: &PageAccess,
    ) -> Result<(u16, String), StoreError> {
        let mount = self.mount.as_str();
        let state = match request
            .query_value("state")
            .map(|state| state.parse::<InboxState>())
        {
            Some(Err(problem)) => return Ok((400, views::message(mount, "Bad filter", &problem))),
            Some(Ok(state)) => Some(state),
            None => None,
        };
        let after = match request.query_value("after").map(|after| cursor(&after)) {
            Some(None) => {
                return Ok((
                    400,
                    views::message(
                        mount,
                        "Bad page",
                        "`after` must be `<received ms>:<event id>`, as the list's own link writes it.",
                    ),
                ));
            }
            Some(Some(cursor)) => Some(cursor),
            None => None,
        };
        let filter = ListFilter {
            state,
            event_type: request.query_value("type"),
            handler: request.query_value("handler"),
            after,
            limit: PAGE + 1,
        };
        let searched = request.query_value("id");
        let (records, next) = match &searched {
            Some(id) => {
                let found = self.operator.show(id, false).await?;
                (found.into_iter().collect(), None)
            }
            None => {
                let mut records = self.operator.list(filter.clone()).await?;
                let next = if records.len() > PAGE {
                    records.truncate(PAGE);
                    records.last().map(ListCursor::after)
                } else {
                    None
                };
                (records, next)
            }
        };
        let listing = Listing {
            records,
            filter,
            searched,
            next,
        };
        Ok((
            200,
            views::list(mount, access.who(), access.may_act(), &listing),
        ))
    }

    async fn entry(
        &self,
        request: &PageRequest<'_>,
        access: &PageAccess,
    ) -> Result<(u16, String), StoreError> {
        let mount = self.mount.as_str();
        let Some(id) = request.query_value("id") else {
            return Ok((
                400,
                views::message(
                    mount,
                    "No event id",
                    "Open an entry from the list: its address names the event id (`?id=evt_...`).",
                ),
            ));
        };
        let with_body = request.query_value("body").is_some();
        match self.operator.show(&id, with_body).await? {
            Some(record) => {
                let handlers = self
                    .handlers
                    .as_ref()
                    .map(|names| names.for_event(&record.event_type))
                    .unwrap_or_default();
                Ok((
                    200,
                    views::entry(mount, access.who(), access.may_act(), &record, &handlers),
                ))
            }
            None => Ok((
                404,
                views::message(
                    mount,
                    "No such entry",
                    &format!(
                        "No entry has the event id `{}` (it may have been pruned after its retention).",
                        Escaped(&id)
                    ),
                ),
            )),
        }
    }

    fn confirm(&self, request: &PageRequest<'_>, who: Option<&str>, token: &str) -> (u16, String) {
        let mount = self.mount.as_str();
        match request.query_value("action").as_deref() {
            Some("replay") => {
                let ids = request.query_values("id");
                if ids.is_empty() {
                    return (
                        400,
                        views::message(
                            mount,
                            "Nothing selected",
                            "Select the entries to replay on the list first.",
                        ),
                    );
                }
                if ids.len() > MOST_REPLAYED {
                    return (
                        400,
                        views::message(
                            mount,
                            "Too many",
                            &format!(
                                "One replay takes at most {MOST_REPLAYED} entries; replay dead letters by time instead."
                            ),
                        ),
                    );
                }
                (200, views::confirm_replay(mount, who, token, &ids))
            }
            Some("replay-dead") => match request
                .query_value("since")
                .map(|since| views::parse_since(&since))
            {
                Some(Err(problem)) => (400, views::message(mount, "Bad time", &problem)),
                Some(Ok(since)) => (
                    200,
                    views::confirm_replay_dead(mount, who, token, Some(since)),
                ),
                None => (200, views::confirm_replay_dead(mount, who, token, None)),
            },
            Some("rerun") => {
                match rerun_of(
                    mount,
                    request.query_value("id"),
                    request.query_value("handler"),
                ) {
                    Ok((id, handler)) => {
                        (200, views::confirm_rerun(mount, who, token, &id, &handler))
                    }
                    Err(refused) => refused,
                }
            }
            _ => (
                400,
                views::message(
                    mount,
                    "Unknown action",
                    "The page's actions are `replay`, `replay-dead` and `rerun`.",
                ),
            ),
        }
    }

    async fn act(
        &self,
        request: &PageRequest<'_>,
        who: Option<&str>,
    ) -> Result<(u16, String), StoreError> {
        if request.path == "/rerun" {
            return self.rerun(request, who).await;
        }
        let mount = self.mount.as_str();
        let who_logged = Escaped(who.unwrap_or_default());
        let (replayed, unknown) = if request.path == "/replay" {
            let mut ids = request.form_values("id");
            ids.retain(|id| !id.is_empty());
            ids.truncate(MOST_REPLAYED);
            if ids.is_empty() {
                return Ok((
                    400,
                    views::message(
                        mount,
                        "Nothing selected",
                        "Select the entries to replay on the list first.",
                    ),
                ));
            }
            let found = self.operator.replay(&ids).await?;
            let unknown: Vec<String> = ids
                .iter()
                .filter(|id| !found.contains(id))
                .cloned()
                .collect();
            tracing::info!(who = %who_logged, replayed = found.len(), ids = %listed(&found), unknown = unknown.len(), "inbox page: replayed entries");
            (found, unknown)
        } else {
            let since_ms = match request
                .form_value("since_ms")
                .map(|since| since.parse::<u64>())
            {
                Some(Err(_)) => {
                    return Ok((
                        400,
                        views::message(
                            mount,
                            "Bad time",
                            "`since_ms` must be Unix milliseconds, as the confirmation form writes it.",
                        ),
                    ));
                }
                Some(Ok(since)) => Some(since),
                None => None,
            };
            let done = self.operator.replay_dead(since_ms).await?;
            tracing::info!(who = %who_logged, since_ms, replayed = done.replayed.len(), first = %listed(&done.replayed[..done.replayed.len().min(20)]), "inbox page: replayed dead letters");
            (done.replayed, done.unknown)
        };
        let mut now: Vec<InboxRecord> = Vec::new();
        for id in replayed.iter().take(SHOWN_AFTER) {
            if let Some(record) = self.operator.show(id, false).await? {
                now.push(record);
            }
        }
        let more = replayed.len().saturating_sub(SHOWN_AFTER);
        Ok((200, views::replayed(mount, who, &now, more, &unknown)))
    }

    /// Runs the handler the form names once more for its entry, and shows what the inbox
    /// answered.
    async fn rerun(
        &self,
        request: &PageRequest<'_>,
        who: Option<&str>,
    ) -> Result<(u16, String), StoreError> {
        let mount = self.mount.as_str();
        let (id, handler) = match rerun_of(
            mount,
            request.form_value("id"),
            request.form_value("handler"),
        ) {
            Ok(named) => named,
            Err(refused) => return Ok(refused),
        };
        let rerun = self.operator.rerun(&id, &handler).await?;
        tracing::info!(who = %Escaped(who.unwrap_or_default()), event_id = %Escaped(&id), handler = %Escaped(&handler), outcome = ?rerun, "inbox page: asked to run a handler again");
        let now = match rerun {
            Rerun::PutBack => self.operator.show(&id, false).await?,
            _ => None,
        };
        Ok(views::rerun_result(
            mount,
            who,
            &id,
            &handler,
            &rerun,
            now.as_ref(),
        ))
    }
}

/// The event id and the handler a re-run names, both required; the 400 page for one missing.
fn rerun_of(
    mount: &str,
    id: Option<String>,
    handler: Option<String>,
) -> Result<(String, String), (u16, String)> {
    let id = id.filter(|id| !id.is_empty());
    let handler = handler
        .map(|handler| handler.trim().to_owned())
        .filter(|handler| !handler.is_empty());
    match (id, handler) {
        (Some(id), Some(handler)) => Ok((id, handler)),
        (None, _) => Err((
            400,
            views::message(
                mount,
                "No event id",
                "A re-run names its entry: start from the entry's page.",
            ),
        )),
        (Some(_), None) => Err((
            400,
            views::message(
                mount,
                "No handler",
                "Name the handler to run again by its full name, as the entry's re-runs and `nextgen inbox` print it (such as `app::send_receipt`).",
            ),
        )),
    }
}

/// A list cursor as the list's "older" link writes it: `<received ms>:<event id>`.
fn cursor(text: &str) -> Option<ListCursor> {
    let (received, event_id) = text.split_once(':')?;
    Some(ListCursor {
        received_at_ms: received.parse().ok()?,
        event_id: event_id.to_owned(),
    })
}

/// Event ids for a log line, each escaped, comma-separated.
fn listed(ids: &[String]) -> String {
    ids.iter()
        .map(|id| crate::text::escaped(id))
        .collect::<Vec<_>>()
        .join(",")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
