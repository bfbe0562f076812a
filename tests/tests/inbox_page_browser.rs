//! The inbox page in a real browser: a headless Chromium, driven through chromedriver
//! (WebDriver), reads the overview's counts, follows the links to a dead letter, replays it
//! through the confirmation and sees it pending. Screenshots of the overview and of the entry
//! go to `target/inbox-page/`.
//!
//! It needs `/usr/bin/chromedriver` and `/usr/bin/chromium` (the Debian packages
//! `chromium-driver` and `chromium`, which .ci/run installs): without them it is skipped, and
//! under CI (`CI` set) it fails.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

#[path = "support/page.rs"]
mod page;
mod support;

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use nextgen_events::admin::PageAccess;
use nextgen_events::idempotency::{Claim, IdempotencyStore as _};
use nextgen_events::inbox::{InboxOperator as _, InboxState};
use page::FilledInbox;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const BASE: &str = "/ops/inbox";
/// The fixture's pending entries (besides one retrying, two dead and one handled).
const PENDING: usize = 7;
/// How long chromedriver may take to say it listens.
const DRIVER_START: Duration = Duration::from_secs(30);

/// The test app's access rule. The app's own rule decides who may use the page; the HTTP
/// tests' rule reads an `x-user` header, which a browser cannot send, so this one gives full
/// access to requests from loopback, the only place the test server listens on.
fn loopback(request: &HttpRequest) -> PageAccess {
    match request.peer_addr() {
        Some(peer) if peer.ip().is_loopback() => PageAccess::full("on call (loopback)"),
        _ => PageAccess::Deny,
    }
}

#[actix_rt::test]
async fn an_operator_reads_the_counts_and_replays_a_dead_letter_in_chromium() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    // Received over the last hours of the real clock, so that the page (which reads the time
    // now) draws them in its 24-hour chart, as the README's screenshot shows it.
    let hour = 3_600_000;
    let start = support::now() * 1000 / hour * hour - 5 * hour;
    let inbox = FilledInbox::new_at(start, 20 * 60_000, PENDING).await;
    let server = inbox.serve_with(loopback);
    // Dropped in reverse: chromedriver (and any browser left) ends before its profile goes.
    let profile = Profile::new();
    let driver = ChromeDriver::start().await;
    let client = driver.session(&profile.0).await;
    // A failed step is raised again once the session is closed: chromedriver then quits the
    // browser itself, and no Chromium outlives the test.
    let walked = AssertUnwindSafe(walk(&client, &inbox, &server))
        .catch_unwind()
        .await;
    let closed = client.close().await;
    if let Err(panic) = walked {
        std::panic::resume_unwind(panic);
    }
    closed.expect("close the browser session");
    println!(
        "inbox page in Chromium: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The operator's walk: overview, dead letters, the entry, replay, confirm, the result, the
/// entry again; then a handled entry's handler run once more.
async fn walk(client: &Client, inbox: &FilledInbox, server: &support::TestServer) {
    let shots = screenshots_dir();

    // The overview: the counts as the page renders them, against the inbox's and the fixture's.
    client.goto(&server.url(BASE)).await.unwrap();
    arrive(client, Locator::Id("count-pending")).await;
    let stats = inbox.operator().stats().await.unwrap();
    for (state, in_inbox, in_fixture) in [
        ("pending", stats.pending, PENDING as u64),
        ("retrying", stats.retrying, 1),
        ("dead", stats.dead, 2),
    ] {
        assert_eq!(in_inbox, in_fixture, "{state} entries in the inbox");
        let id = format!("count-{state}");
        let shown = text(client, Locator::Id(&id)).await;
        assert_eq!(shown, in_inbox.to_string(), "#{id} on the overview");
    }
    screenshot(client, &shots.join("overview.png")).await;

    // The dead letters, from the navigation, then the entry from its link.
    client
        .find(Locator::LinkText("Dead letters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let entries = arrive(client, Locator::Id("entries")).await;
    entries
        .find(Locator::LinkText("evt_dead"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = arrive(client, Locator::Id("state")).await;
    assert_eq!(state.text().await.unwrap(), "dead");
    assert_eq!(text(client, Locator::Id("event-id")).await, "evt_dead");
    screenshot(client, &shots.join("entry.png")).await;

    // Replay, confirmed.
    let replay = client
        .find(Locator::Css("form#replay button[type=submit]"))
        .await
        .unwrap();
    assert_eq!(replay.text().await.unwrap(), "Replay…");
    replay.click().await.unwrap();
    let confirm = arrive(client, Locator::Css("form#confirm button[type=submit]")).await;
    assert_eq!(text(client, Locator::Id("to-replay")).await, "evt_dead");
    assert_eq!(confirm.text().await.unwrap(), "Confirm the replay");
    confirm.click().await.unwrap();

    // What it did: evt_dead, pending now.
    let replayed = arrive(client, Locator::Id("replayed")).await;
    assert_eq!(
        text(client, Locator::Id("result")).await,
        "1 entry put back to pending."
    );
    let rows = replayed.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row.find(Locator::Css("td.id"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "evt_dead"
    );
    assert_eq!(
        row.find(Locator::Css(".state.pending"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pending"
    );

    // The entry again, from the result's link, and in the inbox itself.
    row.find(Locator::LinkText("evt_dead"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = arrive(client, Locator::Id("state")).await;
    assert_eq!(state.text().await.unwrap(), "pending");
    let record = inbox
        .inbox
        .show("evt_dead", false)
        .await
        .unwrap()
        .expect("evt_dead in the inbox");
    assert_eq!(record.state, InboxState::Pending);

    // A handler that succeeded for the handled entry, run once more from the entry's form.
    let handler = "app::book_charge";
    let store = inbox.inbox.store();
    let lease = Duration::from_secs(60);
    let Claim::Claimed(token) = store.claim("evt_handled", handler, lease).await.unwrap() else {
        panic!("a fresh claim");
    };
    assert!(store.complete("evt_handled", handler, token).await.unwrap());
    client
        .goto(&server.url(&format!("{BASE}/entry?id=evt_handled")))
        .await
        .unwrap();
    let field = arrive(client, Locator::Id("rerun-handler")).await;
    field.send_keys(handler).await.unwrap();
    client
        .find(Locator::Css("form#rerun button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = arrive(client, Locator::Css("form#confirm button[type=submit]")).await;
    assert_eq!(confirm.text().await.unwrap(), "Confirm the re-run");
    confirm.click().await.unwrap();
    let result = arrive(client, Locator::Id("result")).await;
    let said = result.text().await.unwrap();
    assert!(
        said.starts_with("app::book_charge runs once more for evt_handled"),
        "{said}"
    );
    screenshot(client, &shots.join("rerun.png")).await;
    let record = inbox
        .inbox
        .show("evt_handled", false)
        .await
        .unwrap()
        .expect("evt_handled in the inbox");
    assert_eq!(record.state, InboxState::Pending);
    assert_eq!(record.reruns.len(), 1, "{record:?}");
}

/// Waits (WebDriver polling the page) until the page that `locator` finds has loaded; when it
/// does not come, fails with where the browser is and what it shows.
async fn arrive(client: &Client, locator: Locator<'_>) -> Element {
    match client.wait().for_element(locator).await {
        Ok(element) => element,
        Err(error) => {
            let url = client.current_url().await.map(String::from);
            let shown = match client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => client.source().await.unwrap_or_default(),
            };
            panic!("waiting for {locator:?}: {error}; the browser is at {url:?}, showing:\n{shown}")
        }
    }
}

async fn text(client: &Client, locator: Locator<'_>) -> String {
    client.find(locator).await.unwrap().text().await.unwrap()
}

async fn screenshot(client: &Client, path: &Path) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(path, png).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    println!("screenshot: {}", path.display());
}

/// `target/inbox-page/` of the workspace (`CARGO_TARGET_DIR` when set), created.
fn screenshots_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
    let dir = target.join("inbox-page");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
    dir
}

/// Whether chromedriver and Chromium are there; when they are not, the test fails under CI and
/// says it is skipped elsewhere.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .filter(|path| !Path::new(path).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing; install the Debian packages `chromium` and `chromium-driver` (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "the inbox page's browser test needs Chromium and chromedriver under CI: {why}"
    );
    println!("skipped the inbox page's browser test: {why}");
    false
}

/// A fresh Chromium profile under the temp dir, removed on drop.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Profile {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "nextgen-inbox-page-chromium-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chromedriver of our own, in a process group of its own, ended with the browsers it
/// started when dropped (a panic included).
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port and waits until it answers.
    async fn start() -> ChromeDriver {
        // Port 0: chromedriver binds a port the system picks (so none can be taken between
        // choosing and binding it) and says which on its standard output.
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("start {CHROMEDRIVER}: {error}"));
        let stdout = child.stdout.take().expect("chromedriver's piped stdout");
        let mut driver = ChromeDriver {
            child,
            url: String::new(),
        };
        // A thread reads its output to the end, so that it never blocks on a full pipe, and
        // hands over the port it announces (or, when it ends first, what it said).
        let (announce, announced) = tokio::sync::oneshot::channel::<Result<u16, String>>();
        std::thread::spawn(move || {
            let mut announce = Some(announce);
            let mut said = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let port = line
                    .strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok());
                match (port, announce.take()) {
                    (Some(port), Some(announce)) => drop(announce.send(Ok(port))),
                    (None, Some(waiting)) => {
                        said.push_str(&line);
                        said.push('\n');
                        announce = Some(waiting);
                    }
                    (_, None) => {}
                }
            }
            if let Some(announce) = announce {
                let _ = announce.send(Err(said));
            }
        });
        let port = match tokio::time::timeout(DRIVER_START, announced).await {
            Ok(Ok(Ok(port))) => port,
            Ok(Ok(Err(said))) => panic!("chromedriver ended without a port; it said:\n{said}"),
            Ok(Err(_)) => panic!("chromedriver's output could not be read"),
            Err(_) => panic!("chromedriver said no port within {DRIVER_START:?}"),
        };
        driver.url = format!("http://127.0.0.1:{port}");
        let status = reqwest::get(format!("{}/status", driver.url))
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|error| {
                panic!("chromedriver at {} does not answer: {error}", driver.url)
            })
            .text()
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).expect(&status);
        assert_eq!(
            status["value"]["ready"], true,
            "chromedriver's status: {status}"
        );
        driver
    }

    /// A new session: headless Chromium with a fresh profile in `profile`.
    async fn session(&self, profile: &Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        // WebDriver is plain HTTP on loopback: no TLS.
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("start Chromium through {}: {error}", self.url))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser it left running (a session that could
        // not be closed); Chromium's processes stay in the group chromedriver started them in.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
