//! The inbox's intake: appends waiting at the same moment go into one transaction, with one
//! `NOTIFY` when it added anything.
//!
//! One commit per delivery would make the server flush its log once per delivery, and one
//! `NOTIFY` per row serializes every commit of the database on the notification queue's lock.
//! Here a few writer tasks each take whatever is waiting (up to [`BATCH`]), insert it in one
//! statement and commit it once; each append is answered after that commit, never before.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::database::Database;
use crate::backend_runtime::spawn_on_backend_runtime;
use crate::idempotency::StoreError;
use crate::inbox::{Appended, InboxEntry};

/// The most appends one transaction takes.
const BATCH: usize = 256;

/// How many transactions may be in flight at once: while one commits, the next batch gathers
/// and starts.
const WRITERS: usize = 4;

/// How many appends may wait for a writer before `append` itself waits.
const QUEUE: usize = 4096;

/// An append waiting for its batch's commit.
struct Waiting {
    entry: InboxEntry,
    answer: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The intake of one inbox: its writers end when the last clone of the inbox is dropped.
pub(crate) struct Intake {
    queue: mpsc::Sender<Waiting>,
}

impl Intake {
    /// Starts the writers on the backends' runtime. `notify` is the channel a committed batch
    /// that added entries notifies.
    pub(crate) fn start(database: Arc<Database>, notify: Arc<str>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        let insert: Arc<str> = database.sql(INSERT).into();
        for _ in 0..WRITERS {
            spawn_on_backend_runtime(write(
                Arc::clone(&waiting),
                Arc::clone(&database),
                Arc::clone(&insert),
                Arc::clone(&notify),
            ));
        }
        Intake { queue }
    }

    /// Appends `entry` once its batch is committed.
    pub(crate) async fn append(&self, entry: InboxEntry) -> Result<Appended, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped =
            || StoreError::Unavailable("the PostgreSQL inbox's intake stopped".to_owned());
        self.queue
            .send(Waiting { entry, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Adds the entries of a batch that are not there yet, each with its body, and names the ones
/// it added. `$1..$6`: the event ids, types, received times, bodies, signatures and signed
/// times, as arrays in one order.
const INSERT: &str = "
    WITH incoming AS (
        SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::bytea[], $5::text[], $6::int8[])
            AS t(event_id, event_type, received_at_ms, body, signature, signed_at)
    ), added AS (
        INSERT INTO {schema}.nextgen_inbox (event_id, event_type, received_at_ms, state, due_at_ms)
        SELECT event_id, event_type, received_at_ms, 'pending', received_at_ms FROM incoming
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), bodies AS (
        INSERT INTO {schema}.nextgen_inbox_bodies (event_id, body, signature, signed_at)
        SELECT incoming.event_id, body, signature, signed_at FROM incoming JOIN added USING (event_id)
        ON CONFLICT (event_id) DO UPDATE SET
            body = EXCLUDED.body, signature = EXCLUDED.signature, signed_at = EXCLUDED.signed_at
    )
    SELECT event_id FROM added";

/// One writer: takes what is waiting, commits it, answers each append.
async fn write(
    waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>,
    database: Arc<Database>,
    insert: Arc<str>,
    notify: Arc<str>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut waiting = waiting.lock().await;
            match waiting.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < BATCH {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let mut result = commit(&database, &insert, &notify, &batch).await;
        for waiting in batch {
            let answer = match &mut result {
                // Removed as it is answered: a second append of the id is a duplicate.
                Ok(added) => Ok(if added.remove(waiting.entry.event_id.as_str()) {
                    Appended::New
                } else {
                    Appended::Duplicate
                }),
                Err(error) => Err(error.clone()),
            };
            // An append whose caller went away (the request was cancelled) needs no answer.
            let _ = waiting.answer.send(answer);
        }
    }
}

/// Inserts the batch in one transaction; the ids it added. The same id twice in one batch is
/// added once: the first append of it is `New`, the others `Duplicate`.
async fn commit(
    database: &Database,
    insert: &str,
    notify: &str,
    batch: &[Waiting],
) -> Result<HashSet<String>, StoreError> {
    let mut entries: Vec<&InboxEntry> = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for waiting in batch {
        if seen.insert(waiting.entry.event_id.as_str()) {
            entries.push(&waiting.entry);
        }
    }
    // In id order: two batches holding the same ids lock them in one order, never in a cycle.
    entries.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let ids: Vec<&str> = entries
        .iter()
        .map(|entry| entry.event_id.as_str())
        .collect();
    let types: Vec<&str> = entries
        .iter()
        .map(|entry| entry.event_type.as_str())
        .collect();
    let received: Vec<i64> = entries
        .iter()
        .map(|entry| i64::try_from(entry.received_at_ms).unwrap_or(i64::MAX))
        .collect();
    let bodies: Vec<&[u8]> = entries.iter().map(|entry| entry.body.as_slice()).collect();
    let signatures: Vec<Option<&str>> = entries
        .iter()
        .map(|entry| entry.signature.as_deref())
        .collect();
    let signed: Vec<i64> = entries
        .iter()
        .map(|entry| i64::try_from(entry.signed_at).unwrap_or(i64::MAX))
        .collect();
    // Sent again after a broken connection: what a lost commit added is then a duplicate,
    // and committed, so answered 200 all the same.
    let (ids, types, received, bodies, signatures, signed) =
        (&ids, &types, &received, &bodies, &signatures, &signed);
    let added = database
        .run_again("inbox append", move |_| async move {
            let mut transaction = database.pool.begin().await?;
            let added: Vec<String> = sqlx::query_scalar(insert)
                .bind(ids)
                .bind(types)
                .bind(received)
                .bind(bodies)
                .bind(signatures)
                .bind(signed)
                .fetch_all(&mut *transaction)
                .await?;
            if !added.is_empty() {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(notify)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
            Ok(added)
        })
        .await?;
    Ok(added.into_iter().collect())
}
