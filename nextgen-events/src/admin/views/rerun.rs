//! Running a handler that succeeded once more: the confirmation, and what the inbox answered.

use maud::html;

use super::layout::page;
use super::text::{Exact, shown};
use crate::admin::request::encoded;
use crate::inbox::{InboxRecord, Rerun};

/// Asks to confirm running `handler` once more for `event_id`: a form that POSTs both with the
/// token.
pub(crate) fn confirm_rerun(
    mount: &str,
    who: Option<&str>,
    token: &str,
    event_id: &str,
    handler: &str,
) -> String {
    let content = html! {
        h1 { "Run " code { (shown(handler)) } " again?" }
        p {
            "For " code { (shown(event_id)) } ": the handler's done marker is removed and the entry goes back to pending, due now, in one step. "
            "The workers run that handler once more; the other handlers that succeeded stay skipped, and those that did not run, as in any replay. "
            "The first run's effect is still there: use it when the handler's effect is safe to apply again, or when fixed code corrects what the faulty run did; a failure is retried by a replay."
        }
        form #confirm method="post" action={ (mount) "/rerun" } {
            input type="hidden" name="token" value=(token);
            input type="hidden" name="id" value=(Exact(event_id));
            input type="hidden" name="handler" value=(Exact(handler));
            button.danger type="submit" { "Confirm the re-run" }
            " "
            a href={ (mount) "/entry?id=" (encoded(event_id)) } { "Cancel" }
        }
    };
    page(mount, "Confirm the re-run", who, content)
}

/// What the inbox answered to running `handler` once more for `event_id`, and the status to
/// send it with; `now` is the entry as it stands after it.
pub(crate) fn rerun_result(
    mount: &str,
    who: Option<&str>,
    event_id: &str,
    handler: &str,
    rerun: &Rerun,
    now: Option<&InboxRecord>,
) -> (u16, String) {
    let entry = format!("{mount}/entry?id={}", encoded(event_id));
    let (status, title, content) = match rerun {
        Rerun::PutBack => (
            200,
            "Re-run",
            html! {
                h1 { "Re-run" }
                p.notice #result {
                    code { (shown(handler)) } " runs once more for " code { (shown(event_id)) } ": the entry is back in the queue"
                    @if let Some(record) = now { " (" span class={ "state " (record.state.as_str()) } { (record.state.as_str()) } " now)" }
                    "."
                }
            },
        ),
        Rerun::NotDone { done } => (
            409,
            "Nothing to re-run",
            html! {
                h1 { "Nothing to re-run" }
                p.notice.bad #result {
                    code { (shown(handler)) } " has not succeeded for " code { (shown(event_id)) }
                    " (or its done marker outlived the retention): there is nothing to run again, and nothing changed. A replay runs the handlers that did not succeed."
                }
                @if done.is_empty() {
                    p { "No handler has succeeded for this event." }
                } @else {
                    p { "The handlers that succeeded for it:" }
                    ul #done-handlers {
                        @for name in done {
                            li {
                                code { (shown(name)) } " "
                                a href={ (mount) "/confirm?action=rerun&id=" (encoded(event_id)) "&handler=" (encoded(name)) } { "Run again…" }
                            }
                        }
                    }
                }
            },
        ),
        Rerun::Running => (
            409,
            "Running",
            html! {
                h1 { "Running" }
                p.notice.bad #result {
                    "A worker is handling " code { (shown(event_id)) } " right now: nothing changed. Ask again once its attempt ends."
                }
            },
        ),
        Rerun::NoEntry => (
            404,
            "No such entry",
            html! {
                h1 { "No such entry" }
                p.notice.bad #result {
                    "No entry has the event id " code { (shown(event_id)) } " (it may have been pruned after its retention): nothing changed."
                }
            },
        ),
    };
    let content = html! {
        (content)
        p { a href=(entry) { "Back to the entry" } }
    };
    (status, page(mount, title, who, content))
}
