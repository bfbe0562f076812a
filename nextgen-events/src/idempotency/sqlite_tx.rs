//! `SqliteTx`: the writes a transactional handler makes in the store's SQLite file, handed to
//! the store's [`SqliteTransactions`](super::SqliteTransactions) with its done marker. It lives
//! beside that capability, below the handlers and the stores that both use it; its public path
//! is `nextgen_events::sqlite::SqliteTx`.

use rusqlite::Connection;

/// One write of a handler, run on the file's writer connection.
type Write = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// A handler's part of the transaction its done marker commits in, for a handler that takes
/// `tx: &mut SqliteTx` on a [`SqliteStore`](crate::sqlite::SqliteStore) or
/// [`SqliteInbox`](crate::sqlite::SqliteInbox): the writes it queues here are applied after it
/// returns `Ok`, in one transaction with its done marker, so they happen exactly once (see the
/// guide's [Exactly once](crate::guide::exactly_once)). An `Err` or a panic drops them.
///
/// The writes go to the file the store or inbox is in, on its one writer connection, which
/// holds them only as long as they take: the handler's own awaits never hold the file. They
/// are applied in the order queued; one that fails rolls all of them back, the marker too.
///
/// ```standalone_crate
/// # #[cfg(feature = "actix")]
/// # mod app {
/// use nextgen_events::prelude::*;
/// use nextgen_events::sqlite::SqliteTx;
///
/// #[nextgen_event("refund.created")]
/// async fn book_refund(refund: Refund, tx: &mut SqliteTx) -> Result<(), String> {
///     tx.write(move |db| {
///         db.execute(
///             "INSERT INTO refunds_booked (refund, amount) VALUES (?1, ?2)",
///             (&refund.id, refund.amount),
///         )?;
///         Ok(())
///     });
///     Ok(())
/// }
/// # }
/// # fn main() {}
/// ```
#[derive(Default)]
pub struct SqliteTx {
    writes: Vec<Write>,
}

impl SqliteTx {
    /// Queues `write`, to run on the file's connection in the transaction that commits the
    /// handler's done marker. It sees what the writes queued before it wrote.
    pub fn write(
        &mut self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) {
        self.writes.push(Box::new(write));
    }

    /// How many writes are queued.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Runs the queued writes on `connection`, in order.
    pub(crate) fn apply(self, connection: &Connection) -> rusqlite::Result<()> {
        self.writes
            .into_iter()
            .try_for_each(|write| write(connection))
    }
}

impl std::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTx")
            .field("writes", &self.writes.len())
            .finish()
    }
}
