//! PostgreSQL: a [`PgStore`] (claims and done markers) and a [`PgInbox`] that any number of
//! replicas share, in a schema of the database your app already runs.
//!
//! Enabled by the cargo feature `postgres`, on [`sqlx`](https://docs.rs/sqlx)'s PostgreSQL
//! driver (tokio; queries checked at run time, so nothing needs a database to compile). Hand
//! over a URL or your own [`PgPool`]; either way the tables are created, or
//! brought up to this version, when the store or inbox is made: versioned migrations, taken
//! under an advisory lock so that replicas starting together run each one once.
//!
//! ```no_run
//! use nextgen_events::WebhookConfig;
//! use nextgen_events::postgres::PgInbox;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The same schema on every replica of the endpoint.
//! let inbox = PgInbox::connect("postgres://app@db.internal/payments", "nextgen").await?;
//! let config = WebhookConfig::from_env()?.with_inbox(inbox);
//! # let _ = config; Ok(()) }
//! ```
//!
//! # What is stored
//!
//! | table | one row per | changes |
//! |---|---|---|
//! | `nextgen_inbox` | delivery: its id, type, state, due time, lease owner, attempts, last errors | at every take and finish |
//! | `nextgen_inbox_bodies` | delivery: the body as signed, its signature header and time | never (written once, deleted with the entry) |
//! | `nextgen_handlers` | `(event id, handler)`: a claim under a lease, then a done marker for the retention | at claim, renewal and completion |
//! | `nextgen_objects` | `(handler, object id)` of a `latest_only` handler: its claim and newest watermark | at each of its deliveries |
//! | `nextgen_migrations` | migration applied | once |
//!
//! The body is apart from the state that changes, so that a state update writes a small row
//! (PostgreSQL writes a new version of a row at each update) and vacuum keeps up.
//!
//! # What the 200 means
//!
//! In inbox mode the route answers 200 once the delivery's transaction has committed.
//! Deliveries that arrive together share one transaction (one commit, one log flush, one
//! `NOTIFY`), each answered after it. With the server's default `synchronous_commit = on`, a
//! committed delivery is on the server's disk; with `off` a crash of the server (not of your
//! app) may lose the last ones answered 200, and with synchronous replication `remote_apply`
//! or `on` it is on a standby too. While the database is down or unreachable the route
//! answers 500 within about 2 s, and NextGen delivers again later.
//!
//! # Workers of several replicas
//!
//! Each worker takes the due entry first with `FOR UPDATE SKIP LOCKED` under a lease it
//! renews while the handlers run; an entry whose replica died is taken by another once it has
//! been idle for a lease and a half (by then the handlers' claims it held have lapsed too). No
//! replica holds a lock of its own: they come and go. The leases and due times are on each
//! replica's clock, so keep the clocks in step (NTP) within a small part of the lease. Idle workers wait on `LISTEN` for other replicas' deliveries and poll besides; a
//! listener that loses its connection reconnects, and the workers look for what it missed.
//!
//! # What to watch
//!
//! - Handled entries are deleted after the retention ([`PgInbox::with_retention`], 30 days),
//!   in batches of 1000, hourly; done markers and watermarks after theirs. Autovacuum keeps up
//!   with that on its defaults; a transaction left open for hours (an idle `BEGIN` in a
//!   console) holds back every table's vacuum and slows the workers' take: watch
//!   `pg_stat_activity` for old `xact_start`, and `pg_stat_user_tables.n_dead_tup` of
//!   `nextgen_inbox`.
//! - The pool [`PgInbox::connect`] makes holds up to 20 connections; the workers, the intake's
//!   writers (4) and the listener (1, its own) use them.
//!
//! # PgBouncer
//!
//! In transaction mode PgBouncer cannot hold a `LISTEN`: make the inbox
//! [`with_listen(false)`](PgInbox::with_listen), and the workers poll. Its versions before 1.21
//! also break the prepared statements sqlx uses: use 1.21 or later with
//! `max_prepared_statements` set, or session mode.
//!
//! # Exactly once
//!
//! A handler that takes the app's transaction (`tx: &mut PgConnection`) has its claim, its
//! writes and its done marker committed together, in one transaction on the store's pool:
//! see the guide's [Exactly once](crate::guide::exactly_once). Other handlers keep the
//! usual promise: a process killed between a handler's effect and its marker runs it once
//! more.

mod database;
mod inbox;
mod intake;
mod listen;
mod store;

pub use database::DEFAULT_SCHEMA;
pub(crate) use database::check_schema;
pub use inbox::PgInbox;
/// The connection a transactional handler takes (`tx: &mut PgConnection`), the pool, and the
/// sqlx this crate is built on: use it (`nextgen_events::postgres::sqlx::query(...)`) or the
/// same version of your own, so that the handler's types are these.
pub use sqlx::{self, PgConnection, PgPool};
pub use store::PgStore;
