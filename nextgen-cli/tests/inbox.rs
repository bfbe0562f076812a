//! `nextgen inbox`, run for real against inboxes filled through the library: a SQLite
//! file, a Redis inbox on a real `redis-server` and a PostgreSQL inbox on a real server, each
//! command checked the same way on all three.
//!
//! The Redis checks need the feature `redis-tests` and `NEXTGEN_TEST_REDIS_URL` (`.ci/run`
//! starts a server and sets it); with the feature but without the variable they fail, unless
//! `NEXTGEN_SKIP_REDIS_TESTS=1` asks to skip them. The PostgreSQL checks likewise need the
//! feature `postgres-tests` and `NEXTGEN_TEST_POSTGRES_URL` (or `NEXTGEN_SKIP_POSTGRES_TESTS=1`);
//! each uses a fresh schema.
//!
//! ```text
//! NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test -p nextgen-cli --features redis-tests --test inbox
//! NEXTGEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/nextgen_test cargo test -p nextgen-cli --features postgres-tests --test inbox
//! ```

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nextgen_events::inbox::{Finish, HandlerFailure, Inbox, InboxEntry};
#[cfg(feature = "redis-tests")]
use nextgen_tests::services::redis_url;
#[cfg(feature = "postgres-tests")]
use nextgen_tests::services::{postgres_url, unique_schema};
use serde_json::Value;

/// 2026-11-20T08:00:00Z: the first entry's received time; the others follow a minute apart.
const BASE_MS: u64 = 1_795_161_600_000;
const MINUTE_MS: u64 = 60_000;
/// 2100-01-01T00:00:00Z: when the retrying entry is due again (never, in a test).
const RETRY_AT_MS: u64 = 4_102_444_800_000;
const LEASE: Duration = Duration::from_secs(3600);
/// A payload error as the workers record it: the context first, the JSON path and the cause
/// last, longer than `list`'s error column.
const PAYLOAD_ERROR: &str = "the `refund.created` event's payload does not fit `Refund`: data.object.amount: expected i64, found a string";

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

/// An inbox the tool is pointed at: the options naming it, and the file to remove after.
struct Target {
    options: Vec<String>,
    _file: Option<TempPath>,
}

/// Fills `inbox` with, oldest first:
/// `evt_1` handled, `evt_2` dead, `evt_3` retrying, `evt_4` dead, `evt_5` running,
/// `evt_6` pending.
async fn fill(inbox: &dyn Inbox) {
    let types = [
        "charge.succeeded",
        "charge.failed",
        "charge.failed",
        "refund.created",
        "charge.succeeded",
        "charge.failed",
    ];
    {
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
                    signature: None,
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
                errors: failure("(payload)", PAYLOAD_ERROR),
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
    }
}

/// Runs `future` on a runtime of its own.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A filled SQLite inbox file.
#[cfg(feature = "sqlite")]
fn sqlite_inbox() -> Target {
    let path = TempPath::new("inbox.sqlite3");
    block_on(async {
        let inbox = nextgen_events::sqlite::SqliteInbox::open(&path.0).unwrap();
        fill(&inbox).await;
    });
    Target {
        options: vec!["--sqlite".to_owned(), path.0.to_str().unwrap().to_owned()],
        _file: Some(path),
    }
}

/// A key prefix no other test or run uses.
#[cfg(feature = "redis-tests")]
fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "nextgen-cli-test:{test}:{}:{nanos}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A filled Redis inbox under a fresh prefix; `None` when the Redis tests are skipped.
#[cfg(feature = "redis-tests")]
fn redis_inbox() -> Option<Target> {
    let url = redis_url("the inbox tool on Redis")?;
    let prefix = unique_prefix("filled");
    block_on(async {
        let inbox = nextgen_events::redis::RedisInbox::connect(&url, prefix.clone())
            .await
            .unwrap();
        fill(&inbox).await;
    });
    Some(Target {
        options: vec!["--redis".to_owned(), url, "--prefix".to_owned(), prefix],
        _file: None,
    })
}

/// A filled PostgreSQL inbox in a fresh schema, named by `--postgres URL --schema S`; `None`
/// when the PostgreSQL tests are skipped.
#[cfg(feature = "postgres-tests")]
fn postgres_inbox() -> Option<Target> {
    let url = postgres_url("the inbox tool on PostgreSQL")?;
    let schema = unique_schema("cli_filled");
    block_on(async {
        let inbox = nextgen_events::postgres::PgInbox::connect(&url, &schema)
            .await
            .unwrap();
        fill(&inbox).await;
    });
    Some(Target {
        options: vec!["--postgres".to_owned(), url, "--schema".to_owned(), schema],
        _file: None,
    })
}

fn inbox_tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nextgen"))
        .arg("inbox")
        .args(args)
        .output()
        .unwrap()
}

/// Runs the tool on `target` with `args` and `--json`; expects success and parses stdout.
fn json(target: &Target, args: &[&str]) -> Value {
    let output = on(target, &[args, &["--json"]].concat());
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn on(target: &Target, args: &[&str]) -> Output {
    let options: Vec<&str> = target.options.iter().map(String::as_str).collect();
    inbox_tool(&[&options, args].concat())
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

fn check_stats_counts_each_state(path: &Target) {
    let stats = json(path, &["stats"]);
    // `evt_6`, the one pending entry, waits since it was received.
    assert_eq!(
        stats,
        serde_json::json!({"pending": 1, "retrying": 1, "running": 1, "handled": 1, "dead": 2,
            "oldest_pending_at_ms": BASE_MS + 5 * MINUTE_MS})
    );
    let text = on(path, &["stats"]);
    assert!(text.status.success());
    assert!(stdout(&text).contains("dead      2"), "{}", stdout(&text));
    assert!(
        stdout(&text).contains("oldest pending: 2026-11-20T08:05:00Z (")
            && stdout(&text).contains(" ago)"),
        "{}",
        stdout(&text)
    );
}

fn check_list_is_newest_first_and_filters(path: &Target) {
    let all = json(path, &["list"]);
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
        ids(&json(path, &["list", "--state", "dead"])),
        ["evt_4", "evt_2"]
    );
    assert_eq!(
        ids(&json(path, &["list", "--state", "retrying"])),
        ["evt_3"]
    );
    assert_eq!(
        ids(&json(path, &["list", "--type", "charge.failed"])),
        ["evt_6", "evt_3", "evt_2"]
    );
    assert_eq!(
        ids(&json(
            path,
            &["list", "--type", "charge.failed", "--state", "dead"]
        )),
        ["evt_2"]
    );
    assert_eq!(
        ids(&json(path, &["list", "--limit", "2"])),
        ["evt_6", "evt_5"]
    );
    assert_eq!(
        json(path, &["list", "--type", "nothing.here"]),
        Value::Array(vec![])
    );
    assert_eq!(
        ids(&json(path, &["list", "--handler", "(payload)"])),
        ["evt_4"]
    );
    assert_eq!(
        ids(&json(
            path,
            &["list", "--handler", "send_receipt", "--state", "dead"]
        )),
        ["evt_2"]
    );
    // The next page starts after the last entry of the one before.
    assert_eq!(
        ids(&json(path, &["list", "--limit", "2", "--after", "evt_5"])),
        ["evt_4", "evt_3"]
    );
    assert_eq!(
        ids(&json(
            path,
            &["list", "--state", "dead", "--after", "evt_4"]
        )),
        ["evt_2"]
    );
    let unknown = on(path, &["list", "--after", "evt_unknown"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("unknown event id `evt_unknown`"),
        "{}",
        stderr(&unknown)
    );
    let none = on(
        path,
        &["list", "--handler", "update_ledger", "--state", "dead"],
    );
    assert_eq!(
        stdout(&none).trim(),
        "no dead entries failed by `update_ledger`"
    );

    // A misspelt type finds nothing, and says which catalog type was meant.
    let typo = on(path, &["list", "--type", "refund.creatd"]);
    assert!(typo.status.success(), "{}", stderr(&typo));
    assert_eq!(
        stdout(&typo).trim(),
        "no entries of type `refund.creatd`: did you mean `refund.created`?"
    );
    let typo = on(path, &["list", "--type", "refund.creatd", "--json"]);
    assert!(typo.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&typo.stdout).unwrap(),
        Value::Array(vec![])
    );
    assert!(
        stderr(&typo).contains("did you mean `refund.created`?"),
        "{}",
        stderr(&typo)
    );
    let known = on(
        path,
        &["list", "--type", "refund.updated", "--state", "dead"],
    );
    assert_eq!(
        stdout(&known).trim(),
        "no dead entries of type `refund.updated`"
    );

    let text = on(path, &["list"]);
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
    // A long error is shortened in the middle, keeping its start and its end.
    assert!(
        lines[4].contains("update_ledger: ledger down: xx"),
        "{text}"
    );
    assert!(lines[4].contains('…') && lines[4].ends_with("xx"), "{text}");
    // A payload error keeps the JSON path that explains it, and the cause after it.
    assert!(
        lines[3].ends_with("(payload): …data.object.amount: expected i64, found a string"),
        "{text}"
    );
    assert!(!lines[6].contains("smtp"), "{text}");

    let bad = on(path, &["list", "--state", "lost"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("unknown state `lost`"),
        "{}",
        stderr(&bad)
    );
}

fn check_show_has_the_errors_and_the_body_only_when_asked(path: &Target) {
    let record = json(path, &["show", "evt_2"]);
    assert_eq!(record["event_id"], "evt_2");
    assert_eq!(record["state"], "dead");
    assert_eq!(record["attempts"], 1);
    assert_eq!(
        record["last_errors"],
        serde_json::json!([{"handler": "send_receipt", "error": "smtp: connection refused"}])
    );
    assert!(record["finished_at_ms"].is_u64());
    assert!(record.get("body").is_none());

    let with_body = json(path, &["show", "evt_2", "--body"]);
    assert_eq!(with_body["body"], body("evt_2", "charge.failed"));

    let text = stdout(&on(path, &["show", "evt_3"]));
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
    let text = stdout(&on(path, &["show", "evt_3", "--body"]));
    assert!(text.contains(r#""id":"evt_3""#), "{text}");

    let unknown = on(path, &["show", "evt_nope", "--json"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(unknown.stdout.is_empty());
    assert_eq!(
        stderr(&unknown).trim(),
        "error: unknown event id `evt_nope`"
    );
}

fn check_replay_puts_entries_back_to_pending(path: &Target) {
    let replayed = json(path, &["replay", "evt_2", "evt_1"]);
    assert_eq!(ids(&replayed["replayed"]), ["evt_2", "evt_1"]);
    for id in ["evt_1", "evt_2"] {
        let record = json(path, &["show", id]);
        assert_eq!(record["state"], "pending", "{id}");
        assert_eq!(record["attempts"], 0, "{id}");
    }
    assert_eq!(json(path, &["stats"])["pending"], 3);

    // Known ids are replayed, then the unknown and running ones fail.
    let mixed = on(path, &["replay", "evt_4", "evt_nope", "evt_5"]);
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
    assert_eq!(json(path, &["show", "evt_4"])["state"], "pending");
    assert_eq!(json(path, &["show", "evt_5"])["state"], "running");

    let mixed = on(path, &["replay", "evt_3", "evt_nope", "--json"]);
    assert_eq!(mixed.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&mixed.stdout).unwrap();
    assert_eq!(
        document,
        serde_json::json!({"replayed": ["evt_3"], "unknown": ["evt_nope"], "running": []})
    );

    let usage = on(path, &["replay"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("--dead"), "{}", stderr(&usage));
}

fn check_replay_dead_since_a_time(path: &Target) {
    // evt_2 was received at 08:01, evt_4 at 08:03.
    let since = json(
        path,
        &["replay", "--dead", "--since", "2026-11-20T08:02:00Z"],
    );
    assert_eq!(ids(&since["replayed"]), ["evt_4"]);
    assert_eq!(json(path, &["show", "evt_4"])["state"], "pending");
    assert_eq!(json(path, &["show", "evt_2"])["state"], "dead");

    let later = (BASE_MS + 10 * MINUTE_MS) / 1000;
    let none = on(path, &["replay", "--dead", "--since", &later.to_string()]);
    assert!(none.status.success());
    assert!(stdout(&none).contains("no dead letters received since 2026-11-20T08:10:00Z"));

    let in_seconds = (BASE_MS + MINUTE_MS) / 1000;
    let text = on(
        path,
        &["replay", "--dead", "--since", &in_seconds.to_string()],
    );
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("replayed evt_2"),
        "{}",
        stdout(&text)
    );
    assert_eq!(json(path, &["stats"])["dead"], 0);
    assert_eq!(
        json(path, &["replay", "--dead"]),
        serde_json::json!({"replayed": [], "unknown": []})
    );

    let bad = on(path, &["replay", "--dead", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
}

/// Writes done markers for `handlers` of `id` in the idempotency store of the inbox `target`
/// names, as the app's workers do when those handlers succeed.
fn mark_done(target: &Target, id: &str, handlers: &[&str]) {
    use nextgen_events::idempotency::Claim;

    block_on(async {
        let store = match target.options[0].as_str() {
            #[cfg(feature = "sqlite")]
            "--sqlite" => {
                let inbox = nextgen_events::sqlite::SqliteInbox::open(&target.options[1]).unwrap();
                inbox.idempotency_store()
            }
            #[cfg(feature = "redis-tests")]
            "--redis" => {
                let (url, prefix) = (&target.options[1], &target.options[3]);
                let inbox = nextgen_events::redis::RedisInbox::connect(url, prefix.clone())
                    .await
                    .unwrap();
                inbox.idempotency_store()
            }
            #[cfg(feature = "postgres-tests")]
            "--postgres" => {
                let (url, schema) = (&target.options[1], &target.options[3]);
                let inbox = nextgen_events::postgres::PgInbox::connect(url, schema)
                    .await
                    .unwrap();
                inbox.idempotency_store()
            }
            other => panic!("no store for {other}"),
        };
        for handler in handlers {
            let Claim::Claimed(token) = store.claim(id, handler, LEASE).await.unwrap() else {
                panic!("{id} {handler}: not a fresh claim");
            };
            assert!(store.complete(id, handler, token).await.unwrap());
        }
    });
}

/// `replay ID --rerun HANDLER` on `evt_1` (handled), whose handlers `app::book_charge` and
/// `app::send_receipt` succeeded: the one named is run again, the entry records it; each
/// refusal exits 1 and says why.
fn check_replay_rerun_runs_a_done_handler_once_more(path: &Target) {
    mark_done(path, "evt_1", &["app::send_receipt", "app::book_charge"]);
    let put_back = on(path, &["replay", "evt_1", "--rerun", "app::send_receipt"]);
    assert!(put_back.status.success(), "{}", stderr(&put_back));
    assert_eq!(
        stdout(&put_back).trim(),
        "evt_1 back to pending: the app's workers run app::send_receipt once more for it, and the other handlers that already succeeded stay skipped; the entry records the rerun"
    );
    let record = json(path, &["show", "evt_1"]);
    assert_eq!(record["state"], "pending");
    assert_eq!(record["attempts"], 0);
    let reruns = record["reruns"].as_array().unwrap();
    assert_eq!(reruns.len(), 1, "{record}");
    assert_eq!(reruns[0]["handler"], "app::send_receipt");
    let at_ms = reruns[0]["at_ms"].as_u64().unwrap();
    assert!(at_ms > BASE_MS, "{record}");
    let text = stdout(&on(path, &["show", "evt_1"]));
    assert!(
        text.contains("reruns:\n  app::send_receipt at 20"),
        "{text}"
    );
    // Another entry records none, and says nothing of them.
    assert!(json(path, &["show", "evt_2"]).get("reruns").is_none());
    assert!(!stdout(&on(path, &["show", "evt_2"])).contains("reruns"));

    // Its marker is gone now: a second rerun, or a mistyped name, is refused, naming the
    // handler that is done.
    for handler in ["app::send_receipt", "app::send_reciept"] {
        let refused = on(path, &["replay", "evt_1", "--rerun", handler]);
        assert_eq!(refused.status.code(), Some(1), "{handler}");
        assert!(refused.stdout.is_empty(), "{handler}");
        assert_eq!(
            stderr(&refused).trim(),
            format!(
                "error: `{handler}` did not succeed for `evt_1` (it has no done marker), so there is nothing to run again; `replay evt_1` runs a handler that did not succeed; the handlers done for it: `app::book_charge`"
            )
        );
    }
    let none_done = on(
        path,
        &["replay", "evt_2", "--rerun", "send_receipt", "--json"],
    );
    assert_eq!(none_done.status.code(), Some(1));
    assert_eq!(
        serde_json::from_slice::<Value>(&none_done.stdout).unwrap(),
        serde_json::json!({"event_id": "evt_2", "handler": "send_receipt", "rerun": "not_done", "done": []})
    );
    assert!(
        stderr(&none_done).contains("no handler is done for it"),
        "{}",
        stderr(&none_done)
    );
    assert_eq!(json(path, &["show", "evt_2"])["state"], "dead");

    let unknown = on(path, &["replay", "evt_nope", "--rerun", "app::book_charge"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown).trim(),
        "error: unknown event id `evt_nope`"
    );

    mark_done(path, "evt_5", &["app::book_charge"]);
    let running = on(path, &["replay", "evt_5", "--rerun", "app::book_charge"]);
    assert_eq!(running.status.code(), Some(1));
    assert!(
        stderr(&running).contains("`evt_5` was not put back: it is running"),
        "{}",
        stderr(&running)
    );
    assert_eq!(json(path, &["show", "evt_5"])["state"], "running");

    // The other done handler, by --json.
    let document = json(path, &["replay", "evt_1", "--rerun", "app::book_charge"]);
    assert_eq!(
        document,
        serde_json::json!({"event_id": "evt_1", "handler": "app::book_charge", "rerun": "put_back"})
    );
    let reruns = json(path, &["show", "evt_1"])["reruns"].clone();
    let handlers: Vec<&str> = reruns
        .as_array()
        .unwrap()
        .iter()
        .map(|rerun| rerun["handler"].as_str().unwrap())
        .collect();
    assert_eq!(handlers, ["app::send_receipt", "app::book_charge"]);

    // One entry, and not with --dead.
    for line in [
        &["replay", "evt_1", "evt_2", "--rerun", "app::book_charge"][..],
        &["replay", "--rerun", "app::book_charge"],
        &["replay", "--dead", "--rerun", "app::book_charge"],
    ] {
        let usage = on(path, line);
        assert_eq!(usage.status.code(), Some(2), "{line:?}");
    }
    let two = on(path, &["replay", "evt_1", "evt_2", "--rerun", "h"]);
    assert!(
        stderr(&two).contains("name exactly one ID"),
        "{}",
        stderr(&two)
    );
}

/// The tool's options for the SQLite file at `path`.
#[cfg(feature = "sqlite")]
fn sqlite_file(path: &TempPath) -> Target {
    Target {
        options: vec!["--sqlite".to_owned(), path.0.to_str().unwrap().to_owned()],
        _file: None,
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn stats_counts_each_state() {
    check_stats_counts_each_state(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn list_is_newest_first_and_filters() {
    check_list_is_newest_first_and_filters(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn show_has_the_errors_and_the_body_only_when_asked() {
    check_show_has_the_errors_and_the_body_only_when_asked(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn replay_puts_entries_back_to_pending() {
    check_replay_puts_entries_back_to_pending(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn replay_dead_since_a_time() {
    check_replay_dead_since_a_time(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn replay_rerun_runs_a_done_handler_once_more() {
    check_replay_rerun_runs_a_done_handler_once_more(&sqlite_inbox());
}

#[cfg(feature = "sqlite")]
#[test]
fn a_missing_file_is_not_created() {
    let path = TempPath::new("missing.sqlite3");
    let output = on(&sqlite_file(&path), &["stats"]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert!(errors.contains("no inbox at"), "{errors}");
    assert!(errors.contains("NEXTGEN_INBOX_SQLITE"), "{errors}");
    assert!(!path.0.exists());
}

#[cfg(feature = "sqlite")]
#[test]
fn a_directory_or_another_file_is_refused() {
    let dir = TempPath::new("dir");
    std::fs::create_dir(&dir.0).unwrap();
    let output = on(&sqlite_file(&dir), &["stats"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("could not open the inbox at"),
        "{}",
        stderr(&output)
    );

    let text = TempPath::new("notes.txt");
    let content = "not a database, just some notes that are long enough to look like a header\n";
    std::fs::write(&text.0, content).unwrap();
    let output = on(&sqlite_file(&text), &["list"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("could not open the inbox at"), "{errors}");
    assert!(errors.contains("not a database"), "{errors}");
    assert_eq!(std::fs::read_to_string(&text.0).unwrap(), content);
}

#[test]
fn the_inbox_must_be_named_and_a_redis_inbox_by_its_prefix() {
    let none = inbox_tool(&["stats"]);
    assert_eq!(none.status.code(), Some(2));
    let errors = stderr(&none);
    assert!(errors.contains("--sqlite PATH"), "{errors}");
    assert!(errors.contains("--redis URL --prefix P"), "{errors}");
    assert!(errors.contains("--postgres URL [--schema S]"), "{errors}");

    let no_prefix = inbox_tool(&["--redis", "redis://127.0.0.1:6379/", "stats", "--json"]);
    assert_eq!(no_prefix.status.code(), Some(2));
    assert!(no_prefix.stdout.is_empty());
    let errors = stderr(&no_prefix);
    assert!(errors.contains("--redis needs --prefix P"), "{errors}");
    assert!(errors.contains("NEXTGEN_INBOX_PREFIX"), "{errors}");
}

/// A loopback port nothing listens on (it was free a moment ago).
#[cfg(any(feature = "redis", feature = "postgres"))]
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_redis_or_a_wrong_url_is_a_clear_error_without_the_password() {
    let url = format!("redis://app:s3cret@127.0.0.1:{}/", closed_port());
    let output = inbox_tool(&["--redis", &url, "--prefix", "p", "stats", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let errors = stderr(&output);
    assert!(
        errors.contains("could not open the inbox at redis://app:***@127.0.0.1:")
            && errors.contains("could not connect to Redis at redis://app:***@127.0.0.1:"),
        "{errors}"
    );
    assert!(!errors.contains("s3cret"), "{errors}");

    let output = inbox_tool(&["--redis", "http://s3cret@cache/", "--prefix", "p", "stats"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("invalid Redis URL"), "{errors}");
    assert!(!errors.contains("s3cret"), "{errors}");
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_stats_counts_each_state() {
    let Some(target) = redis_inbox() else { return };
    check_stats_counts_each_state(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_list_is_newest_first_and_filters() {
    let Some(target) = redis_inbox() else { return };
    check_list_is_newest_first_and_filters(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_show_has_the_errors_and_the_body_only_when_asked() {
    let Some(target) = redis_inbox() else { return };
    check_show_has_the_errors_and_the_body_only_when_asked(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_replay_puts_entries_back_to_pending() {
    let Some(target) = redis_inbox() else { return };
    check_replay_puts_entries_back_to_pending(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_replay_dead_since_a_time() {
    let Some(target) = redis_inbox() else { return };
    check_replay_dead_since_a_time(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_replay_rerun_runs_a_done_handler_once_more() {
    let Some(target) = redis_inbox() else { return };
    check_replay_rerun_runs_a_done_handler_once_more(&target);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_an_unknown_prefix_is_not_created() {
    let Some(url) = redis_url("the inbox tool on Redis") else {
        return;
    };
    let prefix = unique_prefix("missing");
    let target = Target {
        options: vec![
            "--redis".to_owned(),
            url.clone(),
            "--prefix".to_owned(),
            prefix.clone(),
        ],
        _file: None,
    };
    for _ in 0..2 {
        let output = on(&target, &["stats"]);
        assert_eq!(output.status.code(), Some(2));
        let errors = stderr(&output);
        assert!(
            errors.contains(&format!("no inbox at `{url}?prefix={prefix}`"))
                && errors.contains(&format!("Redis has no inbox under the prefix `{prefix}`")),
            "{errors}"
        );
        assert!(errors.contains("NEXTGEN_INBOX_REDIS"), "{errors}");
    }
    let existing = block_on(nextgen_events::redis::RedisInbox::connect_existing(
        &url, prefix,
    ));
    assert!(existing.unwrap().is_none());
}

/// A file that is not an inbox (empty, or not SQLite at all) is refused by every command,
/// and left as it was: looking never turns it into an inbox.
#[cfg(feature = "sqlite")]
#[test]
fn a_file_that_is_not_an_inbox_is_refused_and_left_alone() {
    for (name, content) in [("empty", &b""[..]), ("text", &b"not a database\n"[..])] {
        let path = TempPath::new(&format!("{name}.sqlite3"));
        std::fs::write(&path.0, content).unwrap();
        for command in [
            &["stats"][..],
            &["list"],
            &["show", "evt_1"],
            &["replay", "evt_1"],
            &["replay", "--dead"],
        ] {
            let output = on(&sqlite_file(&path), command);
            assert!(
                !output.status.success(),
                "{name} {command:?}: {}",
                stdout(&output)
            );
            let errors = stderr(&output);
            assert!(
                errors.contains("not a webhook inbox"),
                "{name} {command:?}: {errors}"
            );
            assert_eq!(
                std::fs::read(&path.0).unwrap(),
                content,
                "{name} {command:?}"
            );
            let wal = format!("{}-wal", path.0.display());
            assert!(
                !std::path::Path::new(&wal).exists(),
                "{name} {command:?}: {wal}"
            );
        }
    }
}

/// Ids, types and handler errors are the sender's and the handlers' text: the text output
/// escapes their control characters; the JSON output keeps them exactly.
#[cfg(feature = "sqlite")]
#[test]
fn text_output_escapes_control_characters() {
    let path = TempPath::new("control.sqlite3");
    let id = "evt_\u{1b}[2J\u{1b}[31mevil\r\u{7}";
    let event_type = "charge.\u{1b}]0;title\u{7}failed";
    let error = "down\u{1b}[1A\u{1b}[Kfine\u{202e}txt.exe";
    block_on(async {
        let inbox = nextgen_events::sqlite::SqliteInbox::open(&path.0).unwrap();
        inbox
            .append(InboxEntry {
                body: body(id, event_type).into_bytes(),
                event_id: id.to_owned(),
                event_type: event_type.to_owned(),
                signed_at: BASE_MS / 1000,
                received_at_ms: BASE_MS,
                signature: None,
            })
            .await
            .unwrap();
        let taken = inbox.take(LEASE).await.unwrap().unwrap();
        let dead = Finish::Dead {
            errors: failure("h\u{1b}[0m", error),
        };
        assert!(inbox.finish(id, taken.token, dead).await.unwrap());
    });
    let target = sqlite_file(&path);
    for command in [
        &["list"][..],
        &["show", id],
        &["show", id, "--body"],
        &["replay", "--dead"],
        &["show", "evt_\u{1b}[31munknown"],
    ] {
        let output = on(&target, command);
        let text = format!("{}{}", stdout(&output), stderr(&output));
        for c in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
            assert!(!text.contains(c), "{command:?} printed {c:?} raw: {text:?}");
        }
        if command[0] != "show" || command.len() > 2 || command[1] == id {
            assert!(output.status.success(), "{command:?}: {text}");
        }
    }
    let shown = on(&target, &["show", id]);
    assert!(
        stdout(&shown).contains(r"evt_\u{1b}[2J"),
        "{}",
        stdout(&shown)
    );
    let record = json(&target, &["show", id]);
    assert_eq!(record["event_id"], id);
    assert_eq!(record["last_errors"][0]["error"], error);
}

/// Every time the tool prints reads as a time: the record's own, and one a library error
/// writes as `Unix time SECONDS` (a tampered entry's signature time, a lock's holder).
#[cfg(feature = "sqlite")]
#[test]
fn times_in_errors_read_as_rfc3339() {
    let path = TempPath::new("times.sqlite3");
    let error = "(signature): its signature is of Unix time 1795161600, but the entry says 1795161660: the entry was changed after it was kept";
    block_on(async {
        let inbox = nextgen_events::sqlite::SqliteInbox::open(&path.0).unwrap();
        inbox
            .append(InboxEntry {
                body: body("evt_t", "charge.failed").into_bytes(),
                event_id: "evt_t".to_owned(),
                event_type: "charge.failed".to_owned(),
                signed_at: BASE_MS / 1000,
                received_at_ms: BASE_MS,
                signature: None,
            })
            .await
            .unwrap();
        let taken = inbox.take(LEASE).await.unwrap().unwrap();
        let dead = Finish::Dead {
            errors: failure("(signature)", &error["(signature): ".len()..]),
        };
        assert!(inbox.finish("evt_t", taken.token, dead).await.unwrap());
    });
    let target = sqlite_file(&path);
    let shown = stdout(&on(&target, &["show", "evt_t"]));
    assert!(
        shown.contains("its signature is of 2026-11-20T08:00:00Z, but the entry says"),
        "{shown}"
    );
    assert!(
        shown.contains("received:     2026-11-20T08:00:00Z"),
        "{shown}"
    );
    assert!(!shown.contains("Unix time"), "{shown}");
    let listed = stdout(&on(&target, &["list"]));
    assert!(!listed.contains("Unix time"), "{listed}");
    assert!(listed.contains("2026-11-20T08:00:00Z"), "{listed}");
    // --json keeps the record exact: times in Unix milliseconds, errors as written.
    let record = json(&target, &["show", "evt_t"]);
    assert_eq!(record["received_at_ms"], BASE_MS);
    assert_eq!(
        record["last_errors"][0]["error"],
        &error["(signature): ".len()..]
    );
}

/// The Redis dead index listing ids whose entry is gone (a partial restore, a key deleted by
/// hand): `replay --dead` ends, replays the real dead letters and names the others unknown.
#[cfg(feature = "redis-tests")]
#[test]
fn replay_dead_on_redis_reports_ids_whose_entry_is_gone() {
    let Some(target) = redis_inbox() else { return };
    let (url, prefix) = (&target.options[1], &target.options[3]);
    let mut zadd = Command::new("redis-cli");
    zadd.args(["-u", url, "ZADD", &format!("{prefix}:inbox:state:dead")]);
    for n in 0..600 {
        zadd.arg("1").arg(format!("evt_gone_{n}"));
    }
    let added = zadd.output().unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    let report = json(&target, &["replay", "--dead"]);
    assert_eq!(ids(&report["replayed"]), ["evt_2", "evt_4"]);
    assert_eq!(ids(&report["unknown"]).len(), 600);
    assert_eq!(json(&target, &["stats"])["dead"], 0);
    assert_eq!(
        json(&target, &["replay", "--dead"]),
        serde_json::json!({"replayed": [], "unknown": []})
    );
}

/// `--inbox URL` opens an inbox through the library's opener, as the app does: the same
/// counts by URL as by `--sqlite`, and a scheme no backend has is refused with the known ones.
#[cfg(feature = "sqlite")]
#[test]
fn an_inbox_is_opened_by_its_url_and_an_unknown_scheme_names_the_known_ones() {
    let by_path = sqlite_inbox();
    let path = &by_path.options[1];
    let by_url = Target {
        options: vec!["--inbox".to_owned(), format!("sqlite:{path}")],
        _file: None,
    };
    check_stats_counts_each_state(&by_url);

    let output = inbox_tool(&["--inbox", "ftp://files/inbox", "stats"]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    for known in ["`ftp:`", "sqlite:PATH", "redis://", "?prefix=P"] {
        assert!(errors.contains(known), "{errors}");
    }
    // A build without PostgreSQL names the feature it lacks.
    #[cfg(not(feature = "postgres"))]
    {
        let output = inbox_tool(&["--inbox", "postgres://db/payments", "stats"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("PostgreSQL"),
            "{}",
            stderr(&output)
        );
    }
}

/// `--schema` names a PostgreSQL inbox's schema: it goes with `--postgres` only, once, and
/// `--postgres` takes a PostgreSQL URL only.
#[test]
fn a_schema_goes_with_postgres_and_postgres_takes_a_postgres_url() {
    let no_postgres = inbox_tool(&["--sqlite", "x.sqlite3", "--schema", "s", "stats", "--json"]);
    assert_eq!(no_postgres.status.code(), Some(2));
    assert!(no_postgres.stdout.is_empty());
    let errors = stderr(&no_postgres);
    assert!(
        errors.contains("--schema names the schema of a PostgreSQL inbox: it goes with --postgres"),
        "{errors}"
    );
    assert!(errors.contains("`?schema=S`"), "{errors}");

    let twice = inbox_tool(&[
        "--postgres",
        "postgres://app@127.0.0.1/db?schema=a",
        "--schema",
        "b",
        "stats",
    ]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(stderr(&twice).contains("named twice"), "{}", stderr(&twice));

    let not_postgres = inbox_tool(&["--postgres", "redis://:s3cret@127.0.0.1/", "list"]);
    assert_eq!(not_postgres.status.code(), Some(2));
    let errors = stderr(&not_postgres);
    assert!(
        errors.contains("--postgres takes a PostgreSQL URL"),
        "{errors}"
    );
    assert!(!errors.contains("s3cret"), "{errors}");

    let both = inbox_tool(&[
        "--postgres",
        "postgres://app@127.0.0.1/db",
        "--redis",
        "redis://127.0.0.1/",
        "stats",
    ]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("name the inbox once"),
        "{}",
        stderr(&both)
    );
}

#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
    let url = format!("postgres://app:s3cret@127.0.0.1:{}/payments", closed_port());
    for options in [
        vec!["--postgres", url.as_str(), "--schema", "billing"],
        vec!["--inbox", url.as_str()],
    ] {
        let output = inbox_tool(&[&options[..], &["stats", "--json"]].concat());
        assert_eq!(output.status.code(), Some(1), "{options:?}");
        assert!(output.stdout.is_empty());
        let errors = stderr(&output);
        assert!(
            errors.contains("could not open the inbox at postgres://app:***@127.0.0.1:")
                && errors
                    .contains("could not connect to PostgreSQL at postgres://app:***@127.0.0.1:"),
            "{errors}"
        );
        assert!(!errors.contains("s3cret"), "{errors}");
        if options[0] == "--postgres" {
            assert!(errors.contains("?schema=billing"), "{errors}");
        }
    }
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_stats_counts_each_state() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_stats_counts_each_state(&target);
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_list_is_newest_first_and_filters() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_list_is_newest_first_and_filters(&target);
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_show_has_the_errors_and_the_body_only_when_asked() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_show_has_the_errors_and_the_body_only_when_asked(&target);
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_replay_puts_entries_back_to_pending() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_replay_puts_entries_back_to_pending(&target);
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_replay_dead_since_a_time() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_replay_dead_since_a_time(&target);
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_replay_rerun_runs_a_done_handler_once_more() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    check_replay_rerun_runs_a_done_handler_once_more(&target);
}

/// The same inbox by `--inbox URL?schema=S` and by `--postgres URL?schema=S`, as by
/// `--postgres URL --schema S`.
#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_an_inbox_is_opened_by_its_url_with_the_schema_in_it() {
    let Some(target) = postgres_inbox() else {
        return;
    };
    let (url, schema) = (&target.options[1], &target.options[3]);
    let separator = if url.contains('?') { '&' } else { '?' };
    let with_schema = format!("{url}{separator}schema={schema}");
    for option in ["--inbox", "--postgres"] {
        let by_url = Target {
            options: vec![option.to_owned(), with_schema.clone()],
            _file: None,
        };
        check_stats_counts_each_state(&by_url);
        assert_eq!(
            ids(&json(&by_url, &["list", "--state", "dead"])),
            ["evt_4", "evt_2"]
        );
    }
}

/// A schema with no inbox is refused by every command, and not created: a mistyped schema is
/// not an empty inbox.
#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_an_unknown_schema_is_not_created() {
    let Some(url) = postgres_url("the inbox tool on PostgreSQL") else {
        return;
    };
    let schema = unique_schema("cli_missing");
    let target = Target {
        options: vec![
            "--postgres".to_owned(),
            url.clone(),
            "--schema".to_owned(),
            schema.clone(),
        ],
        _file: None,
    };
    for command in [
        &["stats"][..],
        &["list", "--json"],
        &["show", "evt_1"],
        &["replay", "evt_1"],
        &["replay", "--dead"],
    ] {
        let output = on(&target, command);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        assert!(output.stdout.is_empty(), "{command:?}");
        let errors = stderr(&output);
        assert!(
            errors.contains(&format!("?schema={schema}`"))
                && errors.contains(&format!("no inbox in the schema `{schema}`")),
            "{command:?}: {errors}"
        );
        assert!(
            errors.contains("NEXTGEN_INBOX_URL") && errors.contains("--schema S"),
            "{command:?}: {errors}"
        );
    }
    let existing = block_on(nextgen_events::postgres::PgInbox::connect_existing(
        &url, &schema,
    ));
    assert!(existing.unwrap().is_none());
}
