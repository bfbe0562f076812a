//! Backends opened from a URL: the one place that turns what an operator typed (`sqlite:PATH`,
//! `redis://...?prefix=P`, `postgres://...`) into a store or an inbox, for an app's
//! configuration, the `nextgen inbox` tool and an admin page alike.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nextgen_events::backend::{Access, BackendUrl, open_inbox};
//! use nextgen_events::{Endpoint, WebhookConfig};
//!
//! // From the environment, say `NEXTGEN_INBOX_URL=sqlite:webhooks.sqlite3`, or
//! // `redis://10.0.0.5:6379/0?prefix=payments` or `postgres://app@db/payments` for an inbox
//! // the replicas share.
//! let url = BackendUrl::parse("sqlite:webhooks.sqlite3")?;
//! let inbox = open_inbox(&url, Access::Serve).await?;
//! let endpoint = Endpoint::new(WebhookConfig::from_env()?.with_inbox(inbox.inbox()))?;
//! # let _ = endpoint; Ok(()) }
//! ```
//!
//! | URL | backend | cargo feature |
//! |---|---|---|
//! | `sqlite:PATH`, `sqlite://PATH`, or a plain file path; `?synchronous=normal` to trade a power cut's last commits for speed | a SQLite file | `sqlite` |
//! | `redis://[user:password@]host[:port][/db]?prefix=P`, `rediss://...` | Redis, keys under `P` | `redis` |
//! | `postgres://[user[:password]@]host[:port]/database[?schema=S]`, `postgresql://...`, with sqlx's parameters (`sslmode`, ...) | PostgreSQL, tables in the schema `S` (`nextgen` when not given) | `postgres` |
//!
//! A URL of another scheme is refused with the list of these ([`OpenError::UnknownScheme`]); a
//! backend this build lacks names the feature to enable ([`OpenError::NotBuilt`]). Errors and
//! [`BackendUrl`]'s `Display` never show a password.

mod open;
mod url;

pub use open::{Access, OpenedInbox, open_inbox, open_store};
pub use url::{BackendUrl, OpenError, SqliteDurability};
