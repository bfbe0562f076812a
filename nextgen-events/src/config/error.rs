//! `ConfigError`: why a configuration is refused, each message naming what to change.

use crate::idempotency::StoreError;
use crate::inbox::RetryPolicyError;
use crate::registry::DuplicateHandlerName;

#[cfg(doc)]
use super::WebhookConfig;

/// Why a [`WebhookConfig`] could not be built or is refused: each message names the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The variable is not set.
    #[error(
        "the environment variable `{variable}` is not set: set it to the endpoint's signing secret (`whsec_...`), or to several secrets separated by commas during a rotation"
    )]
    MissingSecret {
        /// The variable's name.
        variable: &'static str,
    },
    /// The variable is set but holds no secret (empty, or only commas and spaces).
    #[error(
        "the environment variable `{variable}` is empty: set it to the endpoint's signing secret (`whsec_...`)"
    )]
    EmptySecret {
        /// The variable's name.
        variable: &'static str,
    },
    /// A configured secret is empty or only whitespace (see [`WebhookConfig::check`]).
    #[error(
        "secret {position} of the webhook configuration is empty or only whitespace, so anyone could sign with it: set it to the endpoint's signing secret (`whsec_...`) from the NextGen dashboard, e.g. in `NEXTGEN_WEBHOOK_SECRET`"
    )]
    BlankSecret {
        /// The secret's position, counting from 1 (`new`'s first, then each `with_secret`).
        position: usize,
    },
    /// The variable is not valid UTF-8.
    #[error("the environment variable `{variable}` is not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        variable: &'static str,
    },
    /// Inbox mode with redelivery detection turned off: deliveries would be acknowledged
    /// and no worker could run them once each.
    #[error(
        "an inbox needs redelivery detection, but `without_idempotency()` turned it off: remove `without_idempotency()` (the inbox keeps its handlers' done markers in its own store)"
    )]
    InboxWithoutRedeliveryDetection,
    /// Inbox mode with another idempotency store named too.
    #[error(
        "an inbox keeps its handlers' claims and done markers in its own store, but `with_idempotency_store(..)` names another: remove `with_idempotency_store(..)`, or drop the inbox for inline mode with that store"
    )]
    InboxWithOtherStore,
    /// A duration that must not be zero is.
    #[error(
        "`{setting}` is zero: give it a positive duration (see its documentation for the default)"
    )]
    ZeroDuration {
        /// The builder method.
        setting: &'static str,
    },
    /// The inbox's name, the `inbox` label of its gauges, is empty or only whitespace.
    #[error(
        "`with_inbox_name` is empty or only whitespace, so the inbox's gauges could not be told apart: give it a name such as `payments` (default `inbox`)"
    )]
    BlankInboxName,
    /// A duration too long for the clocks that must add it.
    #[error(
        "`{setting}` is {seconds} s, longer than the 10 years a clock can safely add: give it a duration in seconds to hours (see its documentation for the default)"
    )]
    DurationTooLong {
        /// The builder method.
        setting: &'static str,
        /// The duration given, in whole seconds.
        seconds: u64,
    },
    /// Two handlers of the registry share a name, so they would share their idempotency
    /// records.
    #[error(transparent)]
    DuplicateHandlerName(#[from] DuplicateHandlerName),
    /// The inbox's workers could not start (another process's workers hold a SQLite inbox).
    #[error("the inbox's workers cannot start: {0}")]
    Workers(StoreError),
    /// A configuration in inbox mode given to a route: the inbox's workers belong to one
    /// [`Endpoint`](crate::Endpoint), which the app must build once and hold to stop it.
    #[error(
        "an inbox's workers belong to one `Endpoint`, and the app needs it to stop them: build it once with `let endpoint = Endpoint::new(config)?;`, mount `endpoint.clone()` in place of the configuration (actix builds the app once per worker thread), and call `endpoint.shutdown(timeout).await` after the server stops"
    )]
    InboxNeedsEndpoint,
    /// The inbox's retry policy cannot be followed (a jitter that is not a fraction, a wait
    /// no clock can hold): its workers would fail on the first failed delivery.
    #[error("the inbox's retry policy is refused: {0}")]
    RetryPolicy(#[from] RetryPolicyError),
    /// A setting of the idempotency store (or of the inbox's) that its backend cannot hold.
    #[error("the idempotency store's settings are refused: {0}")]
    StoreSettings(StoreError),
    /// A `latest_only` handler on a store that keeps no object claims: every delivery to it
    /// would fail.
    #[error(
        "the handler `{handler}` is `latest_only`, but the idempotency store keeps no object claims (its `object_claims()` is `None`): use a store of nextgen-events (memory, SQLite, Redis), implement `ObjectClaims` for yours, or remove `latest_only`"
    )]
    NoObjectClaims {
        /// The first `latest_only` handler, by name.
        handler: &'static str,
    },
    /// A handler that takes the app's PostgreSQL transaction, on a store that cannot write
    /// its done marker in that transaction (memory, SQLite, Redis, none): it could not run
    /// exactly once, so it does not run at all.
    #[error(
        "the handler `{handler}` takes a PostgreSQL transaction (`&mut PgConnection`), so its done marker must commit in that transaction, and the idempotency store cannot hold it there: use a `PgStore` (`with_idempotency_store`) or a `PgInbox` (`with_inbox`) on the database of the handler's tables, or take the transaction out of the handler"
    )]
    TransactionNeedsPostgres {
        /// The first such handler, by name.
        handler: &'static str,
    },
    /// A handler that takes a `SqliteTx`, on a store whose file cannot hold its writes and its
    /// done marker in one transaction (memory, Redis, PostgreSQL, none).
    #[error(
        "the handler `{handler}` takes a `SqliteTx`, so its writes and its done marker must commit in one transaction of the store's SQLite file, and the idempotency store is not one: use a `SqliteStore` (`with_idempotency_store`) or a `SqliteInbox` (`with_inbox`) on the file of the handler's tables, or take the transaction out of the handler"
    )]
    TransactionNeedsSqlite {
        /// The first such handler, by name.
        handler: &'static str,
    },
}
