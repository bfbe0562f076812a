//! The chaos run in CI, short: the real server binary in inbox mode, stopped again and again
//! while deliveries come in, until the inbox is drained. Nothing acknowledged is lost, no kill
//! costs more duplicate runs than the workers, and a graceful stop costs none, even with
//! handlers that take half a second (so every SIGTERM finds them busy).
//! The long run is `scripts/chaos.sh`; the Redis runs need `--features redis-tests` and
//! `NEXTGEN_TEST_REDIS_URL`, the PostgreSQL run `--features postgres-tests` and
//! `NEXTGEN_TEST_POSTGRES_URL` (it fails without it, unless `NEXTGEN_SKIP_POSTGRES_TESTS=1`;
//! see `.ci/run`).

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// Runs the chaos binary against the server binary with `args`, 1,000 deliveries by 16 senders
/// to 4 workers unless `args` say otherwise; fails with its output, which it returns.
fn chaos(args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chaos"));
    command
        .args(["--server", env!("CARGO_BIN_EXE_server")])
        .args(["--senders", "16", "--workers", "4"]);
    if !args.contains(&"--deliveries") {
        command.args(["--deliveries", "1000"]);
    }
    let output = command.args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "chaos {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("lost 0,"), "{stdout}");
    stdout.into_owned()
}

// Under `redis-tests` or `postgres-tests` only those runs: the SQLite ones ran in the plain
// test run.
#[cfg(all(
    feature = "sqlite",
    not(any(feature = "redis-tests", feature = "postgres-tests"))
))]
#[test]
fn sqlite_inbox_under_sigkill_loses_nothing_and_stays_within_one_duplicate_per_worker() {
    chaos(&[
        "--store",
        "sqlite",
        "--signal",
        "kill",
        "--stop-every-ms",
        "400",
        "--min-stops",
        "5",
    ]);
}

#[cfg(all(
    feature = "sqlite",
    not(any(feature = "redis-tests", feature = "postgres-tests"))
))]
#[test]
fn sqlite_inbox_under_sigterm_runs_no_handler_twice() {
    chaos(&[
        "--store",
        "sqlite",
        "--signal",
        "term",
        "--handler-ms",
        "500",
        "--deliveries",
        "120",
        "--stop-every-ms",
        "1500",
        "--min-stops",
        "3",
    ]);
}

#[cfg(feature = "redis-tests")]
fn redis_url() -> String {
    std::env::var("NEXTGEN_TEST_REDIS_URL")
        .expect("NEXTGEN_TEST_REDIS_URL: start a redis-server (.ci/run does)")
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_inbox_with_two_replicas_under_sigkill_loses_nothing() {
    let url = redis_url();
    chaos(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--signal",
        "kill",
        "--stop-every-ms",
        "400",
        "--min-stops",
        "5",
    ]);
}

#[cfg(feature = "redis-tests")]
#[test]
fn redis_inbox_with_two_replicas_under_sigterm_runs_no_handler_twice() {
    let url = redis_url();
    chaos(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--signal",
        "term",
        "--handler-ms",
        "500",
        "--deliveries",
        "120",
        "--stop-every-ms",
        "1500",
        "--min-stops",
        "2",
    ]);
}

/// Two replicas on one PostgreSQL inbox (a schema of the run's own), SIGKILLed in turn, every
/// delivery a `charge.captured` that the exactly-once handler books in a table without a
/// unique constraint: 1,000 deliveries and at least 5 kills, seconds. Nothing is lost, and no
/// event has more than its one row. The full run is `scripts/chaos.sh --store postgres`.
#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_inbox_with_two_replicas_under_sigkill_books_each_event_exactly_once() {
    let Some(url) = nextgen_tests::services::postgres_url("the chaos run on PostgreSQL") else {
        return;
    };
    let stdout = chaos(&[
        "--store",
        "postgres",
        "--postgres-url",
        &url,
        "--signal",
        "kill",
        "--deliveries",
        "1000",
        "--stop-every-ms",
        "400",
        "--min-stops",
        "5",
    ]);
    assert!(
        stdout.contains("rows: lost 0, duplicated 0 (1000 rows for 1000 events"),
        "{stdout}"
    );
    // A run that passed leaves nothing behind in the database it was given.
    let schema = stdout
        .split(" events in ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("no schema named in {stdout}"));
    assert!(schema.starts_with("chaos_"), "{schema}");
    let left = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use nextgen_events::postgres::sqlx::{self, Connection as _};
            let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                .bind(schema)
                .fetch_one(&mut connection)
                .await
                .unwrap()
        });
    assert_eq!(left, 0, "the run's schema {schema} is still there");
}
