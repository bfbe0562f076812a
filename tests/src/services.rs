//! What tests need from outside the process: the Redis and the PostgreSQL that `.ci/run`
//! starts, PostgreSQL clusters of a test's own, and temporary SQLite files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The variable naming the PostgreSQL database the tests use:
/// `postgres://postgres@127.0.0.1:PORT/nextgen_test`.
pub const POSTGRES_URL_ENV: &str = "NEXTGEN_TEST_POSTGRES_URL";

/// Set to `1` to skip the PostgreSQL tests on purpose (each says so); otherwise a missing
/// [`POSTGRES_URL_ENV`] fails them, so a run without PostgreSQL never passes for one with it.
pub const SKIP_POSTGRES_ENV: &str = "NEXTGEN_SKIP_POSTGRES_TESTS";

/// The PostgreSQL database's URL; `None` (after saying that `what` was not tested) only when
/// skipping was asked for.
///
/// # Panics
///
/// When neither variable is set, with what to do.
pub fn postgres_url(what: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var(SKIP_POSTGRES_ENV).is_ok_and(|value| value == "1") => {
            println!(
                "SKIPPED: {SKIP_POSTGRES_ENV}=1 and {POSTGRES_URL_ENV} not set: {what} was not tested"
            );
            None
        }
        _ => panic!(
            "{POSTGRES_URL_ENV} is not set: start a PostgreSQL server (scripts/postgres.sh start DIR) and \
             export {POSTGRES_URL_ENV}=postgres://postgres@127.0.0.1:PORT/nextgen_test (.ci/run does both), \
             or set {SKIP_POSTGRES_ENV}=1 to skip these tests on purpose"
        ),
    }
}

/// A PostgreSQL schema name no other test or run uses: `t_<test>_<process>_<time>_<count>`,
/// with `test` lowercased, every character other than an ASCII letter or digit made `_`, and
/// cut so that the whole fits PostgreSQL's 63 bytes. It starts with a letter and holds only
/// lowercase letters, digits and underscores, so it needs no quoting in SQL.
pub fn unique_schema(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let suffix = format!(
        "_{}_{}_{}",
        std::process::id(),
        base36(nanos),
        base36(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
    );
    let room = 63usize.saturating_sub("t_".len() + suffix.len());
    let name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    format!("t_{name}{suffix}")
}

/// `n` in base 36, lowercase.
fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(char::from(DIGITS[(n % 36) as usize]));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// A PostgreSQL cluster of a test's own, for tests that restart or stop the server and so must
/// not disturb the one `.ci/run` shares between tests ([`POSTGRES_URL_ENV`]).
///
/// `scripts/postgres.sh` does the work: it puts the data, the log and the Unix socket in a
/// fresh directory under the temporary one, runs the server (as the `postgres` user when the
/// tests run as root) on a free loopback port with fsync on and trust authentication, and
/// creates the database `nextgen_test`. Dropping the value stops the server and removes the
/// directory. A start costs about a second (initdb included).
///
/// Tests that use one should call [`postgres_url`] first, so that a run that skips the
/// PostgreSQL tests skips them too.
#[derive(Debug)]
pub struct PostgresCluster {
    dir: PathBuf,
    url: String,
}

impl PostgresCluster {
    /// Runs initdb in a fresh directory, starts the server and creates `nextgen_test`
    /// (installing PostgreSQL first when it is missing and the tests run as root).
    ///
    /// # Panics
    ///
    /// When the directory cannot be made or the script fails, with its output.
    pub fn start() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        // Short: the server's Unix socket, DIR/.s.PGSQL.PORT, must fit in 107 bytes.
        let dir = std::env::temp_dir().join(format!(
            "nextgen-pg-{}-{}",
            std::process::id(),
            base36(nanos)
        ));
        if let Err(error) = std::fs::create_dir(&dir) {
            panic!(
                "could not make {} for a PostgreSQL cluster: {error}",
                dir.display()
            );
        }
        let url = match run_script("start", &dir) {
            Ok(stdout) => stdout.trim().to_owned(),
            Err(error) => {
                // Not a cluster yet: Drop would not run, so clean up here.
                let _ = run_script("stop", &dir);
                panic!(
                    "could not start a PostgreSQL cluster in {}: {error}",
                    dir.display()
                );
            }
        };
        assert!(
            url.starts_with("postgres://"),
            "scripts/postgres.sh start printed {url:?}, not a postgres:// URL"
        );
        PostgresCluster { dir, url }
    }

    /// The URL of the cluster's database `nextgen_test`:
    /// `postgres://postgres@127.0.0.1:PORT/nextgen_test`. It stays the same across
    /// [`restart_immediate`](Self::restart_immediate), [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the cluster's data (`data/`), log (`postgres.log`) and socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server the way a crash would (`pg_ctl restart -m immediate`: connections cut,
    /// no checkpoint) and starts it again on the same port, returning once it accepts
    /// connections, after recovering from its WAL.
    ///
    /// # Panics
    ///
    /// When the script fails, with its output.
    pub fn restart_immediate(&self) {
        self.run("restart");
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections cut, a clean shutdown) and keeps its
    /// data, so that [`start_again`](Self::start_again) can bring it back.
    ///
    /// # Panics
    ///
    /// When the script fails, with its output.
    pub fn stop(&self) {
        self.run("stop-server");
    }

    /// Starts the server [`stop`](Self::stop) stopped, on the same data and port, returning
    /// once it accepts connections.
    ///
    /// # Panics
    ///
    /// When the script fails (the port was taken meanwhile, say), with its output.
    pub fn start_again(&self) {
        self.run("start-again");
    }

    fn run(&self, command: &str) {
        if let Err(error) = run_script(command, &self.dir) {
            panic!(
                "scripts/postgres.sh {command} {} failed: {error}",
                self.dir.display()
            );
        }
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        // No panic here (it could abort a test that is already panicking): say it and go on.
        if let Err(error) = run_script("stop", &self.dir) {
            eprintln!(
                "could not remove the PostgreSQL cluster in {}: {error}",
                self.dir.display()
            );
        }
    }
}

/// Runs `scripts/postgres.sh COMMAND DIR`: its stdout, or what went wrong with its stderr.
fn run_script(command: &str, dir: &Path) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(command)
        .arg(dir)
        .output()
        .map_err(|error| format!("could not run bash {}: {error}", script.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}; its output:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
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
