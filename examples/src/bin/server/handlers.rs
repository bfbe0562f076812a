//! The example's webhook handlers: one `async fn` per event type, registered by
//! `#[nextgen_event]`. Nothing calls them by name; dispatch finds them through the registry.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use nextgen_events::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// App state the handlers share: totals of the charges that succeeded, per currency.
///
/// Registered on the actix `App` as `web::Data<Ledger>`, and reached by a handler that takes a
/// `web::Data<Ledger>` argument.
#[derive(Debug, Default)]
pub struct Ledger {
    totals: Mutex<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    charges: u64,
    collected: BTreeMap<String, i64>,
}

impl Ledger {
    /// Records a charge that succeeded; returns how many charges were recorded so far and the
    /// total collected in its currency.
    pub fn record(&self, charge: &Charge) -> (u64, i64) {
        // A panic elsewhere while the lock was held leaves plain counters intact: keep them.
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        totals.charges += 1;
        let collected = totals.collected.entry(charge.currency.clone()).or_default();
        *collected += charge.amount;
        let collected = *collected;
        (totals.charges, collected)
    }

    /// The totals as JSON, for `GET /ledger`.
    pub fn snapshot(&self) -> Value {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        json!({ "charges": totals.charges, "collected": totals.collected })
    }
}

/// A charge succeeded: count it in the ledger.
#[nextgen_event("charge.succeeded")]
pub async fn charge_succeeded(charge: Charge, ledger: web::Data<Ledger>) {
    let (charges, collected) = ledger.record(&charge);
    tracing::info!(
        "charge {} succeeded: {} {}",
        charge.id,
        charge.amount,
        charge.currency
    );
    tracing::info!(
        "ledger: {charges} charge(s), {collected} {} collected",
        charge.currency
    );
}

/// A charge was captured: book it in the app's table of captured charges, in the transaction
/// the library commits its done marker in, so that each capture is booked exactly once, even
/// when the process dies mid-handler or NextGen delivers the event again.
///
/// Registered only on PostgreSQL (the server filters it out of the registry otherwise: a
/// handler that takes the transaction needs a `PgStore` or `PgInbox`). The table is in the
/// schema of the server's inbox or store, made at start-up by [`captures::prepare`]; it has no
/// unique constraint on purpose: one row per event is this handler's promise, and the chaos
/// run (`scripts/chaos.sh --store postgres`) counts them. With `NEXTGEN_HANDLER_DELAY_MS` it
/// waits that long after its insert, before the commit: a SIGKILL then finds the transaction
/// open more often.
#[cfg(feature = "postgres")]
#[nextgen_event("charge.captured")]
pub async fn book_capture(
    event: Event<Charge>,
    tx: &mut nextgen_events::postgres::PgConnection,
) -> Result<(), nextgen_events::postgres::sqlx::Error> {
    use nextgen_events::postgres::sqlx;

    let Some(table) = captures::TABLE.get() else {
        return Err(sqlx::Error::Configuration(
            "the captured charges' table was not prepared (captures::prepare)".into(),
        ));
    };
    let charge = &event.data.object;
    sqlx::query(&table.insert)
        .bind(&event.id)
        .bind(&charge.id)
        .bind(charge.amount)
        .bind(&charge.currency)
        .execute(&mut *tx)
        .await?;
    if let Some(delay) = handler_delay() {
        tokio::time::sleep(delay).await;
    }
    tracing::info!(
        "charge {} captured: {} {} booked",
        charge.id,
        charge.amount,
        charge.currency
    );
    Ok(())
}

/// The app's table of captured charges, for [`book_capture`].
#[cfg(feature = "postgres")]
pub mod captures {
    use std::sync::OnceLock;

    use nextgen_events::postgres::sqlx::{self, Connection as _};

    /// The table's name in its schema.
    pub const NAME: &str = "captured_charges";

    /// The table, once [`prepare`]d: its schema-qualified insert.
    pub(super) static TABLE: OnceLock<Table> = OnceLock::new();

    pub(super) struct Table {
        pub(super) insert: String,
    }

    /// Creates `"schema".captured_charges` in the database at `url` unless it is there, and
    /// points [`book_capture`](super::book_capture) at it. Replicas starting together take
    /// turns on an advisory lock (two `CREATE TABLE IF NOT EXISTS` at once can collide).
    pub async fn prepare(url: &str, schema: &str) -> Result<(), String> {
        let table = format!("\"{schema}\".{NAME}");
        let create = format!(
            // No unique constraint: a second commit for one event would be a second row.
            "CREATE TABLE IF NOT EXISTS {table} (
                 event_id text NOT NULL,
                 charge_id text NOT NULL,
                 amount bigint NOT NULL,
                 currency text NOT NULL,
                 booked_at timestamptz NOT NULL DEFAULT now()
             )"
        );
        let failed = |error: sqlx::Error| format!("the table {table}: {error}");
        let mut connection = sqlx::PgConnection::connect(url).await.map_err(failed)?;
        let mut transaction = connection.begin().await.map_err(failed)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&table)
            .execute(&mut *transaction)
            .await
            .map_err(failed)?;
        sqlx::query(&create)
            .execute(&mut *transaction)
            .await
            .map_err(failed)?;
        transaction.commit().await.map_err(failed)?;
        connection.close().await.map_err(failed)?;
        let insert = format!(
            "INSERT INTO {table} (event_id, charge_id, amount, currency) VALUES ($1, $2, $3, $4)"
        );
        let _ = TABLE.set(Table { insert });
        Ok(())
    }
}

/// `NEXTGEN_HANDLER_DELAY_MS`: how long a run takes before its effect (the chaos script sets
/// it).
fn handler_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::LazyLock<Option<std::time::Duration>> =
        std::sync::LazyLock::new(|| {
            std::env::var("NEXTGEN_HANDLER_DELAY_MS")
                .ok()
                .and_then(|ms| ms.trim().parse().ok())
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis)
        });
    *DELAY
}

/// A charge was refunded, fully or partly.
#[nextgen_event("charge.refunded")]
pub async fn charge_refunded(event: Event<Charge>) {
    let charge = &event.data.object;
    let scope = if charge.refunded == Some(true) {
        "fully"
    } else {
        "partly"
    };
    tracing::info!(
        "charge {} {scope} refunded: {} of {} {}",
        charge.id,
        charge.amount_refunded,
        charge.amount,
        charge.currency
    );
}

/// A customer was created.
#[nextgen_event("customer.created")]
pub async fn customer_created(customer: Customer) {
    tracing::info!(
        "customer {} created: {}",
        customer.id,
        customer.name.as_deref().unwrap_or("(no name)")
    );
}

/// A refund was created; an unknown reason is still logged (the payload keeps it verbatim).
#[nextgen_event("refund.created")]
pub async fn refund_created(event: Event<Refund>) {
    let refund = &event.data.object;
    let reason = refund
        .reason
        .as_ref()
        .map_or("no reason given", |r| r.as_str());
    tracing::info!(
        "refund {} created for charge {}: {} {} ({reason}, {})",
        refund.id,
        refund.charge,
        refund.amount,
        refund.currency,
        refund.status
    );
}

/// Every event, known to the catalog or not: an audit trail of ids and types.
///
/// It takes the object as its JSON text (`Box<RawValue>`), as it came: an audit line needs no
/// `Value` tree, whose building would cost more than the typed handlers' whole parse.
///
/// With `NEXTGEN_RUN_LOG` set (the chaos script sets it) it is also the effect that must
/// happen once: each run appends a line to that file and syncs it before it succeeds.
#[nextgen_event("*")]
pub async fn audit(event: Event<Box<RawValue>>) -> Result<(), std::io::Error> {
    let mode = if event.livemode { "live" } else { "test" };
    tracing::info!("audit: {} {} ({mode} mode)", event.id, event.event_type);
    match RunLog::from_env() {
        Some(log) => log.record(&event.id).await,
        None => Ok(()),
    }
}

/// The file each run of [`audit`] is appended to, durably, so that duplicate runs show.
struct RunLog {
    file: Mutex<std::fs::File>,
    /// Who ran it: `NEXTGEN_RUN_TAG`, e.g. which start of which replica.
    tag: String,
    /// How long a run takes before its effect: `NEXTGEN_HANDLER_DELAY_MS`.
    delay: std::time::Duration,
}

impl RunLog {
    fn from_env() -> Option<&'static RunLog> {
        static LOG: std::sync::LazyLock<Option<RunLog>> = std::sync::LazyLock::new(|| {
            let path = std::env::var("NEXTGEN_RUN_LOG").ok()?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .inspect_err(|error| tracing::error!(%error, path, "cannot open the run log"))
                .ok()?;
            Some(RunLog {
                file: Mutex::new(file),
                tag: std::env::var("NEXTGEN_RUN_TAG").unwrap_or_else(|_| "-".to_owned()),
                delay: handler_delay().unwrap_or_default(),
            })
        });
        LOG.as_ref()
    }

    async fn record(&self, event_id: &str) -> Result<(), std::io::Error> {
        use std::io::Write;

        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // One write per line: appends from several processes do not interleave.
        file.write_all(format!("{} {event_id}\n", self.tag).as_bytes())?;
        file.sync_data()
    }
}
