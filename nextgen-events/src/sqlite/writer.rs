//! The one writer of a SQLite file: every write waits in a queue, and whatever is waiting is
//! committed in one transaction (group commit), so one fsync serves many deliveries.

use std::path::Path;
use std::thread;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::idempotency::StoreError;

/// What runs a job's reply once the transaction it was in has committed (or failed to).
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// How many writes one transaction takes at most.
const BATCH: usize = 512;

/// A handle on the writer thread; clones share it. The thread ends when the last handle drops.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `connection`.
    pub(crate) fn start(connection: Connection, path: &Path) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>(4 * BATCH);
        thread::Builder::new()
            .name(format!("nextgen-sqlite-writer {}", path.display()))
            .spawn(move || run(connection, queue))
            .map_err(|error| {
                StoreError::Unavailable(format!(
                    "could not start the SQLite writer thread: {error}"
                ))
            })?;
        Ok(Writer { jobs })
    }

    /// Runs `operation` inside the next transaction and answers once that transaction is
    /// durable. Each SQL statement is atomic; an operation that fails leaves the others of its
    /// batch to commit (operations are written so that a partial one is harmless).
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let result = operation(connection);
            Box::new(move |commit_error| {
                let result = match commit_error {
                    Some(error) => Err(error.clone()),
                    None => result.map_err(|error| failed("write", &error)),
                };
                // The caller may have gone away; its write stands all the same.
                let _ = answer.send(result);
            })
        });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| {
            StoreError::Unavailable(
                "the SQLite write was not made: its transaction could not begin (see the log)"
                    .to_owned(),
            )
        })?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread stopped".to_owned())
}

/// A rusqlite error as a [`StoreError`] naming the operation.
pub(crate) fn failed(operation: &str, error: &rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite {operation} failed: {error}"))
}

fn run(connection: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let replies = match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                let replies: Vec<Reply> = batch.drain(..).map(|job| job(&connection)).collect();
                match connection.execute_batch("COMMIT") {
                    Ok(()) => Ok(replies),
                    Err(error) => {
                        let _ = connection.execute_batch("ROLLBACK");
                        Err((replies, failed("commit", &error)))
                    }
                }
            }
            Err(error) => Err((Vec::new(), failed("begin", &error))),
        };
        match replies {
            Ok(replies) => replies.into_iter().for_each(|reply| reply(None)),
            Err((replies, error)) => {
                tracing::error!(%error, "a SQLite transaction failed: its writes are answered with the error");
                replies.into_iter().for_each(|reply| reply(Some(&error)));
                // Jobs that never ran (BEGIN failed) are dropped: their callers are told so.
                batch.clear();
            }
        }
    }
}
