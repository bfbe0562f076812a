//! A transactional handler's transaction: begun with its claim taken in it (one round trip
//! where the connection allows it, two otherwise), the handler's work, the commit.
//!
//! sqlx sends `BEGIN` and waits for its answer before the next statement, so the claim would
//! cost a round trip of its own. Instead the transaction begins with one simple query,
//! `EXECUTE <the claim>(...); BEGIN`: the claim runs in the query's implicit transaction, which
//! the `BEGIN` then turns into the transaction the handler's writes go into. A claim that is
//! not this delivery's raises (migration 4's `nextgen_not_claimed`, SQLSTATE `NX001` done,
//! `NX002` held), and an error in an implicit transaction rolls it back whole: the connection
//! is left idle, with nothing open, and goes back to the pool as it came.
//!
//! The claim is a statement prepared on each connection (`PREPARE`, once: planning it every
//! time would cost more than the round trip saves), its values written in as literals. A
//! connection without it (new, or reset by a pooler) answers `26000`: the claim is prepared on
//! that connection, and the transaction begins there. A pooler that does not keep a
//! connection's prepared statements (PgBouncer in transaction mode) keeps answering `26000`:
//! once misses are a fifth of the uses, the store stops trying and always begins in two round
//! trips.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, Postgres};

use super::PgStore;
use crate::backend_runtime::on_backend_runtime;
use crate::idempotency::{
    Claim, ClaimedRun, ClaimedWork, OwnerToken, PgTransactions, StoreError, StoreFuture,
};
use crate::postgres::database::{Database, millis};

/// The claim prepared on a connection, and whether connections keep it.
#[derive(Debug)]
pub(super) struct PreparedClaim {
    /// The prepared statement's name: one per schema, so that stores on different schemas can
    /// share a connection.
    name: String,
    /// `PREPARE name (...) AS ...`.
    prepare: String,
    /// How many times a connection did not have it, and how many times one did.
    misses: AtomicU64,
    uses: AtomicU64,
    /// Set once connections are found not to keep it: every transaction then begins in two
    /// round trips.
    given_up: AtomicBool,
}

impl PreparedClaim {
    /// The claim of `claim_in` (parameters `$1` to `$6`), failing unless the row is this
    /// delivery's.
    pub(super) fn new(database: &Database, claim_in: &str) -> Self {
        let name = format!("nextgen_claim_in_v1_{:016x}", fnv1a(database.schema()));
        let prepare = database.sql(&format!(
            "PREPARE {name} (text, text, text, bigint, bigint, text) AS
             WITH claimed AS ({claim_in})
             SELECT CASE WHEN owner = $3 THEN 0 ELSE {{schema}}.nextgen_not_claimed(state) END
             FROM claimed"
        ));
        PreparedClaim {
            name,
            prepare,
            misses: AtomicU64::new(0),
            uses: AtomicU64::new(0),
            given_up: AtomicBool::new(false),
        }
    }

    /// The one query that takes the claim and begins the transaction; `None` when a value
    /// cannot be written as a literal (a NUL, which PostgreSQL's text cannot hold anyway).
    fn begin_statement(&self, values: &ClaimValues<'_>) -> Option<String> {
        Some(format!(
            "EXECUTE {}({}, {}, {}, {}, {}, {}); BEGIN",
            self.name,
            literal(values.event_id)?,
            literal(values.handler)?,
            literal(&values.owner)?,
            values.until_ms,
            values.now_ms,
            literal(&values.wait)?,
        ))
    }
}

/// The claim's parameters, in the order of `$1` to `$6`, and the token `owner` is made from.
struct ClaimValues<'a> {
    event_id: &'a str,
    handler: &'a str,
    token: OwnerToken,
    owner: String,
    /// Outside the transaction the claim is seen only once committed, done: its lease is the
    /// retention's.
    until_ms: i64,
    now_ms: i64,
    /// Past it, another delivery's open transaction on the claim is an answer (in progress),
    /// not a wait as long as its handler.
    wait: String,
}

/// `text` as an escaped string constant: backslashes doubled (an `E''` constant reads them
/// as escapes, whatever `standard_conforming_strings` says), quotes doubled.
fn literal(text: &str) -> Option<String> {
    if text.contains('\0') {
        return None;
    }
    let mut quoted = String::with_capacity(text.len() + 4);
    quoted.push_str("E'");
    for character in text.chars() {
        match character {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("''"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    Some(quoted)
}

/// A stable 64-bit hash (FNV-1a), for the statement's name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What a failed claim statement's SQLSTATE says, when it is an answer and not a failure.
fn not_claimed(error: &sqlx::Error) -> Option<Claim> {
    let sqlx::Error::Database(error) = error else {
        return None;
    };
    match error.code().as_deref() {
        Some("NX001") => Some(Claim::AlreadyDone),
        // Held by another delivery: its live lease, or its open transaction past `wait`.
        Some("NX002" | "55P03") => Some(Claim::InProgress),
        _ => None,
    }
}

fn is_unprepared(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.code().as_deref() == Some("26000"))
}

/// A transaction holding this delivery's claim.
type Transaction<'c> = sqlx::Transaction<'c, Postgres>;

/// A transaction with the claim in it, or the claim that was not this delivery's.
type Began<'c> = Result<Result<Transaction<'c>, Claim>, StoreError>;

/// How the one-round-trip begin went.
enum Pipelined<'c> {
    /// It answered.
    Began(Began<'c>),
    /// The connection lacks the prepared claim, and is idle again.
    Unprepared,
    /// Not sent: the store gave up on it, or a value cannot be a literal.
    NotTried,
}

impl PgStore {
    /// Counts a connection without the claim; gives up on preparing it once misses are a
    /// fifth of the uses (past the first 64, which a new pool's connections explain).
    fn missed(&self) {
        let prepared = &self.prepared_claim;
        let misses = prepared.misses.fetch_add(1, Ordering::Relaxed) + 1;
        let uses = prepared.uses.load(Ordering::Relaxed);
        if misses > 64
            && misses.saturating_mul(4) > uses
            && !prepared.given_up.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                misses,
                uses,
                "the connections do not keep the transactional handlers' prepared claim (a pooler in transaction mode?): their transactions now begin in two round trips"
            );
        }
    }

    /// A claim statement's error: the claim that was not this delivery's, or the failure.
    fn refused_claim(&self, error: &sqlx::Error) -> Result<Claim, StoreError> {
        not_claimed(error).ok_or_else(|| self.database.failed("claim", error))
    }

    /// Prepares the claim on `connection`, outside any transaction; on failure, gives up on
    /// it (the transactions begin in two round trips from then on).
    async fn prepare_on(&self, connection: &mut PgConnection) {
        let prepared = &self.prepared_claim;
        // A plain string: the simple protocol, so the statement is not itself prepared.
        let prepare = sqlx::Executor::execute(&mut *connection, prepared.prepare.as_str());
        match on_backend_runtime(prepare).await {
            Ok(_) => {}
            // Prepared there meanwhile.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P05") => {}
            Err(error) => {
                prepared.given_up.store(true, Ordering::Relaxed);
                let error = self.database.failed("PREPARE of the claim", &error);
                tracing::warn!(%error, "the transactional handlers' claim could not be prepared: their transactions now begin in two round trips");
            }
        }
    }

    /// The claim and `BEGIN` in one round trip on `connection`, with the prepared claim.
    async fn begin_pipelined<'c>(
        &self,
        connection: &'c mut PgConnection,
        values: &ClaimValues<'_>,
    ) -> Pipelined<'c> {
        let prepared = &self.prepared_claim;
        if prepared.given_up.load(Ordering::Relaxed) {
            return Pipelined::NotTried;
        }
        let Some(begin) = prepared.begin_statement(values) else {
            return Pipelined::NotTried;
        };
        match on_backend_runtime(connection.begin_with(begin)).await {
            Ok(transaction) => {
                prepared.uses.fetch_add(1, Ordering::Relaxed);
                Pipelined::Began(Ok(Ok(transaction)))
            }
            Err(error) if is_unprepared(&error) => {
                self.missed();
                Pipelined::Unprepared
            }
            Err(error) => Pipelined::Began(self.refused_claim(&error).map(Err)),
        }
    }

    /// `BEGIN`, then the claim: two round trips.
    async fn begin_then_claim<'c>(
        &self,
        connection: &'c mut PgConnection,
        values: &ClaimValues<'_>,
    ) -> Began<'c> {
        let mut transaction = self.database.run("transaction", connection.begin()).await?;
        let claimed = sqlx::query(&self.statements.claim_in)
            .bind(values.event_id)
            .bind(values.handler)
            .bind(&values.owner)
            .bind(values.until_ms)
            .bind(values.now_ms)
            .bind(&values.wait)
            .fetch_one(&mut *transaction);
        let claim = match on_backend_runtime(claimed).await {
            Ok(row) => self.claim_from(&row, values.token, &values.owner),
            Err(error) => self.refused_claim(&error),
        };
        match claim {
            Ok(Claim::Claimed(_)) => Ok(Ok(transaction)),
            other => {
                rollback(transaction).await;
                other.map(Err)
            }
        }
    }
}

/// Rolls `transaction` back; a failure is only logged, since the connection is then closed,
/// which rolls it back all the same.
async fn rollback(transaction: Transaction<'_>) {
    if let Err(error) = on_backend_runtime(transaction.rollback()).await {
        tracing::warn!(%error, "the rollback failed; the connection is dropped instead");
    }
}

impl PgTransactions for PgStore {
    fn run_claimed<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        wait: Duration,
        work: ClaimedWork,
    ) -> StoreFuture<'a, ClaimedRun> {
        Box::pin(async move {
            let now = self.database.now_ms();
            let token = OwnerToken::new();
            let values = ClaimValues {
                event_id,
                handler,
                token,
                owner: token.to_string(),
                until_ms: now.saturating_add(millis(self.retention)),
                now_ms: now,
                wait: format!("{}ms", wait.as_millis().max(1)),
            };
            let mut connection = self
                .database
                .run("connection", self.database.pool.acquire())
                .await?;
            let pipelined = self.begin_pipelined(&mut connection, &values).await;
            let began = match pipelined {
                Pipelined::Began(began) => began,
                // Prepared on this connection for the next time; two round trips this time.
                // (`pipelined` borrows the connection: dropped first.)
                Pipelined::Unprepared => {
                    drop(pipelined);
                    self.prepare_on(&mut connection).await;
                    self.begin_then_claim(&mut connection, &values).await
                }
                Pipelined::NotTried => {
                    drop(pipelined);
                    self.begin_then_claim(&mut connection, &values).await
                }
            };
            let mut transaction = match began? {
                Ok(transaction) => transaction,
                Err(claim) => return Ok(ClaimedRun::NotClaimed(claim)),
            };
            // The handler runs on the caller's runtime, not the backends'.
            if !work(&mut transaction).await {
                rollback(transaction).await;
                return Ok(ClaimedRun::RolledBack);
            }
            // The claim was written done, in this transaction, which has held its row since:
            // the commit is what makes it done, with the handler's writes.
            Ok(match on_backend_runtime(transaction.commit()).await {
                Ok(()) => ClaimedRun::Committed,
                Err(error) => ClaimedRun::NotCommitted(format!("the commit failed: {error}")),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_cannot_end_its_string() {
        assert_eq!(literal("evt_1").as_deref(), Some("E'evt_1'"));
        assert_eq!(literal("a'b").as_deref(), Some("E'a''b'"));
        assert_eq!(literal("a\\'); DROP").as_deref(), Some("E'a\\\\''); DROP'"));
        assert_eq!(literal("nul\0"), None);
    }
}
