//! The inbox page over real HTTP: who may see and do what, the cross-site defences, the
//! escaping of what deliveries hold, the keyset pages, and the actions.

#![allow(clippy::unwrap_used)]

#[path = "support/page.rs"]
mod page;
mod support;

use std::collections::HashSet;

use nextgen_events::inbox::InboxOperator as _;
use nextgen_events::inbox::InboxState;
use page::{FilledInbox, HOSTILE_ERROR, HOSTILE_ID};

const BASE: &str = "/ops/inbox";

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// The nonce cookie the page set, as a `Cookie` header value.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie");
        set.split(';').next().unwrap().to_owned()
    }

    /// The token of the page's POST form.
    fn token(&self) -> String {
        let at = self.body.find("name=\"token\" value=\"").expect(&self.body) + 20;
        self.body[at..at + 64].to_owned()
    }
}

async fn get(server: &support::TestServer, user: Option<&str>, path: &str) -> Reply {
    let mut request = reqwest::Client::new().get(server.url(&format!("{BASE}{path}")));
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    reply(request.send().await.unwrap()).await
}

async fn post(
    server: &support::TestServer,
    headers: &[(&str, &str)],
    path: &str,
    form: &[(&str, &str)],
) -> Reply {
    let body: String = form
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}={}",
                value
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("{BASE}{path}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send().await.unwrap()).await
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

#[actix_rt::test]
async fn denied_requests_see_nothing_and_every_answer_carries_the_policy() {
    let inbox = FilledInbox::new(3).await;
    let server = inbox.serve();
    for user in [None, Some("stranger")] {
        for path in [
            "",
            "/entries",
            "/entry?id=evt_dead",
            "/confirm?action=replay&id=evt_dead",
        ] {
            let reply = get(&server, user, path).await;
            assert_eq!(reply.status, 403, "{user:?} {path}");
            assert!(!reply.body.contains("evt_dead"), "{}", reply.body);
        }
    }
    let reply = get(&server, Some("viewer"), "").await;
    assert_eq!(reply.status, 200);
    let policy = reply.header("content-security-policy");
    assert!(
        policy.starts_with("default-src 'none'; style-src 'sha256-"),
        "{policy}"
    );
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("script-src"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(reply.header("x-frame-options"), "DENY");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(!reply.body.contains("<script"), "the page has no script");
}

#[actix_rt::test]
async fn the_overview_counts_every_state_draws_the_day_and_groups_the_errors() {
    let inbox = FilledInbox::new(3).await;
    let server = inbox.serve();
    let reply = get(&server, Some("viewer"), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (state, count) in [("pending", 3), ("retrying", 1), ("dead", 2), ("handled", 1)] {
        let shown = format!("id=\"count-{state}\">{count}</dd>");
        assert!(reply.body.contains(&shown), "{shown} in {}", reply.body);
    }
    // SQLite keeps the history: a chart, no excuse.
    assert!(reply.body.contains("<svg id=\"chart\""), "{}", reply.body);
    assert!(!reply.body.contains("no-history"));
    // The failing handlers and their errors, grouped.
    assert!(reply.body.contains("book_charge"));
    assert!(reply.body.contains("the ledger answered 503"));
    assert!(reply.body.contains("id=\"errors\""));
}

#[actix_rt::test]
async fn what_a_delivery_holds_is_escaped_everywhere() {
    let inbox = FilledInbox::new(0).await;
    let server = inbox.serve();
    let id_query = support_encode(HOSTILE_ID);
    for path in [
        String::new(),
        "/entries?state=dead".to_owned(),
        format!("/entry?id={id_query}&body=1"),
        format!("/entries?id={id_query}"),
        format!("/confirm?action=replay&id={id_query}"),
    ] {
        let reply = get(&server, Some("admin"), &path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(!reply.body.contains("<script"), "{path}: {}", reply.body);
        assert!(
            !reply.body.contains('\u{1b}'),
            "{path}: a raw escape character"
        );
        assert!(!reply.body.contains("<b>ops</b>"), "{path}");
        assert!(
            reply
                .body
                .contains("evt_&lt;script&gt;alert(1)&lt;/script&gt;\\u{1b}[31m"),
            "{path}: {}",
            reply.body
        );
    }
    // A form sends the id back exactly: its control character as a reference, not raw.
    let confirm = get(
        &server,
        Some("admin"),
        &format!("/confirm?action=replay&id={id_query}"),
    )
    .await;
    assert!(
        confirm
            .body
            .contains("value=\"evt_&lt;script&gt;alert(1)&lt;/script&gt;&#x1b;[31m\""),
        "{}",
        confirm.body
    );
    let entry = get(&server, Some("admin"), &format!("/entry?id={id_query}")).await;
    assert!(
        entry
            .body
            .contains("&lt;script&gt;alert('x')&lt;/script&gt; upstream said \\u{1b}[2J")
    );
    assert!(HOSTILE_ERROR.contains("<script>"));
    // The body only on request.
    assert!(!entry.body.contains("ch_1"));
    assert!(entry.body.contains("Show the body"));
    let with_body = get(
        &server,
        Some("admin"),
        &format!("/entry?id={id_query}&body=1"),
    )
    .await;
    assert!(
        with_body.body.contains("&quot;amount&quot;: 100"),
        "{}",
        with_body.body
    );
}

/// A handler run again on purpose is listed on its entry, its name escaped, with when it was
/// asked for; an entry without one has no such table.
#[actix_rt::test]
async fn an_entry_lists_the_handlers_run_again() {
    use nextgen_events::idempotency::{Claim, IdempotencyStore as _};
    use nextgen_events::inbox::Rerun;

    let inbox = FilledInbox::new(0).await;
    let handler = "notify_<b>ops</b>\u{1b}[31m";
    let store = inbox.inbox.store();
    let lease = std::time::Duration::from_secs(60);
    let Claim::Claimed(token) = store.claim("evt_handled", handler, lease).await.unwrap() else {
        panic!("a fresh claim");
    };
    assert!(store.complete("evt_handled", handler, token).await.unwrap());
    // An hour after the last entry: 2026-12-07 11:04:00 UTC.
    inbox
        .clock
        .fetch_add(3_600_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        inbox.inbox.rerun("evt_handled", handler).await.unwrap(),
        Rerun::PutBack
    );
    let server = inbox.serve();
    let entry = get(&server, Some("viewer"), "/entry?id=evt_handled").await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    let start = entry.body.find("<table id=\"reruns\">").expect(&entry.body);
    let table = &entry.body[start..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(
        table.contains("<td>notify_&lt;b&gt;ops&lt;/b&gt;\\u{1b}[31m</td>"),
        "{table}"
    );
    assert!(
        table.contains("<td>2026-12-07 11:04:00 UTC</td>"),
        "{table}"
    );
    assert!(!entry.body.contains('\u{1b}'), "a raw escape character");
    let other = get(&server, Some("viewer"), "/entry?id=evt_dead").await;
    assert!(!other.body.contains("id=\"reruns\""), "{}", other.body);
}

#[actix_rt::test]
async fn a_handler_that_succeeded_runs_once_more_after_a_confirmation() {
    use nextgen_events::idempotency::{Claim, IdempotencyStore as _};

    let inbox = FilledInbox::new(0).await;
    let handler = "app::book_charge";
    let store = inbox.inbox.store();
    let lease = std::time::Duration::from_secs(60);
    let Claim::Claimed(token) = store.claim("evt_handled", handler, lease).await.unwrap() else {
        panic!("a fresh claim");
    };
    assert!(store.complete("evt_handled", handler, token).await.unwrap());
    let server = inbox.serve();

    // The entry offers the form to full access only.
    let entry = get(&server, Some("admin"), "/entry?id=evt_handled").await;
    assert!(entry.body.contains("<form id=\"rerun\""), "{}", entry.body);
    // Mounted on the inbox alone, the page does not know the app's handlers: any name goes.
    assert!(!entry.body.contains("datalist"), "{}", entry.body);
    let viewed = get(&server, Some("viewer"), "/entry?id=evt_handled").await;
    assert!(!viewed.body.contains("rerun"), "{}", viewed.body);
    let missing = get(
        &server,
        Some("admin"),
        "/confirm?action=rerun&id=evt_handled",
    )
    .await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(
        missing.body.contains("Name the handler"),
        "{}",
        missing.body
    );

    // A name that has not succeeded changes nothing, and is answered with the ones that have.
    let confirm = get(
        &server,
        Some("admin"),
        "/confirm?action=rerun&id=evt_handled&handler=app%3A%3Abook_chrage",
    )
    .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("Confirm the re-run"),
        "{}",
        confirm.body
    );
    let cookie = confirm.cookie();
    let token = confirm.token();
    let origin = format!("http://{}", server.addr);
    let admin = [
        ("x-user", "admin"),
        ("cookie", cookie.as_str()),
        ("origin", origin.as_str()),
    ];
    let mistyped = post(
        &server,
        &admin,
        "/rerun",
        &[
            ("token", &token),
            ("id", "evt_handled"),
            ("handler", "app::book_chrage"),
        ],
    )
    .await;
    assert_eq!(mistyped.status, 409, "{}", mistyped.body);
    assert!(
        mistyped.body.contains("has not succeeded"),
        "{}",
        mistyped.body
    );
    assert!(
        mistyped
            .body
            .contains("/confirm?action=rerun&amp;id=evt_handled&amp;handler=app%3A%3Abook_charge"),
        "{}",
        mistyped.body
    );
    let unchanged = inbox
        .inbox
        .show("evt_handled", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.state, InboxState::Handled);
    assert!(unchanged.reruns.is_empty());

    // Read-only access, or a form without this browser's token, is refused.
    let viewer = [
        ("x-user", "viewer"),
        ("cookie", cookie.as_str()),
        ("origin", origin.as_str()),
    ];
    let form = [
        ("token", token.as_str()),
        ("id", "evt_handled"),
        ("handler", handler),
    ];
    assert_eq!(post(&server, &viewer, "/rerun", &form).await.status, 403);
    let tokenless = post(&server, &admin, "/rerun", &form[1..]).await;
    assert_eq!(tokenless.status, 403, "{}", tokenless.body);
    assert!(
        inbox
            .inbox
            .show("evt_handled", false)
            .await
            .unwrap()
            .unwrap()
            .reruns
            .is_empty()
    );

    // Confirmed: the marker is gone and the entry is pending again, recording the re-run.
    let done = post(&server, &admin, "/rerun", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("runs once more"), "{}", done.body);
    assert!(done.body.contains("state pending"), "{}", done.body);
    let put_back = inbox
        .inbox
        .show("evt_handled", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(put_back.state, InboxState::Pending);
    assert_eq!(put_back.reruns.len(), 1, "{put_back:?}");
    assert_eq!(put_back.reruns[0].handler, handler);
    assert!(matches!(
        store.claim("evt_handled", handler, lease).await.unwrap(),
        Claim::Claimed(_)
    ));
    // An entry nobody has is a 404 that changes nothing.
    let unknown = post(
        &server,
        &admin,
        "/rerun",
        &[
            ("token", &token),
            ("id", "evt_nobody"),
            ("handler", handler),
        ],
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[actix_rt::test]
async fn read_only_access_shows_no_form_and_every_action_is_refused() {
    let inbox = FilledInbox::new(1).await;
    let server = inbox.serve();
    for path in ["", "/entries", "/entries?state=dead", "/entry?id=evt_dead"] {
        let reply = get(&server, Some("viewer"), path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(!reply.body.contains("method=\"post\""), "{path}");
        assert!(!reply.body.contains("/confirm"), "{path}: {}", reply.body);
        assert!(!reply.body.contains("Replay"), "{path}");
    }
    assert_eq!(
        get(
            &server,
            Some("viewer"),
            "/confirm?action=replay&id=evt_dead"
        )
        .await
        .status,
        403
    );
    // Even with a cookie and its token, from this origin.
    let first = get(&server, Some("viewer"), "").await;
    let cookie = first.cookie();
    let token = cookie.split('=').nth(1).unwrap().to_owned();
    let host = server.addr.to_string();
    let origin = format!("http://{host}");
    let reply = post(
        &server,
        &[
            ("x-user", "viewer"),
            ("cookie", &cookie),
            ("origin", &origin),
        ],
        "/replay",
        &[("token", &token), ("id", "evt_dead")],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("read-only"), "{}", reply.body);
    let dead = inbox.inbox.show("evt_dead", false).await.unwrap().unwrap();
    assert_eq!(dead.state, InboxState::Dead);
}

#[actix_rt::test]
async fn a_replay_needs_the_token_of_this_browser_and_this_origin_then_is_done_and_shown() {
    let inbox = FilledInbox::new(1).await;
    let server = inbox.serve();
    let confirm = get(&server, Some("admin"), "/confirm?action=replay&id=evt_dead").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Confirm the replay"));
    let cookie = confirm.cookie();
    let token = confirm.token();
    let origin = format!("http://{}", server.addr);
    let form = [("token", token.as_str()), ("id", "evt_dead")];
    let refused = [
        // No token.
        post(
            &server,
            &[("x-user", "admin"), ("cookie", &cookie)],
            "/replay",
            &[("id", "evt_dead")],
        )
        .await,
        // No cookie: the token is someone else's.
        post(&server, &[("x-user", "admin")], "/replay", &form).await,
        // Another site's form.
        post(
            &server,
            &[
                ("x-user", "admin"),
                ("cookie", &cookie),
                ("origin", "https://evil.example"),
            ],
            "/replay",
            &form,
        )
        .await,
        post(
            &server,
            &[
                ("x-user", "admin"),
                ("cookie", &cookie),
                ("sec-fetch-site", "cross-site"),
            ],
            "/replay",
            &form,
        )
        .await,
        // A cookie of another browser.
        post(
            &server,
            &[
                ("x-user", "admin"),
                ("cookie", &format!("nextgen_inbox_csrf={}", "0".repeat(64))),
            ],
            "/replay",
            &form,
        )
        .await,
    ];
    for reply in &refused {
        assert_eq!(reply.status, 403, "{}", reply.body);
    }
    assert_eq!(
        inbox
            .inbox
            .show("evt_dead", false)
            .await
            .unwrap()
            .unwrap()
            .state,
        InboxState::Dead
    );

    let done = post(
        &server,
        &[
            ("x-user", "admin"),
            ("cookie", &cookie),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
        "/replay",
        &form,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("1 entry put back to pending."),
        "{}",
        done.body
    );
    assert!(done.body.contains("state pending"), "{}", done.body);
    let replayed = inbox.inbox.show("evt_dead", false).await.unwrap().unwrap();
    assert_eq!(replayed.state, InboxState::Pending);
    assert_eq!(replayed.attempts, 0);
}

#[actix_rt::test]
async fn every_dead_letter_since_a_time_is_replayed_after_a_confirmation() {
    let inbox = FilledInbox::new(0).await;
    let server = inbox.serve();
    // Both dead letters were received after 10:02 on the injected clock; none before 10:02.
    let confirm = get(
        &server,
        Some("admin"),
        "/confirm?action=replay-dead&since=2026-12-07T10:02",
    )
    .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("2026-12-07 10:02:00 UTC"),
        "{}",
        confirm.body
    );
    let bad = get(
        &server,
        Some("admin"),
        "/confirm?action=replay-dead&since=yesterday",
    )
    .await;
    assert_eq!(bad.status, 400);
    let since = confirm
        .body
        .split("name=\"since_ms\" value=\"")
        .nth(1)
        .unwrap();
    let since = &since[..since.find('"').unwrap()];
    let done = post(
        &server,
        &[
            ("x-user", "admin"),
            ("cookie", &confirm.cookie()),
            ("sec-fetch-site", "same-origin"),
        ],
        "/replay-dead",
        &[("token", &confirm.token()), ("since_ms", since)],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("2 entries put back to pending."),
        "{}",
        done.body
    );
    assert_eq!(inbox.inbox.stats().await.unwrap().dead, 0);
}

#[actix_rt::test]
async fn the_list_pages_through_every_entry_once_and_filters() {
    let inbox = FilledInbox::new(120).await;
    let server = inbox.serve();
    let mut seen = HashSet::new();
    let mut path = "/entries?state=pending".to_owned();
    let mut pages = 0;
    loop {
        let reply = get(&server, Some("viewer"), &path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        pages += 1;
        for chunk in reply.body.split("/entry?id=").skip(1) {
            let id = &chunk[..chunk.find('"').unwrap()];
            assert!(id.starts_with("evt_pending_"), "{id}");
            assert!(seen.insert(id.to_owned()), "{id} listed twice");
        }
        let Some(older) = reply.body.split("id=\"older\" href=\"").nth(1) else {
            break;
        };
        let link = older[..older.find('"').unwrap()].replace("&amp;", "&");
        path = link.strip_prefix(BASE).unwrap().to_owned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);

    let failing = get(&server, Some("viewer"), "/entries?handler=book_charge").await;
    assert!(failing.body.contains("evt_dead") && failing.body.contains("evt_retrying"));
    assert!(!failing.body.contains("evt_pending_"));
    let by_id = get(&server, Some("viewer"), "/entries?id=evt_handled").await;
    assert!(by_id.body.contains("/entry?id=evt_handled"));
    let missing = get(&server, Some("viewer"), "/entries?id=evt_nope").await;
    assert!(
        missing.body.contains("id=\"not-found\""),
        "{}",
        missing.body
    );
    let bad = get(&server, Some("viewer"), "/entries?state=done").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("pending, retrying, running, handled, dead")
    );
}

#[test]
fn a_page_without_an_inbox_is_refused_at_mount_naming_the_fix() {
    let endpoint =
        nextgen_events::Endpoint::new(nextgen_events::WebhookConfig::new(support::SECRET)).unwrap();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        nextgen_events::actix::inbox_page("/ops/inbox", endpoint, page::access)
    }))
    .err()
    .expect("refused");
    let message = refused.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("cannot mount the inbox page at `/ops/inbox`"),
        "{message}"
    );
    assert!(message.contains("with_inbox"), "{message}");
}

#[actix_rt::test]
async fn an_endpoint_in_inbox_mode_gives_the_page_its_inbox() {
    let inbox = FilledInbox::new(2).await;
    let config = nextgen_events::WebhookConfig::new(support::SECRET)
        .with_inbox(inbox.inbox.clone())
        .with_inbox_workers(0);
    let endpoint = nextgen_events::Endpoint::new(config).unwrap();
    let mounted = endpoint.clone();
    let server = support::TestServer::start_with(move |service| {
        nextgen_events::actix::inbox_page("/ops/inbox", mounted.clone(), page::access)(service);
    });
    let reply = get(&server, Some("viewer"), "").await;
    assert!(
        reply.body.contains("id=\"count-pending\">2</dd>"),
        "{}",
        reply.body
    );
    // The endpoint knows its handlers: the re-run form offers the entry's event type's.
    let entry = get(&server, Some("admin"), "/entry?id=evt_handled").await;
    let start = entry
        .body
        .find("<datalist id=\"handler-names\">")
        .expect(&entry.body);
    let names = &entry.body[start..];
    let names = &names[..names.find("</datalist>").unwrap()];
    let charge_handler = format!("{}::record_charge", module_path!());
    assert!(
        names.contains(&format!("<option value=\"{charge_handler}\">")),
        "{names}"
    );
    assert!(!names.contains("welcome_customer"), "{names}");
    endpoint.shutdown(std::time::Duration::from_secs(5)).await;
}

/// The handler the app of these tests runs for charges (the page's tests run no worker).
#[nextgen_events::nextgen_event("charge.succeeded")]
async fn record_charge(charge: nextgen_events::payloads::Charge) {
    let _ = charge;
}

fn support_encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The same page in axum: the access function reads the request's parts.
#[cfg(feature = "axum")]
#[actix_rt::test]
async fn axum_serves_the_same_page_with_the_same_defences() {
    use nextgen_events::admin::PageAccess;

    fn access(request: &axum::http::request::Parts) -> PageAccess {
        match request
            .headers
            .get("x-user")
            .and_then(|user| user.to_str().ok())
        {
            Some("admin") => PageAccess::full("admin"),
            Some("viewer") => PageAccess::read_only("viewer"),
            _ => PageAccess::Deny,
        }
    }

    let inbox = FilledInbox::new(2).await;
    let server = support::TestServer::start_axum(axum::Router::new().merge(
        nextgen_events::axum::inbox_page(BASE, inbox.operator(), access),
    ));
    assert_eq!(get(&server, None, "").await.status, 403);
    let overview = get(&server, Some("viewer"), "").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("id=\"count-dead\">2</dd>"),
        "{}",
        overview.body
    );
    assert!(
        overview
            .header("content-security-policy")
            .starts_with("default-src 'none'")
    );
    assert_eq!(
        get(&server, Some("viewer"), "/entries?state=dead")
            .await
            .status,
        200
    );
    assert_eq!(get(&server, Some("admin"), "/nowhere").await.status, 404);

    let confirm = get(&server, Some("admin"), "/confirm?action=replay&id=evt_dead").await;
    let cookie = confirm.cookie();
    let form = [("token", confirm.token()), ("id", "evt_dead".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let elsewhere = post(
        &server,
        &[
            ("x-user", "admin"),
            ("cookie", &cookie),
            ("origin", "https://evil.example"),
        ],
        "/replay",
        &form,
    )
    .await;
    assert_eq!(elsewhere.status, 403);
    let done = post(
        &server,
        &[("x-user", "admin"), ("cookie", &cookie)],
        "/replay",
        &form,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        inbox
            .inbox
            .show("evt_dead", false)
            .await
            .unwrap()
            .unwrap()
            .state,
        InboxState::Pending
    );
}

/// The list page's cost on an inbox of 100,000 entries against one of 100: a figure for the
/// docs, not a timed test (`cargo test -p nextgen-tests --release --test inbox_page --
/// --ignored --nocapture`).
#[actix_rt::test]
#[ignore = "a measurement: run it by hand"]
async fn measure_the_list_page_on_100k_entries() {
    use std::time::Instant;

    async fn median_ms(server: &support::TestServer, path: &str) -> f64 {
        let mut times = Vec::new();
        for _ in 0..25 {
            let started = Instant::now();
            let reply = get(server, Some("viewer"), path).await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    let mut rows = Vec::new();
    for size in [100usize, 100_000] {
        let inbox = FilledInbox::new(0).await;
        let started = Instant::now();
        for chunk in (0..size).collect::<Vec<_>>().chunks(2_000) {
            let appends = chunk
                .iter()
                .map(|n| inbox.append_unordered(format!("evt_bulk_{n:06}")));
            futures_util::future::join_all(appends).await;
        }
        eprintln!(
            "{size} entries written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let server = inbox.serve();
        // A cursor deep in the list: the bulk entries share one receipt time (the clock's, after
        // the fixture's four), so they are listed by id, descending; evt_bulk_000049 is near the end.
        let deep = format!("/entries?after={}:evt_bulk_000049", inbox.now());
        let paths = [
            ("first page", "/entries".to_owned()),
            ("dead letters", "/entries?state=dead".to_owned()),
            ("a deep page", deep),
            ("by event id", "/entries?id=evt_bulk_000050".to_owned()),
            ("overview", String::new()),
        ];
        for (name, path) in paths {
            rows.push((size, name, median_ms(&server, &path).await));
        }
    }
    for (size, name, ms) in &rows {
        let small = rows
            .iter()
            .find(|(other, n, _)| *other == 100 && n == name)
            .map_or(f64::NAN, |(_, _, ms)| *ms);
        eprintln!(
            "{size:>7} entries  {name:<13} {ms:>8.2} ms  ({:.2}x the 100-entry inbox)",
            ms / small
        );
    }
}

/// The page over a shared inbox: counts, the dead letter listed, a replay done; the chart
/// where the store keeps an hourly history, the page's own word where it does not.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn the_page_over<I>(inbox: I, keeps_history: bool)
where
    I: nextgen_events::inbox::Inbox + nextgen_events::inbox::InboxOperator + Clone,
{
    use nextgen_events::inbox::{Finish, HandlerFailure};

    let now = support::now() * 1000;
    for id in ["evt_shared_dead", "evt_shared_pending"] {
        inbox
            .append(support::charge_entry(id, now, support::SECRET))
            .await
            .unwrap();
    }
    let taken = inbox
        .take(std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.entry.event_id, "evt_shared_dead");
    let errors = vec![HandlerFailure {
        handler: "book_charge".to_owned(),
        error: "<b>ledger</b> down".to_owned(),
    }];
    let finish = Finish::Dead { errors };
    assert!(
        inbox
            .finish("evt_shared_dead", taken.token, finish)
            .await
            .unwrap()
    );

    let operator: std::sync::Arc<dyn nextgen_events::inbox::InboxOperator> =
        std::sync::Arc::new(inbox.clone());
    let server = support::TestServer::start_with(move |service| {
        nextgen_events::actix::inbox_page(BASE, std::sync::Arc::clone(&operator), page::access)(
            service,
        );
    });
    let overview = get(&server, Some("viewer"), "").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview.body.contains("id=\"count-pending\">1</dd>"),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("id=\"count-dead\">1</dd>"),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("&lt;b&gt;ledger&lt;/b&gt; down"));
    assert_eq!(overview.body.contains("<svg id=\"chart\""), keeps_history);
    assert_eq!(overview.body.contains("id=\"no-history\""), !keeps_history);

    let dead = get(&server, Some("viewer"), "/entries?state=dead").await;
    assert!(
        dead.body.contains("/entry?id=evt_shared_dead"),
        "{}",
        dead.body
    );
    assert!(!dead.body.contains("evt_shared_pending"));

    let confirm = get(
        &server,
        Some("admin"),
        "/confirm?action=replay&id=evt_shared_dead",
    )
    .await;
    let done = post(
        &server,
        &[
            ("x-user", "admin"),
            ("cookie", &confirm.cookie()),
            ("sec-fetch-site", "same-origin"),
        ],
        "/replay",
        &[("token", &confirm.token()), ("id", "evt_shared_dead")],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let record = inbox.show("evt_shared_dead", false).await.unwrap().unwrap();
    assert_eq!(record.state, InboxState::Pending);
}

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn the_page_works_on_a_redis_inbox_and_says_it_keeps_no_history() {
    let Some(url) = nextgen_tests::services::redis_url("the inbox page on Redis") else {
        return;
    };
    let prefix = nextgen_tests::services::unique_prefix("inbox-page");
    let inbox = nextgen_events::redis::RedisInbox::connect(&url, prefix)
        .await
        .unwrap();
    the_page_over(inbox, false).await;
}

#[cfg(feature = "postgres")]
#[actix_rt::test]
async fn the_page_works_on_a_postgres_inbox_with_its_chart() {
    let Some(url) = nextgen_tests::services::postgres_url("the inbox page on PostgreSQL") else {
        return;
    };
    let schema = nextgen_tests::services::unique_schema("inbox_page");
    let inbox = nextgen_events::postgres::PgInbox::connect(&url, &schema)
        .await
        .unwrap();
    the_page_over(inbox, true).await;
}
