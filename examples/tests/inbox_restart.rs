//! Inbox mode survives `kill -9`: the real `server` binary, a real SQLite file, SIGKILL, and a
//! restart that handles everything that was acknowledged.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use nextgen_events::inbox::Inbox;
use nextgen_events::sign;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_examples::{TEST_SECRET, sample};
use nextgen_tests::services::TempFile;

/// The example server in inbox mode on `path`, its output lines on a channel.
struct Server {
    child: Child,
    lines: Receiver<String>,
    url: String,
}

impl Server {
    fn start(path: &Path, workers: usize) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("NEXTGEN_INBOX_SQLITE", path)
            .env("NEXTGEN_INBOX_WORKERS", workers.to_string())
            .env_remove("NEXTGEN_WEBHOOK_SECRET")
            .env_remove("NEXTGEN_REDIS_URL")
            .env_remove("NEXTGEN_STORE_SQLITE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("the server started");
            let line = lines.recv_timeout(left).unwrap();
            if let Some(url) = line.split("receiving NextGen webhooks at ").nth(1) {
                break url.trim().to_owned();
            }
        };
        Server { child, lines, url }
    }

    /// SIGKILL: no shutdown, no flush, nothing the process could still do.
    fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.lines.try_iter().collect()
    }

    /// Collects output until `done` says enough, up to 20 s.
    fn collect_until(&self, seen: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(seen) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("gave up waiting; output so far:\n{}", seen.join("\n")));
            if let Ok(line) = self.lines.recv_timeout(left) {
                seen.push(line);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deliver(url: &str, id: &str) {
    let mut event = sample("charge.succeeded").unwrap();
    event["id"] = id.into();
    let body = event.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let response = reqwest::blocking::Client::new()
        .post(url)
        .header("NextGen-Signature", sign(body.as_bytes(), TEST_SECRET, now))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{id}");
}

/// How many times the audit handler ran for each of `ids`, from the servers' output.
fn audits(lines: &[String], ids: &[String]) -> HashMap<String, usize> {
    ids.iter()
        .map(|id| {
            let needle = format!("audit: {id} charge.succeeded");
            (
                id.clone(),
                lines.iter().filter(|line| line.contains(&needle)).count(),
            )
        })
        .collect()
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
    let server = Server::start(&file.0, 0);
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
    let server = Server::start(&file.0, 2);
    server.collect_until(&mut lines, |lines| {
        audits(lines, &ids).values().all(|runs| *runs >= 1)
    });
    std::thread::sleep(Duration::from_millis(300));
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
    let server = Server::start(&file.0, 2);
    for id in &ids {
        deliver(&server.url, id);
    }
    // Killed while its workers are still at it.
    let mut lines = server.kill();
    let at_kill = stats(&file.0);
    let server = Server::start(&file.0, 2);
    server.collect_until(&mut lines, |lines| {
        audits(lines, &ids).values().all(|runs| *runs >= 1)
    });
    std::thread::sleep(Duration::from_millis(300));
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
