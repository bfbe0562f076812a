//! SQLite: one durable file holding the inbox and the idempotency records (cargo feature
//! `sqlite`).
//!
//! [`SqliteStore`] is an [`IdempotencyStore`](crate::idempotency::IdempotencyStore) whose done
//! markers survive a restart, for the inline mode. [`SqliteInbox`] is an
//! [`Inbox`](crate::inbox::Inbox): deliveries are written to the file before the 200, and the
//! app's workers handle them in the background. Both can share one file.
//!
//! The file is in WAL mode with `synchronous=FULL` by default: a write is on disk before it is
//! acknowledged, so a power cut loses nothing that was answered 200. Writes go through one
//! writer thread that commits everything waiting in one transaction (group commit); reads use
//! connections of their own.
//!
//! ```no_run
//! use nextgen_events::sqlite::SqliteInbox;
//! use nextgen_events::WebhookConfig;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = SqliteInbox::open("webhooks.sqlite3")?;
//! let config = WebhookConfig::from_env()?.with_inbox(inbox);
//! # let _ = config; Ok(()) }
//! ```

mod inbox;
mod lock;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

pub use crate::idempotency::sqlite_tx::SqliteTx;
pub use inbox::SqliteInbox;
pub use store::SqliteStore;

use crate::idempotency::StoreError;
use writer::{Writer, failed};

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL` (the default): a write is on disk before it is acknowledged; a
    /// power cut loses nothing that was answered 200.
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster; a power cut (not a crash of the process) may lose the
    /// last writes, which NextGen was told it need not send again.
    Normal,
}

/// A clock in milliseconds since the Unix epoch.
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    })
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One SQLite file: its writer, a connection for reads, its clock.
pub(crate) struct Database {
    path: PathBuf,
    writer: Writer,
    reader: Mutex<Connection>,
    clock: Clock,
    /// Whether the inbox table has its `reruns` column: always, once opened for writing (which
    /// adds it); a file of an earlier version opened read-only by a tool may lack it, and is
    /// read as recording none.
    has_reruns: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nextgen_handlers (
    event_id TEXT NOT NULL,
    handler TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    owner TEXT,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, handler)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nextgen_handlers_until ON nextgen_handlers (until_ms);
CREATE TABLE IF NOT EXISTS nextgen_objects (
    handler TEXT NOT NULL,
    object_id TEXT NOT NULL,
    owner TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    created INTEGER,
    event_id TEXT,
    newest_until_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (handler, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nextgen_inbox (
    event_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    body BLOB NOT NULL,
    signed_at INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'handled', 'dead')),
    due_at_ms INTEGER NOT NULL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_failed_at_ms INTEGER,
    last_errors TEXT,
    finished_at_ms INTEGER,
    queued_due_ms INTEGER,
    signature TEXT,
    reruns TEXT
);
CREATE INDEX IF NOT EXISTS nextgen_inbox_due ON nextgen_inbox (due_at_ms)
    WHERE state IN ('pending', 'running');
-- The list's order (newest first, then by event id, descending), so that a page after a
-- cursor starts where the one before ended. It replaces an index on the receipt time alone.
DROP INDEX IF EXISTS nextgen_inbox_received;
CREATE INDEX IF NOT EXISTS nextgen_inbox_listed ON nextgen_inbox (received_at_ms, event_id);
-- Every entry not handled, by state, in the list's order: the states an operator looks for
-- (dead letters, the backlog) are few among the handled, and are counted and listed from here
-- without reading the handled ones. `attempts` tells pending from retrying without the row.
-- A query uses it only when it says `state != 'handled'` itself.
CREATE INDEX IF NOT EXISTS nextgen_inbox_unhandled
    ON nextgen_inbox (state, received_at_ms, event_id, attempts) WHERE state != 'handled';
-- Handled entries by finish time: their count, the history's handled hours, the prune.
CREATE INDEX IF NOT EXISTS nextgen_inbox_handled ON nextgen_inbox (finished_at_ms)
    WHERE state = 'handled';
-- Entries that failed, by their first failure: the history's retried hours.
CREATE INDEX IF NOT EXISTS nextgen_inbox_failed ON nextgen_inbox (first_failed_at_ms)
    WHERE first_failed_at_ms IS NOT NULL;
";

/// Brings a file written by an earlier version up to [`SCHEMA`].
fn migrate(connection: &Connection) -> rusqlite::Result<()> {
    // `queued_due_ms`: where a taken delivery stood in the queue, so that recovery puts it back
    // there; files from before it recover their deliveries at their received time.
    // `signature`: the header an entry was verified with, verified again before a worker
    // dispatches it; entries from before it have none and become dead letters.
    // `reruns`: the handlers run again on purpose (a JSON array); entries from before it had none.
    for (column, kind) in [
        ("queued_due_ms", "INTEGER"),
        ("signature", "TEXT"),
        ("reruns", "TEXT"),
    ] {
        if !has_column(connection, column)? {
            connection.execute_batch(&format!(
                "ALTER TABLE nextgen_inbox ADD COLUMN {column} {kind};"
            ))?;
        }
    }
    Ok(())
}

/// Whether the file's inbox table has `column`.
fn has_column(connection: &Connection, column: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('nextgen_inbox') WHERE name = ?1",
        [column],
        |row| row.get(0),
    )
}

/// Creates the file readable and writable by its owner only (0600 on Unix) when it does not
/// exist yet: it holds raw payloads. SQLite gives the `-wal` and `-shm` files it creates
/// beside it the same mode. An existing file keeps the mode it has.
fn create_private(path: &Path) -> std::io::Result<()> {
    // SQLite's special names are no file of ours to create.
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// `connection`, waiting up to 5 s for a lock held by another connection instead of failing.
fn waiting(connection: Connection) -> Result<Connection, StoreError> {
    connection
        .execute_batch("PRAGMA busy_timeout = 5000;")
        .map_err(|error| failed("set-up", &error))?;
    Ok(connection)
}

impl Database {
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
        clock: Option<Clock>,
    ) -> Result<Arc<Database>, StoreError> {
        let shown = path.display().to_string();
        let open = |flags| {
            Connection::open_with_flags(path, flags).map_err(|error| {
                StoreError::Unavailable(format!(
                    "could not open the SQLite file `{shown}`: {error}"
                ))
            })
        };
        create_private(path).map_err(|error| {
            StoreError::Unavailable(format!(
                "could not create the SQLite file `{shown}`: {error}"
            ))
        })?;
        let writer = open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
            ))
            .and_then(|()| writer.execute_batch(SCHEMA))
            .and_then(|()| migrate(&writer))
            .map_err(|error| failed(&format!("set-up of `{shown}`"), &error))?;
        let reader = waiting(open(OpenFlags::SQLITE_OPEN_READ_WRITE)?)?;
        Database::on(
            path,
            (writer, reader),
            clock.unwrap_or_else(system_clock),
            true,
        )
    }

    /// The database of `path` on its opened connections `(writer, reader)`: the writer thread
    /// takes `writer`.
    fn on(
        path: &Path,
        (writer, reader): (Connection, Connection),
        clock: Clock,
        has_reruns: bool,
    ) -> Result<Arc<Database>, StoreError> {
        Ok(Arc::new(Database {
            path: path.to_owned(),
            writer: Writer::start(writer, path)?,
            reader: Mutex::new(reader),
            clock,
            has_reruns,
        }))
    }

    /// Whether the inbox table has its `reruns` column (see the field).
    pub(crate) fn has_reruns(&self) -> bool {
        self.has_reruns
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens an existing file read-only, for tools that look: nothing is created or
    /// initialised, and a file without the inbox's table is refused. Writes through it fail.
    pub(crate) fn open_read_only(path: &Path) -> Result<Arc<Database>, StoreError> {
        let shown = path.display().to_string();
        let open = || {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|error| {
                StoreError::Unavailable(format!(
                    "could not open the SQLite file `{shown}` read-only: {error}"
                ))
            })
        };
        let reader = waiting(open()?)?;
        let tables: i64 = reader
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'nextgen_inbox'",
                [],
                |row| row.get(0),
            )
            .map_err(|error| {
                StoreError::Unavailable(format!(
                    "`{shown}` is not a webhook inbox: {error}"
                ))
            })?;
        if tables == 0 {
            return Err(StoreError::Unavailable(format!(
                "`{shown}` is not a webhook inbox: it has no `nextgen_inbox` table (an inbox's file is created by `SqliteInbox::open`, e.g. when the app starts in inbox mode)"
            )));
        }
        let has_reruns = has_column(&reader, "reruns")
            .map_err(|error| failed(&format!("read of `{shown}`"), &error))?;
        let writer = waiting(open()?)?;
        Database::on(path, (writer, reader), system_clock(), has_reruns)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        i64::try_from((self.clock)()).unwrap_or(i64::MAX)
    }

    pub(crate) async fn write<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.write(operation).await
    }

    /// Runs a read on the read connection, off the async runtime.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        operation: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let database = Arc::clone(self);
        let read = move || {
            let connection = database
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            operation(&connection).map_err(|error| failed("read", &error))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(read).await.map_err(|error| {
                StoreError::Unavailable(format!("a SQLite read stopped: {error}"))
            })?,
            Err(_) => read(),
        }
    }
}
