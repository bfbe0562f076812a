//! The confirmation every action asks for, and what the action did.

use maud::html;

use super::layout::page;
use super::text::{Exact, shown, time};
use crate::admin::request::encoded;
use crate::inbox::InboxRecord;

/// Asks to confirm replaying `ids`: a form that POSTs them with the token.
pub(crate) fn confirm_replay(
    mount: &str,
    who: Option<&str>,
    token: &str,
    ids: &[String],
) -> String {
    let content = html! {
        h1 { "Replay " (ids.len()) @if ids.len() == 1 { " entry?" } @else { " entries?" } }
        p { "Each goes back to pending, due now, its attempts reset. Handlers that succeeded for it stay skipped; the others run again." }
        ul #to-replay { @for id in ids { li { code { (shown(id)) } } } }
        form #confirm method="post" action={ (mount) "/replay" } {
            input type="hidden" name="token" value=(token);
            @for id in ids { input type="hidden" name="id" value=(Exact(id)); }
            button type="submit" { "Confirm the replay" }
            " "
            a href={ (mount) "/entries" } { "Cancel" }
        }
    };
    page(mount, "Confirm the replay", who, content)
}

/// Asks to confirm replaying every dead letter received since `since_ms` (every one: `None`).
pub(crate) fn confirm_replay_dead(
    mount: &str,
    who: Option<&str>,
    token: &str,
    since_ms: Option<u64>,
) -> String {
    let content = html! {
        h1 { "Replay dead letters?" }
        p {
            @match since_ms {
                Some(since) => { "Every dead letter received since " (time(since)) " goes back to pending, due now." }
                None => { "Every dead letter goes back to pending, due now." }
            }
            " Handlers that succeeded for them stay skipped."
        }
        form #confirm method="post" action={ (mount) "/replay-dead" } {
            input type="hidden" name="token" value=(token);
            @if let Some(since) = since_ms { input type="hidden" name="since_ms" value=(since); }
            button.danger type="submit" { "Confirm the replay" }
            " "
            a href={ (mount) "/entries?state=dead" } { "Cancel" }
        }
    };
    page(mount, "Confirm the replay", who, content)
}

/// What a replay did: the entries put back (as they stand now) and the ids not found.
pub(crate) fn replayed(
    mount: &str,
    who: Option<&str>,
    now: &[InboxRecord],
    more: usize,
    unknown: &[String],
) -> String {
    let content = html! {
        h1 { "Replayed" }
        p.notice #result {
            (now.len() + more) @if now.len() + more == 1 { " entry" } @else { " entries" } " put back to pending."
            @if !unknown.is_empty() { " " (unknown.len()) " not found." }
        }
        @if !now.is_empty() {
            table #replayed {
                thead { tr { th { "Event id" } th { "State now" } th { "Attempts" } } }
                tbody {
                    @for record in now {
                        tr {
                            td.id { a href={ (mount) "/entry?id=" (encoded(&record.event_id)) } { (shown(&record.event_id)) } }
                            td { span class={ "state " (record.state.as_str()) } { (record.state.as_str()) } }
                            td { (record.attempts) }
                        }
                    }
                }
            }
            @if more > 0 { p.note { "and " (more) " more." } }
        }
        @if !unknown.is_empty() {
            h2 { "Not found" }
            ul #unknown { @for id in unknown { li { code { (shown(id)) } } } }
        }
        p { a href={ (mount) "/entries" } { "Back to the entries" } }
    };
    page(mount, "Replayed", who, content)
}
