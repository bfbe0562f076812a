//! The list of entries: filters, newest first, a page at a time, and (with full access) the
//! replay forms.

use maud::{Markup, html};

use super::layout::page;
use super::text::{Exact, shown, time};
use crate::admin::request::encoded;
use crate::inbox::{InboxRecord, InboxState, ListCursor, ListFilter};

/// What the list shows.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) records: Vec<InboxRecord>,
    /// The filters asked for (state, event type, handler).
    pub(crate) filter: ListFilter,
    /// The event id searched for, when one was.
    pub(crate) searched: Option<String>,
    /// Where the next page starts, when there is one.
    pub(crate) next: Option<ListCursor>,
}

impl Listing {
    /// The query string of this listing's filters, for links that keep them.
    fn filters_query(&self) -> String {
        let mut query = String::new();
        if let Some(state) = self.filter.state {
            query.push_str("&state=");
            query.push_str(state.as_str());
        }
        if let Some(event_type) = &self.filter.event_type {
            query.push_str("&type=");
            query.push_str(&encoded(event_type));
        }
        if let Some(handler) = &self.filter.handler {
            query.push_str("&handler=");
            query.push_str(&encoded(handler));
        }
        query
    }
}

/// The list page; with `may_act`, rows can be selected for a replay and dead letters replayed.
pub(crate) fn list(mount: &str, who: Option<&str>, may_act: bool, listing: &Listing) -> String {
    let content = html! {
        h1 { "Entries" }
        (filters(mount, listing))
        @if let Some(searched) = &listing.searched {
            @if listing.records.is_empty() {
                p.notice.bad #not-found { "No entry has the event id " code { (shown(searched)) } "." }
            }
        }
        @if listing.records.is_empty() && listing.searched.is_none() {
            p.note #empty { "No entry matches." }
        } @else if !listing.records.is_empty() {
            @if may_act {
                form #selected method="get" action={ (mount) "/confirm" } {
                    input type="hidden" name="action" value="replay";
                    (table(mount, listing, true))
                    p { button type="submit" { "Replay the selected…" } }
                }
            } @else {
                (table(mount, listing, false))
            }
        }
        @if let Some(next) = &listing.next {
            p {
                a #older href={ (mount) "/entries?after=" (next.received_at_ms) ":" (encoded(&next.event_id)) (listing.filters_query()) } {
                    "Older entries →"
                }
            }
        }
        @if may_act {
            h2 { "Replay dead letters" }
            form #replay-dead .filters method="get" action={ (mount) "/confirm" } {
                input type="hidden" name="action" value="replay-dead";
                label {
                    "Received since (UTC; empty: every dead letter)"
                    input type="datetime-local" name="since" step="1";
                }
                button.danger type="submit" { "Replay every dead letter since…" }
            }
        }
    };
    page(mount, "Entries", who, content)
}

fn filters(mount: &str, listing: &Listing) -> Markup {
    let state = listing.filter.state;
    html! {
        form.filters method="get" action={ (mount) "/entries" } {
            label {
                "State"
                select name="state" {
                    option value="" selected[state.is_none()] { "any" }
                    @for option in InboxState::ALL {
                        option value=(option.as_str()) selected[state == Some(option)] { (option.as_str()) }
                    }
                }
            }
            label { "Event type" input name="type" value=[listing.filter.event_type.as_deref().map(Exact)] placeholder="charge.succeeded"; }
            label { "Failing handler" input name="handler" value=[listing.filter.handler.as_deref().map(Exact)]; }
            label { "Event id" input name="id" value=[listing.searched.as_deref().map(Exact)] placeholder="evt_..."; }
            button type="submit" { "Filter" }
            a.button href={ (mount) "/entries" } { "Clear" }
        }
    }
}

fn table(mount: &str, listing: &Listing, selectable: bool) -> Markup {
    html! {
        table #entries {
            thead {
                tr {
                    @if selectable { th { "" } }
                    th { "Event id" } th { "Type" } th { "State" } th { "Attempts" } th { "Received" } th { "Last error" }
                }
            }
            tbody {
                @for record in &listing.records {
                    tr {
                        @if selectable {
                            td { input type="checkbox" name="id" value=(Exact(&record.event_id)) aria-label="select"; }
                        }
                        td.id { a href={ (mount) "/entry?id=" (encoded(&record.event_id)) } { (shown(&record.event_id)) } }
                        td { (shown(&record.event_type)) }
                        td { span class={ "state " (record.state.as_str()) } { (record.state.as_str()) } }
                        td { (record.attempts) }
                        td { (time(record.received_at_ms)) }
                        td.error {
                            @if let Some(failure) = record.last_errors.first() {
                                (shown(&failure.handler)) ": " (shown(&failure.error))
                                @if record.last_errors.len() > 1 { " (+" (record.last_errors.len() - 1) " more)" }
                            }
                        }
                    }
                }
            }
        }
    }
}
