//! The frame every page shares: its head, its one style block, its navigation; and the
//! content security policy that lets that style block in and nothing else.

use std::sync::LazyLock;

use base64::Engine as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest as _, Sha256};

/// The page's only styles, inline (operators' networks reach no outside asset), allowed by
/// their hash in the policy.
const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
header a{color:#cfd8ff;text-decoration:none}header strong{font-size:16px}header .note{color:#c3cad8}
main{padding:16px 24px;max-width:1200px}
h1{font-size:20px;margin:8px 0 16px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.error,td.id{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.counts{display:flex;gap:12px;flex-wrap:wrap}.counts a{color:inherit;text-decoration:none}
.count{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:10px 16px;min-width:110px}
.count dt{color:#5a6270}.count dd{margin:0;font-size:24px;font-weight:600}
.count.dead dd{color:#b42318}.count.retrying dd{color:#b54708}
.state{border-radius:10px;padding:1px 8px;font-size:12px;background:#eef0f4}
.state.dead{background:#fee4e2;color:#912018}.state.retrying{background:#fef0c7;color:#93370d}
.state.handled{background:#dcfae6;color:#085d3a}.state.pending{background:#d1e9ff;color:#194185}
form.filters{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#5a6270}
input,select,button{font:inherit;padding:4px 6px}
button{background:#1d4ed8;color:#fff;border:0;border-radius:4px;padding:6px 12px;cursor:pointer}
button.danger{background:#b42318}
a.button{display:inline-block;padding:6px 12px}
pre{background:#fff;border:1px solid #e3e6eb;padding:12px;overflow:auto;white-space:pre-wrap;word-break:break-all}
.note{color:#5a6270}.notice{background:#fff;border-left:4px solid #1d4ed8;padding:8px 12px;margin:12px 0}
.notice.bad{border-color:#b42318}
svg text{font-size:11px;fill:#5a6270}
.legend span{margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
.sw.received{background:#6172f3}.sw.handled{background:#32d583}.sw.retried{background:#fdb022}.sw.dead{background:#f04438}
";

/// The page's content security policy: nothing from anywhere (no script at all, inline or
/// not), but its own style block and forms posted to itself; never framed.
pub(crate) static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// A whole page: `title`, the navigation under `mount`, and `content`. `who` is shown so a
/// person knows which access they were given.
pub(crate) fn page(mount: &str, title: &str, who: Option<&str>, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · webhook inbox" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "Webhook inbox" }
                    a href=(home(mount)) { "Overview" }
                    a href={ (mount) "/entries" } { "Entries" }
                    a href={ (mount) "/entries?state=dead" } { "Dead letters" }
                    @if let Some(who) = who {
                        span.note { "signed in as " (who) }
                    }
                }
                main { (content) }
            }
        }
    }
    .into_string()
}

/// A page that only says something: a refusal, an error, a missing entry.
pub(crate) fn message(mount: &str, title: &str, text: &str) -> String {
    page(
        mount,
        title,
        None,
        html! {
            h1 { (title) }
            p.notice.bad { (text) }
            p { a href=(home(mount)) { "Back to the overview" } }
        },
    )
}

/// The overview's address (the mount itself, or `/` when mounted at the root).
pub(crate) fn home(mount: &str) -> &str {
    if mount.is_empty() { "/" } else { mount }
}
