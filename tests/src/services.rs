//! What tests need from outside the process: the Redis that `.ci/run` starts, and temporary
//! SQLite files.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable naming the Redis the tests use: `redis://127.0.0.1:PORT/`.
pub const REDIS_URL_ENV: &str = "NEXTGEN_TEST_REDIS_URL";

/// Set to `1` to skip the Redis tests on purpose (each says so); otherwise a missing
/// [`REDIS_URL_ENV`] fails them, so a run without Redis never passes for one with it.
pub const SKIP_REDIS_ENV: &str = "NEXTGEN_SKIP_REDIS_TESTS";

/// The Redis's URL; `None` (after saying that `what` was not tested) only when skipping was
/// asked for.
///
/// # Panics
///
/// When neither variable is set, with what to do.
pub fn redis_url(what: &str) -> Option<String> {
    match std::env::var(REDIS_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var(SKIP_REDIS_ENV).is_ok_and(|value| value == "1") => {
            println!(
                "SKIPPED: {SKIP_REDIS_ENV}=1 and {REDIS_URL_ENV} not set: {what} was not tested"
            );
            None
        }
        _ => panic!(
            "{REDIS_URL_ENV} is not set: start a redis-server and export {REDIS_URL_ENV}=redis://127.0.0.1:PORT/ \
             (.ci/run does both), or set {SKIP_REDIS_ENV}=1 to skip these tests on purpose"
        ),
    }
}

/// A Redis key prefix no other test or run uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("nextgen-test:{test}:{}:{nanos}", std::process::id())
}

/// A fresh path for a SQLite file in the temporary directory, removed with its WAL files and the
/// inbox workers' lock file when dropped.
#[derive(Debug)]
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// A path no other test or run uses.
    pub fn new(label: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!(
            "nextgen-{label}-{}.sqlite3",
            crate::contract::unique("file")
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
