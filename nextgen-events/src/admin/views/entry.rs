//! One entry: its fields, attempts and times, each failing handler's last error, the handlers
//! run again on purpose, its body on request, and (with full access) a replay button and a
//! form to run a handler that succeeded once more.

use maud::html;

use super::layout::page;
use super::text::{Exact, body, shown, time};
use crate::admin::request::encoded;
use crate::inbox::{InboxRecord, InboxState};

/// The entry page; with `may_act`, a replay button and, unless a worker holds the entry, the
/// re-run form, offering `handlers` (the app's for this event type, where the page knows them).
pub(crate) fn entry(
    mount: &str,
    who: Option<&str>,
    may_act: bool,
    record: &InboxRecord,
    handlers: &[&str],
) -> String {
    let id = encoded(&record.event_id);
    let optional_time = |at: Option<u64>| at.map_or_else(|| "—".to_owned(), time);
    let content = html! {
        h1 { "Entry " code #event-id { (shown(&record.event_id)) } }
        table #fields {
            tbody {
                tr { th { "State" } td { span #state class={ "state " (record.state.as_str()) } { (record.state.as_str()) } } }
                tr { th { "Event type" } td { (shown(&record.event_type)) } }
                tr { th { "Attempts" } td #attempts { (record.attempts) } }
                tr { th { "Received" } td { (time(record.received_at_ms)) } }
                tr { th { "Signed" } td { (time(record.signed_at.saturating_mul(1000))) } }
                tr { th { "Due" } td { (optional_time(record.due_at_ms)) } }
                tr { th { "First failed" } td { (optional_time(record.first_failed_at_ms)) } }
                tr { th { "Finished" } td { (optional_time(record.finished_at_ms)) } }
            }
        }
        @if may_act {
            form #replay method="get" action={ (mount) "/confirm" } {
                input type="hidden" name="action" value="replay";
                input type="hidden" name="id" value=(Exact(&record.event_id));
                p { button type="submit" { "Replay…" } }
            }
            @if record.state != InboxState::Running {
                form #rerun method="get" action={ (mount) "/confirm" } {
                    input type="hidden" name="action" value="rerun";
                    input type="hidden" name="id" value=(Exact(&record.event_id));
                    p {
                        label for="rerun-handler" { "Run a handler that succeeded once more: " }
                        input #rerun-handler type="text" name="handler" required list=[(!handlers.is_empty()).then_some("handler-names")] placeholder="app::send_receipt";
                        @if !handlers.is_empty() {
                            datalist #handler-names { @for name in handlers { option value=(name) {} } }
                        }
                        " "
                        button type="submit" { "Re-run…" }
                    }
                }
            }
        }
        h2 { "Last errors" }
        @if record.last_errors.is_empty() {
            p.note { "None." }
        } @else {
            table #last-errors {
                thead { tr { th { "Handler" } th { "Error" } } }
                tbody {
                    @for failure in &record.last_errors {
                        tr { td { (shown(&failure.handler)) } td.error { (shown(&failure.error)) } }
                    }
                }
            }
        }
        @if !record.reruns.is_empty() {
            h2 { "Re-runs" }
            table #reruns {
                thead { tr { th { "Handler" } th { "Asked for" } } }
                tbody {
                    @for rerun in &record.reruns {
                        tr { td { (shown(&rerun.handler)) } td { (time(rerun.at_ms)) } }
                    }
                }
            }
        }
        h2 #body { "Body" }
        @match &record.body {
            Some(raw) => { pre #body-text { (body(raw)) } }
            None => {
                p { a #show-body href={ (mount) "/entry?id=" (id) "&body=1#body" } { "Show the body" } }
            }
        }
    };
    page(mount, "Entry", who, content)
}
