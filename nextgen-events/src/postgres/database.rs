//! One PostgreSQL database as the store and the inbox use it: the pool, the schema, the clock,
//! the migrations, and errors without the URL's password.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Executor as _};

use crate::backend_runtime::on_backend_runtime;
use crate::idempotency::StoreError;

/// The schema the tables go in unless another is named.
pub const DEFAULT_SCHEMA: &str = "nextgen";

/// The migrations, in order: `(version, name, SQL)`. `{schema}` in the SQL is the schema's
/// quoted name. A released migration never changes; a change is a new one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "tables", include_str!("migrations/0001_tables.sql")),
    (2, "operator", include_str!("migrations/0002_operator.sql")),
    (3, "reruns", include_str!("migrations/0003_reruns.sql")),
    (4, "claim_in", include_str!("migrations/0004_claim_in.sql")),
];

/// The first key of the advisory lock migrations take (the second is the schema's hash):
/// `nextgen` in ASCII, so that it reads as ours in `pg_locks`.
const MIGRATION_LOCK: i32 = 0x6e67_656e;

/// A clock in milliseconds since the Unix epoch.
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The database, shared by the clones of a store or an inbox.
pub(crate) struct Database {
    pub(crate) pool: PgPool,
    schema: String,
    /// The schema's name quoted as an identifier, for the SQL.
    quoted: String,
    clock: Option<Clock>,
    /// The password of the URL connected to, removed from every error message.
    password: Option<String>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Refuses a schema name that is not a plain identifier: a letter or `_`, then letters,
/// digits, `_` or `$`, at most 63 bytes (PostgreSQL's limit, past which it would cut the name).
pub(crate) fn check_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && schema.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "`{schema}` is not a schema name nextgen-events takes: use a letter or `_`, then letters, digits, `_` or `$`, at most 63 bytes (such as `{DEFAULT_SCHEMA}`)"
        )))
    }
}

/// The password in `url`'s authority (`postgres://user:password@host/db`), if any.
fn password_in(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let credentials = authority.rsplit_once('@')?.0;
    let password = credentials.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

/// `url` without its password, for messages.
pub(crate) fn shown(url: &str) -> String {
    match password_in(url) {
        Some(password) => url.replacen(&format!(":{password}@"), ":***@", 1),
        None => url.to_owned(),
    }
}

impl Database {
    /// Connects to the database at `url` and checks that it answers.
    pub(crate) async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        check_schema(schema)?;
        let password = password_in(url);
        let scrub = |message: String| match &password {
            Some(password) => message.replace(password.as_str(), "***"),
            None => message,
        };
        let options: PgConnectOptions = url.parse().map_err(|error| {
            StoreError::Unavailable(scrub(format!(
                "`{}` is not a PostgreSQL URL sqlx reads: {error}",
                shown(url)
            )))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            // A delivery that arrives while the server is down is answered 500 within this,
            // not held until the sender gives up.
            .acquire_timeout(Duration::from_secs(2))
            // A ping before every query would double the round trips; a connection the server
            // dropped fails its next query, which the caller retries, and is replaced.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let database = Database::on(pool, schema, password)?;
        // A connection of its own first: the pool would wait out its timeout and say only
        // that, where this says why (refused, authentication, no such database).
        database
            .run("connect", async {
                let connection =
                    PgConnection::connect_with(&database.pool.connect_options()).await?;
                connection.close().await
            })
            .await
            .map_err(|error| match error {
                StoreError::Unavailable(message) => StoreError::Unavailable(format!(
                    "could not connect to PostgreSQL at {}: {message}",
                    shown(url)
                )),
                other => other,
            })?;
        Ok(database)
    }

    /// The caller's pool, with its tables in `schema`.
    pub(crate) fn on(
        pool: PgPool,
        schema: &str,
        password: Option<String>,
    ) -> Result<Self, StoreError> {
        check_schema(schema)?;
        Ok(Database {
            pool,
            schema: schema.to_owned(),
            quoted: format!("\"{schema}\""),
            clock: None,
            password,
        })
    }

    /// The same database on `clock`.
    pub(crate) fn with_clock(&self, clock: Clock) -> Self {
        Database {
            pool: self.pool.clone(),
            schema: self.schema.clone(),
            quoted: self.quoted.clone(),
            clock: Some(clock),
            password: self.password.clone(),
        }
    }

    /// The schema's name.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// `sql` with `{schema}` replaced by the schema's quoted name.
    pub(crate) fn sql(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.quoted)
    }

    /// Now, in Unix milliseconds, on the injected clock if there is one.
    pub(crate) fn now_ms(&self) -> i64 {
        let now = match &self.clock {
            Some(clock) => clock(),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
                }),
        };
        i64::try_from(now).unwrap_or(i64::MAX)
    }

    /// Awaits `query` (on this database's pool) with the backends' runtime current: new
    /// connections are made there, so a stop that blocks the app's runtime never strands them.
    /// An error becomes a [`StoreError`] naming `operation`, without the password.
    pub(crate) async fn run<T>(
        &self,
        operation: &str,
        query: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        on_backend_runtime(query)
            .await
            .map_err(|error| self.failed(operation, &error))
    }

    /// [`run`](Self::run) for a statement that can be sent twice: sent once or twice more
    /// (after 100 and 400 ms) when the connection broke under it. That is what a connection
    /// the server dropped (restarted, say) gives at its next use, and what a commit whose
    /// answer was lost gives: sent again, such a statement finds its own work done (a claim
    /// holds its token, an appended delivery is a duplicate).
    ///
    /// `query` is told whether it is sent again, for a statement that must then also accept
    /// its own work done.
    pub(crate) async fn run_again<T, Fut>(
        &self,
        operation: &str,
        mut query: impl FnMut(bool) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut pauses = [Duration::from_millis(100), Duration::from_millis(400)].into_iter();
        let mut again = false;
        loop {
            match on_backend_runtime(query(again)).await {
                Err(error) if broken_connection(&error) => match pauses.next() {
                    Some(pause) => {
                        tracing::debug!(%error, operation, "the PostgreSQL connection broke; sending again");
                        tokio::time::sleep(pause).await;
                        again = true;
                    }
                    None => return Err(self.failed(operation, &error)),
                },
                result => return result.map_err(|error| self.failed(operation, &error)),
            }
        }
    }

    /// The [`StoreError`] of `operation` failing with `error`.
    pub(crate) fn failed(&self, operation: &str, error: &sqlx::Error) -> StoreError {
        let message = match error {
            sqlx::Error::PoolTimedOut => {
                "no connection within 2 s: the server is down or every connection is busy"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let message = match &self.password {
            Some(password) => message.replace(password.as_str(), "***"),
            None => message,
        };
        StoreError::Unavailable(format!("PostgreSQL {operation} failed: {message}"))
    }

    /// Creates the schema and its tables, or brings them up to this version, under an advisory
    /// lock: replicas starting together run each migration once, the others wait for it.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        self.run("migration", migrate(&self.pool, &self.schema, &self.quoted))
            .await
    }

    /// Whether the inbox's table has its `reruns` column (migration 3): a tool connected to
    /// the inbox of an app of an earlier version, which it does not migrate, finds none.
    pub(crate) async fn has_reruns(&self) -> Result<bool, StoreError> {
        let table = format!("{}.nextgen_inbox", self.quoted);
        self.run(
            "lookup of the inbox",
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute
                 WHERE attrelid = to_regclass($1) AND attname = 'reruns' AND NOT attisdropped)",
            )
            .bind(table)
            .fetch_one(&self.pool),
        )
        .await
    }

    /// Whether the schema holds the inbox's tables (a tool looks before it reads, so that a
    /// mistyped schema is not an empty inbox).
    pub(crate) async fn has_inbox(&self) -> Result<bool, StoreError> {
        let table = format!("{}.nextgen_inbox", self.quoted);
        self.run(
            "lookup of the inbox",
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&self.pool),
        )
        .await
    }
}

/// [`Database::migrate`]: `schema` is the name, `quoted` the identifier.
async fn migrate(pool: &PgPool, schema: &str, quoted: &str) -> Result<(), sqlx::Error> {
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.nextgen_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    );
    let applied = format!("SELECT version FROM {quoted}.nextgen_migrations ORDER BY version");
    let record = format!("INSERT INTO {quoted}.nextgen_migrations (version, name) VALUES ($1, $2)");
    let mut transaction = pool.begin().await?;
    let connection: &mut PgConnection = &mut transaction;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(MIGRATION_LOCK)
        .bind(schema)
        .execute(&mut *connection)
        .await?;
    // Several statements, so the simple protocol: `execute` of a plain string.
    (&mut *connection).execute(create.as_str()).await?;
    let applied: Vec<i32> = sqlx::query_scalar(&applied)
        .fetch_all(&mut *connection)
        .await?;
    if let Some(newest) = applied.last()
        && MIGRATIONS.iter().all(|(version, ..)| version < newest)
    {
        return Err(sqlx::Error::Protocol(format!(
            "the schema `{schema}` is at migration {newest}, newer than this version of nextgen-events knows: upgrade nextgen-events, or use another schema"
        )));
    }
    for (version, migration, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let sql = sql.replace("{schema}", quoted);
        (&mut *connection).execute(sql.as_str()).await?;
        sqlx::query(&record)
            .bind(version)
            .bind(migration)
            .execute(&mut *connection)
            .await?;
        tracing::info!(schema, version, migration, "applied a PostgreSQL migration");
    }
    transaction.commit().await
}

/// Whether `error` is the connection breaking (an I/O error, the server shutting down or
/// refusing the session), not the statement failing: sending it again may succeed.
fn broken_connection(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // Class 08: connection exception; 57P0x: the server is shutting down or starting.
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// `duration` in milliseconds, as the tables keep times.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_a_plain_identifier() {
        for good in ["nextgen", "_x", "payments_2", "a$b", &"s".repeat(63)] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in ["", "2x", "a-b", "a b", "\"x\"", "x;drop", &"s".repeat(64)] {
            let error = check_schema(bad).expect_err(bad).to_string();
            assert!(error.contains("is not a schema name"), "{error}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(
            shown("postgres://app:s3cret@db:5432/payments"),
            "postgres://app:***@db:5432/payments"
        );
        assert_eq!(
            shown("postgres://app@db/payments"),
            "postgres://app@db/payments"
        );
        assert_eq!(
            password_in("postgres://app:p@ss@db/x").as_deref(),
            Some("p@ss")
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (index, (version, ..)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(*version).ok(), Some(index + 1));
        }
    }
}
