//! The `inbox` binary, run for real against a SQLite inbox file filled through the library.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nextgen_events::inbox::{Finish, HandlerFailure, Inbox, InboxEntry};
use nextgen_events::sqlite::SqliteInbox;
use serde_json::Value;

/// 2026-11-20T08:00:00Z: the first entry's received time; the others follow a minute apart.
const BASE_MS: u64 = 1_795_161_600_000;
const MINUTE_MS: u64 = 60_000;
/// 2100-01-01T00:00:00Z: when the retrying entry is due again (never, in a test).
const RETRY_AT_MS: u64 = 4_102_444_800_000;
const LEASE: Duration = Duration::from_secs(3600);

/// A fresh path in the temporary directory, removed (with its WAL files) when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "nextgen-inbox-cli-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        TempPath(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn failure(handler: &str, error: &str) -> Vec<HandlerFailure> {
    vec![HandlerFailure {
        handler: handler.to_owned(),
        error: error.to_owned(),
    }]
}

fn body(id: &str, event_type: &str) -> String {
    format!(r#"{{"id":"{id}","type":"{event_type}","data":{{"object":{{}}}}}}"#)
}

/// An inbox file with, oldest first:
/// `evt_1` handled, `evt_2` dead, `evt_3` retrying, `evt_4` dead, `evt_5` running,
/// `evt_6` pending.
fn filled_inbox() -> TempPath {
    let path = TempPath::new("inbox.sqlite3");
    let types = [
        "charge.succeeded",
        "charge.failed",
        "charge.failed",
        "refund.created",
        "charge.succeeded",
        "charge.failed",
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let inbox = SqliteInbox::open(&path.0).unwrap();
        for (index, event_type) in types.iter().enumerate() {
            let id = format!("evt_{}", index + 1);
            let received_at_ms = BASE_MS + MINUTE_MS * index as u64;
            inbox
                .append(InboxEntry {
                    body: body(&id, event_type).into_bytes(),
                    event_id: id,
                    event_type: (*event_type).to_owned(),
                    signed_at: received_at_ms / 1000,
                    received_at_ms,
                })
                .await
                .unwrap();
        }
        // Entries are taken oldest first.
        let finishes = [
            Some(Finish::Handled),
            Some(Finish::Dead {
                errors: failure("send_receipt", "smtp: connection refused"),
            }),
            Some(Finish::Retry {
                at_ms: RETRY_AT_MS,
                errors: failure("update_ledger", &format!("ledger down: {}", "x".repeat(80))),
            }),
            Some(Finish::Dead {
                errors: failure("(payload)", "missing field `amount`"),
            }),
            None,
        ];
        for (index, finish) in finishes.into_iter().enumerate() {
            let taken = inbox.take(LEASE).await.unwrap().unwrap();
            assert_eq!(taken.entry.event_id, format!("evt_{}", index + 1));
            if let Some(finish) = finish {
                let id = taken.entry.event_id;
                assert!(inbox.finish(&id, taken.token, finish).await.unwrap());
            }
        }
    });
    path
}

fn inbox_tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inbox"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the tool on `path` with `args` and `--json`; expects success and parses stdout.
fn json(path: &Path, args: &[&str]) -> Value {
    let output = on(path, &[args, &["--json"]].concat());
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn on(path: &Path, args: &[&str]) -> Output {
    let path = path.to_str().unwrap();
    inbox_tool(&[&["--sqlite", path], args].concat())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            record
                .as_str()
                .unwrap_or_else(|| record["event_id"].as_str().unwrap())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn stats_counts_each_state() {
    let path = filled_inbox();
    let stats = json(&path.0, &["stats"]);
    assert_eq!(
        stats,
        serde_json::json!({"pending": 1, "retrying": 1, "running": 1, "handled": 1, "dead": 2})
    );
    let text = on(&path.0, &["stats"]);
    assert!(text.status.success());
    assert!(stdout(&text).contains("dead      2"), "{}", stdout(&text));
}

#[test]
fn list_is_newest_first_and_filters() {
    let path = filled_inbox();
    let all = json(&path.0, &["list"]);
    assert_eq!(
        ids(&all),
        ["evt_6", "evt_5", "evt_4", "evt_3", "evt_2", "evt_1"]
    );
    let dead = &all[2];
    assert_eq!(dead["event_type"], "refund.created");
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["attempts"], 1);
    assert_eq!(dead["received_at_ms"], BASE_MS + 3 * MINUTE_MS);
    assert_eq!(dead["last_errors"][0]["handler"], "(payload)");
    assert!(dead.get("body").is_none());

    assert_eq!(
        ids(&json(&path.0, &["list", "--state", "dead"])),
        ["evt_4", "evt_2"]
    );
    assert_eq!(
        ids(&json(&path.0, &["list", "--state", "retrying"])),
        ["evt_3"]
    );
    assert_eq!(
        ids(&json(&path.0, &["list", "--type", "charge.failed"])),
        ["evt_6", "evt_3", "evt_2"]
    );
    assert_eq!(
        ids(&json(
            &path.0,
            &["list", "--type", "charge.failed", "--state", "dead"]
        )),
        ["evt_2"]
    );
    assert_eq!(
        ids(&json(&path.0, &["list", "--limit", "2"])),
        ["evt_6", "evt_5"]
    );
    assert_eq!(
        json(&path.0, &["list", "--type", "nothing.here"]),
        Value::Array(vec![])
    );

    let text = on(&path.0, &["list"]);
    assert!(text.status.success());
    let text = stdout(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].starts_with("ID"), "{text}");
    assert!(lines[1].starts_with("evt_6"), "{text}");
    let evt_2 = lines[5];
    for part in [
        "evt_2",
        "charge.failed",
        "dead",
        "2026-11-20T08:01:00Z",
        "send_receipt: smtp: connection refused",
    ] {
        assert!(evt_2.contains(part), "{evt_2}");
    }
    // A long error is shortened.
    assert!(
        lines[4].contains("update_ledger: ledger down: xx"),
        "{text}"
    );
    assert!(lines[4].ends_with('…'), "{text}");
    assert!(!lines[6].contains("smtp"), "{text}");

    let bad = on(&path.0, &["list", "--state", "lost"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("unknown state `lost`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn show_has_the_errors_and_the_body_only_when_asked() {
    let path = filled_inbox();
    let record = json(&path.0, &["show", "evt_2"]);
    assert_eq!(record["event_id"], "evt_2");
    assert_eq!(record["state"], "dead");
    assert_eq!(record["attempts"], 1);
    assert_eq!(
        record["last_errors"],
        serde_json::json!([{"handler": "send_receipt", "error": "smtp: connection refused"}])
    );
    assert!(record["finished_at_ms"].is_u64());
    assert!(record.get("body").is_none());

    let with_body = json(&path.0, &["show", "evt_2", "--body"]);
    assert_eq!(with_body["body"], body("evt_2", "charge.failed"));

    let text = stdout(&on(&path.0, &["show", "evt_3"]));
    for part in [
        "id:           evt_3",
        "state:        retrying",
        "received:     2026-11-20T08:02:00Z",
        "update_ledger: ledger down",
        "(--body shows it)",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains(r#""id":"evt_3""#), "{text}");
    let text = stdout(&on(&path.0, &["show", "evt_3", "--body"]));
    assert!(text.contains(r#""id":"evt_3""#), "{text}");

    let unknown = on(&path.0, &["show", "evt_nope", "--json"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(unknown.stdout.is_empty());
    assert_eq!(
        stderr(&unknown).trim(),
        "error: unknown event id `evt_nope`"
    );
}

#[test]
fn replay_puts_entries_back_to_pending() {
    let path = filled_inbox();
    let replayed = json(&path.0, &["replay", "evt_2", "evt_1"]);
    assert_eq!(ids(&replayed["replayed"]), ["evt_2", "evt_1"]);
    for id in ["evt_1", "evt_2"] {
        let record = json(&path.0, &["show", id]);
        assert_eq!(record["state"], "pending", "{id}");
        assert_eq!(record["attempts"], 0, "{id}");
    }
    assert_eq!(json(&path.0, &["stats"])["pending"], 3);

    // Known ids are replayed, then the unknown and running ones fail.
    let mixed = on(&path.0, &["replay", "evt_4", "evt_nope", "evt_5"]);
    assert_eq!(mixed.status.code(), Some(1));
    let errors = stderr(&mixed);
    assert!(
        errors.contains("error: unknown event id `evt_nope`"),
        "{errors}"
    );
    assert!(errors.contains("`evt_5` was not replayed"), "{errors}");
    let text = stdout(&mixed);
    assert!(text.contains("replayed evt_4"), "{text}");
    assert!(
        text.contains("handlers that already succeeded stay skipped"),
        "{text}"
    );
    assert_eq!(json(&path.0, &["show", "evt_4"])["state"], "pending");
    assert_eq!(json(&path.0, &["show", "evt_5"])["state"], "running");

    let mixed = on(&path.0, &["replay", "evt_3", "evt_nope", "--json"]);
    assert_eq!(mixed.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&mixed.stdout).unwrap();
    assert_eq!(
        document,
        serde_json::json!({"replayed": ["evt_3"], "unknown": ["evt_nope"], "running": []})
    );

    let usage = on(&path.0, &["replay"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("--dead"), "{}", stderr(&usage));
}

#[test]
fn replay_dead_since_a_time() {
    let path = filled_inbox();
    // evt_2 was received at 08:01, evt_4 at 08:03.
    let since = json(
        &path.0,
        &["replay", "--dead", "--since", "2026-11-20T08:02:00Z"],
    );
    assert_eq!(ids(&since["replayed"]), ["evt_4"]);
    assert_eq!(json(&path.0, &["show", "evt_4"])["state"], "pending");
    assert_eq!(json(&path.0, &["show", "evt_2"])["state"], "dead");

    let later = (BASE_MS + 10 * MINUTE_MS) / 1000;
    let none = on(
        &path.0,
        &["replay", "--dead", "--since", &later.to_string()],
    );
    assert!(none.status.success());
    assert!(stdout(&none).contains("no dead letters received since 2026-11-20T08:10:00Z"));

    let in_seconds = (BASE_MS + MINUTE_MS) / 1000;
    let text = on(
        &path.0,
        &["replay", "--dead", "--since", &in_seconds.to_string()],
    );
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("replayed evt_2"),
        "{}",
        stdout(&text)
    );
    assert_eq!(json(&path.0, &["stats"])["dead"], 0);
    assert_eq!(
        json(&path.0, &["replay", "--dead"]),
        serde_json::json!({"replayed": []})
    );

    let bad = on(&path.0, &["replay", "--dead", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
}

#[test]
fn a_missing_file_is_not_created() {
    let path = TempPath::new("missing.sqlite3");
    let output = on(&path.0, &["stats"]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert!(errors.contains("no inbox at"), "{errors}");
    assert!(errors.contains("NEXTGEN_INBOX_SQLITE"), "{errors}");
    assert!(!path.0.exists());
}

#[test]
fn a_directory_or_another_file_is_refused() {
    let dir = TempPath::new("dir");
    std::fs::create_dir(&dir.0).unwrap();
    let output = on(&dir.0, &["stats"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("could not open the inbox at"),
        "{}",
        stderr(&output)
    );

    let text = TempPath::new("notes.txt");
    let content = "not a database, just some notes that are long enough to look like a header\n";
    std::fs::write(&text.0, content).unwrap();
    let output = on(&text.0, &["list"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("could not open the inbox at"), "{errors}");
    assert!(errors.contains("not a database"), "{errors}");
    assert_eq!(std::fs::read_to_string(&text.0).unwrap(), content);
}

#[test]
fn the_inbox_must_be_named_and_redis_is_not_there_yet() {
    let none = inbox_tool(&["stats"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("--sqlite PATH"), "{}", stderr(&none));

    let redis = inbox_tool(&[
        "--redis",
        "redis://127.0.0.1:6379/",
        "--prefix",
        "nextgen",
        "stats",
        "--json",
    ]);
    assert_eq!(redis.status.code(), Some(2));
    assert!(redis.stdout.is_empty());
    assert_eq!(
        stderr(&redis).trim(),
        "error: the Redis inbox is not available in this version yet: use --sqlite"
    );
}
