//! The overview: counts per state, the last 24 hours, the handlers failing most and their
//! errors grouped.

use std::collections::HashMap;

use maud::html;

use super::layout::page;
use super::text::{ago, shown};
use crate::admin::request::encoded;
use crate::inbox::{HourCounts, InboxRecord, InboxState, InboxStats};

/// A handler that fails, over the entries read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailingHandler {
    pub(crate) handler: String,
    /// Entries (retrying or dead) it failed in.
    pub(crate) entries: u64,
    /// Its error in the newest of them.
    pub(crate) last_error: String,
}

/// One handler's failures with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorGroup {
    pub(crate) handler: String,
    pub(crate) error: String,
    pub(crate) entries: u64,
    /// The newest entry it was seen in.
    pub(crate) example: String,
}

/// What the overview shows.
#[derive(Debug, Clone)]
pub(crate) struct Overview {
    pub(crate) stats: InboxStats,
    pub(crate) now_ms: u64,
    /// The last 24 hours; `None` when the store keeps no hourly history.
    pub(crate) history: Option<Vec<HourCounts>>,
    pub(crate) failing: Vec<FailingHandler>,
    pub(crate) errors: Vec<ErrorGroup>,
    /// How many failing entries (the newest retrying and dead ones) were read to group them.
    pub(crate) read: usize,
}

impl Overview {
    /// Groups the errors of `failed` (retrying and dead entries, newest first): per handler,
    /// then per handler and message, most entries first.
    pub(crate) fn group(failed: &[InboxRecord]) -> (Vec<FailingHandler>, Vec<ErrorGroup>) {
        let mut handlers: HashMap<&str, FailingHandler> = HashMap::new();
        let mut groups: HashMap<(&str, &str), ErrorGroup> = HashMap::new();
        for record in failed {
            for failure in &record.last_errors {
                handlers
                    .entry(&failure.handler)
                    .or_insert_with(|| FailingHandler {
                        handler: failure.handler.clone(),
                        entries: 0,
                        last_error: failure.error.clone(),
                    })
                    .entries += 1;
                groups
                    .entry((&failure.handler, &failure.error))
                    .or_insert_with(|| ErrorGroup {
                        handler: failure.handler.clone(),
                        error: failure.error.clone(),
                        entries: 0,
                        example: record.event_id.clone(),
                    })
                    .entries += 1;
            }
        }
        let mut handlers: Vec<FailingHandler> = handlers.into_values().collect();
        handlers.sort_by(|a, b| b.entries.cmp(&a.entries).then(a.handler.cmp(&b.handler)));
        let mut groups: Vec<ErrorGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| {
            b.entries
                .cmp(&a.entries)
                .then(a.handler.cmp(&b.handler))
                .then(a.error.cmp(&b.error))
        });
        (handlers, groups)
    }
}

/// The overview page.
pub(crate) fn overview(mount: &str, who: Option<&str>, view: &Overview) -> String {
    let stats = &view.stats;
    let counts = [
        (InboxState::Pending, stats.pending),
        (InboxState::Retrying, stats.retrying),
        (InboxState::Running, stats.running),
        (InboxState::Dead, stats.dead),
        (InboxState::Handled, stats.handled),
    ];
    let content = html! {
        h1 { "Overview" }
        div.counts {
            @for (state, count) in counts {
                a href={ (mount) "/entries?state=" (state.as_str()) } {
                    dl class={ "count " (state.as_str()) } {
                        dt { (state.as_str()) }
                        dd id={ "count-" (state.as_str()) } { (count) }
                    }
                }
            }
        }
        p.note #oldest-pending {
            @match stats.oldest_pending_at_ms {
                Some(at) => { "The oldest delivery waiting for its first attempt was received " (ago(at, view.now_ms)) "." }
                None => { "No delivery waits for its first attempt." }
            }
        }
        h2 { "The last 24 hours" }
        @match &view.history {
            Some(hours) => { (super::chart::hourly(hours)) }
            None => {
                p.notice #no-history {
                    "This inbox's store keeps no per-hour history, so there is no chart: the counts above are current."
                }
            }
        }
        h2 { "Handlers failing most" }
        @if view.failing.is_empty() {
            p.note { "No retrying or dead delivery." }
        } @else {
            table #failing {
                thead { tr { th { "Handler" } th { "Entries" } th { "Last error" } } }
                tbody {
                    @for failing in &view.failing {
                        tr {
                            td { a href={ (mount) "/entries?handler=" (encoded(&failing.handler)) } { (shown(&failing.handler)) } }
                            td { (failing.entries) }
                            td.error { (shown(&failing.last_error)) }
                        }
                    }
                }
            }
            h2 { "Errors, grouped" }
            table #errors {
                thead { tr { th { "Handler" } th { "Error" } th { "Entries" } th { "Newest" } } }
                tbody {
                    @for group in &view.errors {
                        tr {
                            td { (shown(&group.handler)) }
                            td.error { (shown(&group.error)) }
                            td { (group.entries) }
                            td.id { a href={ (mount) "/entry?id=" (encoded(&group.example)) } { (shown(&group.example)) } }
                        }
                    }
                }
            }
            p.note { "From the newest " (view.read) " retrying and dead entries." }
        }
    };
    page(mount, "Overview", who, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::HandlerFailure;

    fn failed(id: &str, errors: &[(&str, &str)]) -> InboxRecord {
        InboxRecord {
            event_id: id.to_owned(),
            event_type: "charge.succeeded".to_owned(),
            state: InboxState::Dead,
            received_at_ms: 0,
            signed_at: 0,
            attempts: 1,
            due_at_ms: None,
            first_failed_at_ms: None,
            finished_at_ms: None,
            last_errors: errors
                .iter()
                .map(|(handler, error)| HandlerFailure {
                    handler: (*handler).to_owned(),
                    error: (*error).to_owned(),
                })
                .collect(),
            reruns: Vec::new(),
            body: None,
        }
    }

    #[test]
    fn errors_are_grouped_by_handler_and_message_most_first() {
        let records = [
            failed("evt_3", &[("book", "ledger down"), ("mail", "smtp 421")]),
            failed("evt_2", &[("book", "ledger down")]),
            failed("evt_1", &[("book", "timeout")]),
        ];
        let (handlers, groups) = Overview::group(&records);
        assert_eq!(handlers[0].handler, "book");
        assert_eq!(handlers[0].entries, 3);
        assert_eq!(handlers[0].last_error, "ledger down");
        assert_eq!(handlers[1].handler, "mail");
        assert_eq!(groups[0].error, "ledger down");
        assert_eq!(groups[0].entries, 2);
        assert_eq!(groups[0].example, "evt_3");
        assert_eq!(groups.len(), 3);
    }
}
