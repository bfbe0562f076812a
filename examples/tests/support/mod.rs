//! Shared by the examples' tests: the real `server` binary as a child process, and signed
//! sample deliveries.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nextgen_events::inbox::InboxStats;
use nextgen_events::sign;
use nextgen_events::testing::sample;
use nextgen_examples::TEST_SECRET;

/// The environment variables that choose the server's mode: cleared unless a test sets them.
const MODES: [&str; 9] = [
    "NEXTGEN_WEBHOOK_SECRET",
    "NEXTGEN_REDIS_URL",
    "NEXTGEN_STORE_SQLITE",
    "NEXTGEN_STORE_URL",
    "NEXTGEN_INBOX_SQLITE",
    "NEXTGEN_INBOX_REDIS",
    "NEXTGEN_INBOX_URL",
    "NEXTGEN_METRICS",
    "NEXTGEN_BENCH_ROUTES",
];

/// The example server on a free loopback port with the test secret, its output lines on a
/// channel; killed when dropped.
pub struct Server {
    child: Child,
    lines: Receiver<String>,
    /// The webhook URL it printed.
    pub url: String,
    /// What it printed before the URL (start-up).
    pub startup: Vec<String>,
}

impl Server {
    /// Starts it with `environment` on top of a clean one, and waits for its URL.
    pub fn start(environment: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        for name in MODES {
            command.env_remove(name);
        }
        let mut child = command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .envs(environment.iter().copied())
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
        let mut server = Server {
            child,
            lines,
            url: String::new(),
            startup: Vec::new(),
        };
        let line = server.wait_for_keeping("receiving NextGen webhooks at ");
        server.url = line
            .split("receiving NextGen webhooks at ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        server
    }

    /// [`wait_for`](Self::wait_for), keeping the lines before it in `startup`.
    fn wait_for_keeping(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => self.startup.push(line),
                Err(_) => break,
            }
        }
        panic!(
            "the server never printed `{needle}`; it printed:\n{}",
            self.startup.join("\n")
        );
    }

    /// Waits up to 20 s for an output line containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("the server never printed `{needle}`");
    }

    /// Adds output lines to `seen` until `done` says enough, up to 20 s.
    pub fn collect_until(&self, seen: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
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

    /// SIGKILL: no shutdown, no flush, nothing the process could still do. Returns the output
    /// lines not read yet.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.rest()
    }

    /// The output lines not read yet, once the process has exited: every one up to its
    /// stdout's end, where the reader thread stops (a line it had not passed on yet is not
    /// left behind).
    fn rest(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines
    }
}

impl Server {
    /// SIGTERM, as a container runtime stops a process, then waits for it to exit. Returns
    /// the output lines not read yet.
    pub fn terminate(mut self) -> Vec<String> {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the server did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.rest()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts a signed `charge.succeeded` sample with event id `id` and expects a 200.
pub fn deliver(url: &str, id: &str) {
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

/// How many times the example's audit handler ran for each of `ids`, from server output.
pub fn audits(lines: &[String], ids: &[String]) -> HashMap<String, usize> {
    ids.iter()
        .map(|id| {
            let needle = format!("audit: {id} charge.succeeded");
            let runs = lines.iter().filter(|line| line.contains(&needle)).count();
            (id.clone(), runs)
        })
        .collect()
}

/// Waits (up to `within`) until `stats` reads `count` entries handled and nothing else left:
/// every handler of every delivery has returned, and printed what it prints, before its
/// outcome is written.
pub fn until_handled(count: u64, within: Duration, stats: impl Fn() -> InboxStats) {
    let deadline = Instant::now() + within;
    loop {
        let stats = stats();
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
        std::thread::sleep(Duration::from_millis(20));
    }
}
