//! The example server in inbox mode on Redis (`NEXTGEN_INBOX_REDIS`): the real `server`
//! binary, two replicas on one prefix, and a replica killed with SIGKILL after acknowledging
//! deliveries that the other then handles.
//!
//! Needs the feature `redis-tests` and `NEXTGEN_TEST_REDIS_URL`, like `tests/inbox_cli.rs`.
//!
//! ```text
//! NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test -p nextgen-examples --features redis-tests --test redis_inbox_server
//! ```

#![cfg(feature = "redis-tests")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nextgen_events::inbox::{Inbox, InboxStats};
use nextgen_events::redis::RedisInbox;
use nextgen_events::sign;
use nextgen_examples::{TEST_SECRET, sample};
use nextgen_tests::services::redis_url;

/// A key prefix no other test or run uses.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("nextgen-server-test:{test}:{}:{nanos}", std::process::id())
}

/// The example server in inbox mode on Redis, its output lines on a channel.
struct Server {
    child: Child,
    lines: Receiver<String>,
    url: String,
}

impl Server {
    fn start(redis: &str, prefix: &str, workers: usize) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("NEXTGEN_INBOX_REDIS", redis)
            .env("NEXTGEN_INBOX_PREFIX", prefix)
            .env("NEXTGEN_INBOX_WORKERS", workers.to_string())
            .env_remove("NEXTGEN_WEBHOOK_SECRET")
            .env_remove("NEXTGEN_REDIS_URL")
            .env_remove("NEXTGEN_STORE_SQLITE")
            .env_remove("NEXTGEN_INBOX_SQLITE")
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
            assert!(!line.contains("error"), "{line}");
            if let Some(url) = line.split("receiving NextGen webhooks at ").nth(1) {
                break url.trim().to_owned();
            }
        };
        Server { child, lines, url }
    }

    /// SIGKILL: no shutdown, nothing the process could still do.
    fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.lines.try_iter().collect()
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
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

/// The inbox's counts, read through the library.
fn stats(url: &str, prefix: &str) -> InboxStats {
    actix_web::rt::System::new().block_on(async {
        let inbox = RedisInbox::connect_existing(url, prefix)
            .await
            .unwrap()
            .expect("the server created the inbox");
        inbox.stats().await.unwrap()
    })
}

/// Waits (up to 20 s) until every one of `count` deliveries is handled.
fn until_handled(url: &str, prefix: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = stats(url, prefix);
        if stats.handled == count {
            assert_eq!(
                stats,
                InboxStats {
                    handled: count,
                    ..InboxStats::default()
                }
            );
            return;
        }
        assert!(Instant::now() < deadline, "not all handled: {stats:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_share_the_inbox_and_one_killed_after_the_200_loses_nothing() {
    let Some(redis) = redis_url("the example server on a Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    let ids: Vec<String> = (0..30).map(|n| format!("evt_redis_kill_{n:03}")).collect();

    // A replica that only takes deliveries in, killed right after the last 200.
    let intake = Server::start(&redis, &prefix, 0);
    for id in &ids {
        deliver(&intake.url, id);
    }
    let mut lines = intake.kill();
    assert_eq!(stats(&redis, &prefix).pending, 30);

    // Two replicas with workers: everything handled, each handler once; a redelivery to
    // either adds nothing.
    let a = Server::start(&redis, &prefix, 2);
    let b = Server::start(&redis, &prefix, 2);
    until_handled(&redis, &prefix, 30);
    for id in &ids[..5] {
        deliver(&a.url, id);
        deliver(&b.url, id);
    }
    std::thread::sleep(Duration::from_millis(300));
    until_handled(&redis, &prefix, 30);
    lines.extend(a.kill());
    lines.extend(b.kill());
    let runs = audits(&lines, &ids);
    assert!(runs.values().all(|runs| *runs == 1), "{runs:?}");
}
