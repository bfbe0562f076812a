//! A Redis-backed [`IdempotencyStore`](crate::idempotency::IdempotencyStore): several replicas of a receiver share their claims and
//! done markers, so an event delivered to two of them at once runs each handler once. And
//! [`RedisInbox`], an [`Inbox`](crate::inbox::Inbox) on a Redis stream that replicas share in
//! inbox mode (see [below](#the-inbox)).
//!
//! Enabled by the cargo feature `redis`. Built on the [`redis`](https://docs.rs/redis) crate's
//! async [`ConnectionManager`](::redis::aio::ConnectionManager) (tokio, which actix runs on): one multiplexed connection,
//! re-established in the background after it drops.
//!
//! # What is stored
//!
//! One string key per `(event id, handler)`: `<prefix>:<event id>:<handler path>`, for example
//! `payments:evt_1Oq2nA9Zt8x3Jk2L:my_service::handlers::on_charge`. In the event id, `%` and
//! `:` are written `%25` and `%3A` (NextGen's ids contain neither), so keys never collide.
//!
//! | value | written by | expires after |
//! |---|---|---|
//! | the claim's owner token (32 hex digits) | a claim, when the key is absent | the lease ([`WebhookConfig::lease`](crate::WebhookConfig::lease), 60 s by default, renewed while the handler runs) |
//! | `done` | a handler's success, by the claim's owner | the retention ([`RedisIdempotencyStore::with_retention`], 72 h by default) |
//!
//! For `latest_only` handlers, two more keys per `(handler, object id)`, where the object id is
//! escaped like an event id and the segment `%latest` cannot be an escaped event id (a `%`
//! there is always followed by `25` or `3A`), so these keys never meet the ones above:
//!
//! | key | value | written by | expires after |
//! |---|---|---|---|
//! | `<prefix>:%latest:<handler>:<object id>:claim` | the object claim's owner token | an object claim, when the key is absent | the lease, renewed while the handler runs |
//! | `<prefix>:%latest:<handler>:<object id>:newest` | a hash: `created`, `event` (the newest event handled) | a success, by the object claim's owner, atomically with deleting the claim | the retention, from the last success |
//!
//! A failed handler's claim is deleted, so a redelivery runs it again. Every operation is a
//! Lua script, atomic on the server, and renew, complete and release act only while the key
//! still holds the caller's token: a delivery whose lease lapsed cannot touch the claim of the
//! delivery that took over.
//!
//! # Failures
//!
//! Every Redis error becomes a [`StoreError`](crate::idempotency::StoreError) naming the operation, with any password
//! removed. A claim that fails answers the delivery 500 without running a handler, so the
//! sender delivers it again; a success that was recorded as `done` is never run again, whatever
//! happens to the connection. A command that could not reach the server (connection refused
//! or dropped) is sent once more on a fresh connection before it fails.
//!
//! ```no_run
//! use nextgen_events::WebhookConfig;
//! use nextgen_events::redis::RedisIdempotencyStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Inside any tokio runtime: the connection's background task lives on the library's
//! // backend thread, which a stop never blocks.
//! let store = RedisIdempotencyStore::connect("redis://127.0.0.1:6379/", "payments").await?;
//! let config = WebhookConfig::from_env()?.with_idempotency_store(store);
//! # let _ = config; Ok(()) }
//! ```
//!
//! # The inbox
//!
//! In inbox mode ([`WebhookConfig::with_inbox`](crate::WebhookConfig::with_inbox)) with a
//! [`RedisInbox`], the route answers 200 once the delivery is written to Redis, and the
//! workers of whichever replica takes it handle it; one that a replica that died was handling
//! is taken over by another after an idle timeout. Its keys start with `<prefix>:inbox:`; the
//! handlers' markers are this store's keys, under the same prefix. See [`RedisInbox`] for
//! the keys and how a delivery moves between them.
//!
//! **Persistence.** Redis acknowledges a write once it is in its memory: that a delivery
//! answered 200 survives a crash of Redis or a power cut depends on Redis's persistence. For
//! the promise the SQLite inbox makes, run Redis with `appendonly yes` and
//! `appendfsync always` (every write on disk before Redis answers). With `appendfsync
//! everysec` (Redis's default with AOF) up to about the last second of acknowledged
//! deliveries can be lost, and NextGen does not send them again; RDB snapshots alone, or an
//! asynchronous replica alone, lose more. (The inbox does not send `WAITAOF`: it would block
//! the one multiplexed connection that every other command shares.) Keep
//! `maxmemory-policy noeviction`.
//!
//! ```no_run
//! use nextgen_events::WebhookConfig;
//! use nextgen_events::redis::RedisInbox;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The same prefix on every replica of the endpoint.
//! let inbox = RedisInbox::connect("redis://127.0.0.1:6379/", "payments").await?;
//! let config = WebhookConfig::from_env()?.with_inbox(inbox);
//! # let _ = config; Ok(()) }
//! ```

mod connection;
mod inbox;
mod store;

pub use connection::redact_url;
pub use inbox::RedisInbox;
pub use store::{DONE, RedisIdempotencyStore};
