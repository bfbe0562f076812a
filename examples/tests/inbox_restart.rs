//! Inbox mode survives `kill -9`: the real `server` binary, a real SQLite file, SIGKILL, and a
//! restart that handles everything that was acknowledged.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use nextgen_events::inbox::InboxOperator;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_tests::services::TempFile;
use support::{Server, audits, deliver, until_handled};

/// The example server in inbox mode on `path` with `workers` workers.
fn start(path: &Path, workers: usize) -> Server {
    let path = path.display().to_string();
    let workers = workers.to_string();
    Server::start(&[
        ("NEXTGEN_INBOX_SQLITE", &path),
        ("NEXTGEN_INBOX_WORKERS", &workers),
    ])
}

fn stats(path: &Path) -> nextgen_events::inbox::InboxStats {
    let inbox = SqliteInbox::open(path).unwrap();
    actix_web::rt::System::new()
        .block_on(inbox.stats())
        .unwrap()
}

#[test]
fn acknowledged_deliveries_survive_sigkill_and_are_handled_once_after_the_restart() {
    let file = TempFile::new("kill");
    let ids: Vec<String> = (0..40).map(|n| format!("evt_kill_{n:03}")).collect();

    // A server that only takes deliveries in, killed right after the last 200.
    let server = start(&file.0, 0);
    for id in &ids {
        deliver(&server.url, id);
    }
    let mut lines = server.kill();
    let before = stats(&file.0);
    assert_eq!(
        before.pending, 40,
        "every acknowledged delivery is in the file: {before:?}"
    );

    // Started again with workers: each delivery handled, each handler once.
    let server = start(&file.0, 2);
    server.collect_until(&mut lines, |lines| {
        audits(lines, &ids).values().all(|runs| *runs >= 1)
    });
    until_handled(40, Duration::from_secs(20), || stats(&file.0));
    lines.extend(server.kill());
    let runs = audits(&lines, &ids);
    assert!(runs.values().all(|runs| *runs == 1), "{runs:?}");
    let charges = lines
        .iter()
        .filter(|line| line.contains("charge ch_1J2k3L4m5N6o succeeded"))
        .count();
    assert_eq!(charges, 40);
    assert_eq!(stats(&file.0).handled, 40);
}

#[test]
fn a_kill_while_handling_loses_nothing() {
    let file = TempFile::new("kill-busy");
    let ids: Vec<String> = (0..60).map(|n| format!("evt_busy_{n:03}")).collect();
    let server = start(&file.0, 2);
    for id in &ids {
        deliver(&server.url, id);
    }
    // Killed while its workers are still at it.
    let mut lines = server.kill();
    let at_kill = stats(&file.0);
    let server = start(&file.0, 2);
    server.collect_until(&mut lines, |lines| {
        audits(lines, &ids).values().all(|runs| *runs >= 1)
    });
    until_handled(60, Duration::from_secs(20), || stats(&file.0));
    lines.extend(server.kill());
    assert_eq!(stats(&file.0).handled, 60, "at the kill: {at_kill:?}");
    // A handler the kill interrupted after it ran, but before its success was committed, runs
    // again: at most one delivery per worker.
    let again = audits(&lines, &ids)
        .values()
        .filter(|runs| **runs > 1)
        .count();
    assert!(
        again <= 2,
        "{again} deliveries ran twice; at the kill: {at_kill:?}"
    );
    println!("at the kill: {at_kill:?}; ran twice: {again}");
}

/// How many times the run log holds `id` (each handler run appends a line once it is done).
fn logged_runs(log: &Path, id: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(id))
        .count()
}

/// SIGTERM with a stop timeout shorter than the running handler: the stop names the delivery
/// it left, the process exits without acknowledging the handler's success, and the next
/// start runs it once more, and only once.
#[test]
fn a_stop_shorter_than_a_running_handler_names_it_and_the_restart_runs_it_once() {
    let file = TempFile::new("short-stop");
    let log = TempFile::new("short-stop-runs");
    let id = "evt_short_stop";
    let start = |delay_ms: &str| {
        Server::start(&[
            ("NEXTGEN_INBOX_SQLITE", &file.0.display().to_string()),
            ("NEXTGEN_INBOX_WORKERS", "1"),
            ("NEXTGEN_RUN_LOG", &log.0.display().to_string()),
            ("NEXTGEN_HANDLER_DELAY_MS", delay_ms),
            ("NEXTGEN_STOP_TIMEOUT_MS", "200"),
        ])
    };
    let server = start("10000");
    deliver(&server.url, id);
    server.wait_for(&format!("audit: {id}"));
    let lines = server.terminate();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("ran out of time") && line.contains(id)),
        "the stop does not name the delivery it left:\n{}",
        lines.join("\n")
    );
    assert_eq!(logged_runs(&log.0, id), 0, "the handler had not finished");

    let server = start("0");
    let deadline = Instant::now() + Duration::from_secs(20);
    while logged_runs(&log.0, id) == 0 {
        assert!(Instant::now() < deadline, "never ran again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines = server.terminate();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("the webhook endpoint stopped")),
        "{}",
        lines.join("\n")
    );
    assert_eq!(logged_runs(&log.0, id), 1);
    assert_eq!(stats(&file.0).handled, 1);
}

/// The server opens its inbox by URL through the library's opener (`NEXTGEN_INBOX_URL`), and
/// refuses a URL of a scheme no backend has, naming the known ones, before it listens.
#[test]
fn the_inbox_is_opened_by_its_url_and_an_unknown_scheme_stops_the_start() {
    let file = TempFile::new("by-url");
    let url = format!("sqlite:{}", file.0.display());
    let server = Server::start(&[("NEXTGEN_INBOX_URL", &url), ("NEXTGEN_INBOX_WORKERS", "1")]);
    assert!(
        server
            .startup
            .iter()
            .any(|line| line.contains("inbox mode") && line.contains(&url)),
        "{}",
        server.startup.join("\n")
    );
    let id = "evt_by_url".to_owned();
    deliver(&server.url, &id);
    let mut lines = Vec::new();
    server.collect_until(&mut lines, |lines| {
        audits(lines, std::slice::from_ref(&id))[&id] >= 1
    });
    // A graceful stop: the worker records the outcome before the process exits.
    server.terminate();
    assert_eq!(stats(&file.0).handled, 1);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("NEXTGEN_INBOX_URL", "ftp://files/inbox")
        .env("PORT", "0")
        .env_remove("NEXTGEN_WEBHOOK_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let errors = String::from_utf8_lossy(&output.stderr);
    for known in ["NEXTGEN_INBOX_URL", "`ftp:`", "sqlite:PATH", "redis://"] {
        assert!(errors.contains(known), "{errors}");
    }
}

/// `NEXTGEN_INBOX_DURABILITY=normal` reaches the SQLite file (the benchmark's `normal` row relies
/// on it): the server names the durability it opened the inbox with.
#[test]
fn the_inbox_durability_setting_is_applied() {
    let file = TempFile::new("durability");
    let path = file.0.display().to_string();
    let server = Server::start(&[
        ("NEXTGEN_INBOX_SQLITE", &path),
        ("NEXTGEN_INBOX_WORKERS", "0"),
        ("NEXTGEN_INBOX_DURABILITY", "normal"),
    ]);
    assert!(
        server
            .startup
            .iter()
            .any(|line| line.contains(&format!("sqlite:{path}?synchronous=normal"))),
        "{}",
        server.startup.join("\n")
    );
    drop(server);
    let server = Server::start(&[
        ("NEXTGEN_INBOX_SQLITE", &path),
        ("NEXTGEN_INBOX_WORKERS", "0"),
    ]);
    assert!(
        !server
            .startup
            .iter()
            .any(|line| line.contains("synchronous=normal")),
        "{}",
        server.startup.join("\n")
    );
}
