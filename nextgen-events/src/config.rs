//! Endpoint configuration: secrets, replay tolerance, body limit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::budget::BodyBudget;
use crate::dispatch::{Claims, EventLocks};
use crate::handler::AppData;
use crate::idempotency::{DEFAULT_LEASE, IdempotencyStore, MemoryStore, StoreError};
use crate::inbox::WorkerSettings;
use crate::inbox::{Inbox, InboxMode, RetryPolicy};
use crate::registry::{DuplicateHandlerName, Registry};
use crate::signature::{Secret, Verifier};

/// The environment variable [`WebhookConfig::from_env`] reads.
pub(crate) const SECRET_ENV: &str = "NEXTGEN_WEBHOOK_SECRET";

/// The default body limit: 1 MiB. NextGen events are a few KiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a body may take to arrive by default: NextGen sends a few KiB at once.
pub(crate) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a webhook endpoint verifies and reads deliveries.
///
/// ```
/// use std::time::Duration;
/// use nextgen_events::WebhookConfig;
///
/// let config = WebhookConfig::new("whsec_current")
///     .with_secret("whsec_previous") // accepted too, during a rotation
///     .with_tolerance(Duration::from_secs(120))
///     .with_body_limit(256 * 1024);
/// assert_eq!(config.secret_count(), 2);
/// // Secrets never show in Debug output.
/// assert!(!format!("{config:?}").contains("whsec_current"));
/// ```
#[derive(Clone)]
pub struct WebhookConfig {
    verifier: Verifier,
    body_limit: usize,
    body_timeout: Duration,
    // Shared by every clone, so all of a server's workers see the same claims and markers.
    store: StoreChoice,
    lease: Duration,
    locks: Arc<EventLocks>,
    object_locks: Arc<EventLocks>,
    inbox: Option<Arc<InboxMode>>,
    workers: usize,
    retry: RetryPolicy,
    poll: Duration,
    stop_timeout: Duration,
    data: AppData,
    // Shared by every clone: the bytes of unverified bodies all of a server's workers hold.
    unverified: Arc<BodyBudget>,
    registry: Option<Arc<Registry>>,
    // Shared by every clone: the subscription hint is logged once per endpoint, not once per
    // actix worker that mounts it.
    hinted: Arc<std::sync::Once>,
}

/// How many bytes of bodies not yet verified an endpoint holds at most by default: 64 MiB.
pub(crate) const DEFAULT_UNVERIFIED_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// How many inbox workers run by default.
pub(crate) const DEFAULT_INBOX_WORKERS: usize = 2;

pub(crate) const DEFAULT_INBOX_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest duration a setting may have: far beyond any sensible lease or timeout, and
/// short enough that every clock (`Instant`, milliseconds in an `i64`) can add it.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Which idempotency store the builder was told to use; resolved against the inbox when the
/// configuration is used, so the order of the builder calls does not matter.
#[derive(Clone)]
enum StoreChoice {
    /// Nothing said: a memory store, or the inbox's own store in inbox mode.
    Default(Arc<dyn IdempotencyStore>),
    /// `with_idempotency_store`.
    Chosen(Arc<dyn IdempotencyStore>),
    /// `without_idempotency`.
    Off,
}

/// Why a [`WebhookConfig`] could not be built from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// A `latest_only` handler on a store that keeps no object claims: every delivery to it
    /// would fail.
    #[error(
        "the handler `{handler}` is `latest_only`, but the idempotency store keeps no object claims (its `object_claims()` is `None`): use a store of nextgen-events (memory, SQLite, Redis), implement `ObjectClaims` for yours, or remove `latest_only`"
    )]
    NoObjectClaims {
        /// The first `latest_only` handler, by name.
        handler: &'static str,
    },
}

impl WebhookConfig {
    /// The environment variable [`from_env`](Self::from_env) reads: `NEXTGEN_WEBHOOK_SECRET`.
    pub const SECRET_ENV: &str = SECRET_ENV;

    /// The default body limit: 1 MiB. NextGen events are a few KiB.
    pub const DEFAULT_BODY_LIMIT: usize = DEFAULT_BODY_LIMIT;

    /// How long a body may take to arrive by default (10 s): NextGen sends a few KiB at once.
    pub const DEFAULT_BODY_TIMEOUT: Duration = DEFAULT_BODY_TIMEOUT;

    /// How many inbox workers run by default (2).
    pub const DEFAULT_INBOX_WORKERS: usize = DEFAULT_INBOX_WORKERS;

    /// How many bytes of bodies not yet verified the endpoint holds at once by default:
    /// 64 MiB (see [`with_unverified_body_budget`](Self::with_unverified_body_budget)).
    pub const DEFAULT_UNVERIFIED_BODY_BUDGET: usize = DEFAULT_UNVERIFIED_BODY_BUDGET;

    /// A configuration with one secret, the default tolerance (300 s) and body limit (1 MiB).
    pub fn new(secret: impl Into<Secret>) -> Self {
        WebhookConfig {
            verifier: Verifier::new(secret),
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            store: StoreChoice::Default(Arc::new(MemoryStore::default())),
            lease: DEFAULT_LEASE,
            locks: Arc::default(),
            object_locks: Arc::default(),
            inbox: None,
            workers: DEFAULT_INBOX_WORKERS,
            retry: RetryPolicy::default(),
            poll: Duration::from_secs(1),
            stop_timeout: DEFAULT_INBOX_STOP_TIMEOUT,
            data: AppData::default(),
            unverified: Arc::new(BodyBudget::new(DEFAULT_UNVERIFIED_BODY_BUDGET)),
            registry: None,
            hinted: Arc::new(std::sync::Once::new()),
        }
    }

    /// Reads the secrets from `NEXTGEN_WEBHOOK_SECRET`: one secret, or several separated by
    /// commas (spaces around each are ignored) while a secret is being rotated.
    pub fn from_env() -> Result<Self, ConfigError> {
        let value = std::env::var(SECRET_ENV).map_err(|error| match error {
            std::env::VarError::NotPresent => ConfigError::MissingSecret {
                variable: SECRET_ENV,
            },
            std::env::VarError::NotUnicode(_) => ConfigError::NotUnicode {
                variable: SECRET_ENV,
            },
        })?;
        Self::from_secret_list(&value)
    }

    /// Builds a configuration from a comma-separated list of secrets, as `from_env` reads it.
    pub fn from_secret_list(list: &str) -> Result<Self, ConfigError> {
        let mut secrets = list.split(',').map(str::trim).filter(|s| !s.is_empty());
        let first = secrets.next().ok_or(ConfigError::EmptySecret {
            variable: SECRET_ENV,
        })?;
        Ok(secrets.fold(WebhookConfig::new(first), WebhookConfig::with_secret))
    }

    /// Accepts one more secret: a delivery is genuine when it matches any of them.
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.verifier = self.verifier.with_secret(secret);
        self
    }

    /// How far a delivery's timestamp may be from now, in either direction (default 300 s).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.verifier = self.verifier.with_tolerance(tolerance);
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB); larger ones are answered 413.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long the whole body may take to arrive once the headers are in (default 10 s); a
    /// slower one is answered 408 `body_timeout` and its connection closed, so slow senders
    /// cannot hold connections open.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many bytes of bodies whose signature is not checked yet the endpoint holds at once,
    /// over all requests in flight and every clone of this configuration (default 64 MiB).
    /// Anyone who can send a well-formed signature header can make the route buffer a body
    /// (up to the body limit, for up to the body timeout) before its HMAC is checked; past
    /// this budget a request is answered 503 `unverified_body_budget_spent` with
    /// `Retry-After` and its connection closed. A body's share is given back as soon as it is
    /// verified or refused. Set it to a few times the body limit at least.
    ///
    /// ```
    /// use nextgen_events::WebhookConfig;
    ///
    /// let config = WebhookConfig::new("whsec_current").with_unverified_body_budget(16 << 20);
    /// assert_eq!(config.unverified_body_budget(), 16 << 20);
    /// ```
    pub fn with_unverified_body_budget(mut self, bytes: usize) -> Self {
        self.unverified = Arc::new(BodyBudget::new(bytes));
        self
    }

    /// How many bytes of unverified bodies the endpoint holds at once at most.
    pub fn unverified_body_budget(&self) -> usize {
        self.unverified.limit()
    }

    /// The budget the route reads unverified bodies within.
    pub(crate) fn unverified_bodies(&self) -> &BodyBudget {
        &self.unverified
    }

    /// Replaces the system clock (seconds since the Unix epoch), e.g. in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.verifier = self.verifier.with_clock(clock);
        self
    }

    /// Where handled events are remembered, so a redelivered event id does not run its
    /// successful handlers again. The default is a [`MemoryStore`] (72 h, 100,000 entries).
    ///
    /// In inbox mode the handlers' markers live in the inbox's own store: naming another one
    /// as well is refused when the route is mounted ([`ConfigError::InboxWithOtherStore`]).
    pub fn with_idempotency_store(mut self, store: impl IdempotencyStore) -> Self {
        self.store = StoreChoice::Chosen(Arc::new(store));
        self
    }

    /// Turns redelivery detection off: every delivery runs every matching handler.
    ///
    /// Refused with an inbox ([`ConfigError::InboxWithoutRedeliveryDetection`]), whichever
    /// is set first: the inbox needs it to run each handler once across retries.
    pub fn without_idempotency(mut self) -> Self {
        self.store = StoreChoice::Off;
        self
    }

    /// How long a handler's claim on an event holds without renewal (default 60 s). It is
    /// renewed about every third of it while the handler runs, so a slow handler keeps it; a
    /// process that died stops renewing, and a redelivery after the lease runs the handler.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Inbox mode: the route answers 200 once a verified delivery is durably in `inbox`, and
    /// workers started with the app handle it in the background, retrying failures (see
    /// [`inbox`](crate::inbox)). The handlers' claims and done markers go to the inbox's own
    /// idempotency store. Handler arguments from app data come from
    /// [`with_app_data`](Self::with_app_data), since there is no request to take them from.
    /// Every way into the [`Endpoint`](crate::Endpoint) (the routes, the extractors,
    /// [`Endpoint::receive`](crate::Endpoint::receive), [`Endpoint::handle`](crate::Endpoint::handle))
    /// keeps deliveries in the inbox then.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")] {
    /// use nextgen_events::sqlite::SqliteInbox;
    /// use nextgen_events::WebhookConfig;
    ///
    /// let inbox = SqliteInbox::open("webhooks.sqlite3").expect("a writable file");
    /// let config = WebhookConfig::new("whsec_...").with_inbox(inbox).with_inbox_workers(4);
    /// # let _ = config; }
    /// ```
    pub fn with_inbox(mut self, inbox: impl Inbox) -> Self {
        self.inbox = Some(Arc::new(InboxMode::new(Arc::new(inbox))));
        self
    }

    /// How many inbox workers run (default 2); each handles one delivery at a time. With 0
    /// this process only takes deliveries in, for other processes on the same inbox to handle.
    pub fn with_inbox_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// When failed inbox deliveries are retried, and when they become dead letters.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long a stop waits for the inbox workers to finish the deliveries they hold
    /// (default 30 s). The stop comes when the last clone of the configuration is dropped (the
    /// server stopped); a worker finishes its delivery and records every outcome before it
    /// stops. What is still running when the time runs out is named in a warning and taken again
    /// at the next start, once its lease lapses.
    pub fn with_inbox_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// How often idle inbox workers look for due deliveries (default 1 s; a new delivery
    /// wakes one at once).
    pub fn with_inbox_poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// A value for handlers' arguments in inbox mode, usually the same `web::Data<T>` the
    /// `App` registers: the workers dispatch away from any request.
    pub fn with_app_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// The inbox, in inbox mode.
    pub(crate) fn inbox_mode(&self) -> Option<&InboxMode> {
        self.inbox.as_deref()
    }

    /// Starts the inbox's workers, once, in inbox mode (nothing otherwise), for
    /// [`Endpoint::new`](crate::Endpoint::new), which checked the configuration first.
    ///
    /// Before any worker takes a delivery, the first one recovers what an earlier run of the
    /// process left running. On a SQLite inbox the workers first take the exclusive lock beside
    /// the file (`SqliteInbox`, feature `sqlite`): it fails with
    /// [`ConfigError::Workers`] holding [`StoreError::Locked`], naming the holder, while
    /// another process's workers run on it.
    pub(crate) fn start_inbox_workers(&self) -> Result<(), ConfigError> {
        let (Some(mode), Some(claims)) = (&self.inbox, self.claims()) else {
            return Ok(());
        };
        mode.start(|| WorkerSettings {
            count: self.workers,
            retry: self.retry,
            poll: self.poll,
            shutdown_timeout: self.stop_timeout,
            claims,
            verifier: self.verifier.clone(),
            registry: self.shared_registry(),
            data: self.data.clone(),
        })
        .map_err(ConfigError::Workers)
    }

    /// The idempotency store, unless turned off.
    pub fn idempotency_store(&self) -> Option<&dyn IdempotencyStore> {
        self.resolved_store().map(|store| &**store)
    }

    /// The store in use: the inbox's in inbox mode, else the chosen or default one.
    fn resolved_store(&self) -> Option<&Arc<dyn IdempotencyStore>> {
        match (&self.inbox, &self.store) {
            (Some(mode), _) => Some(&mode.store),
            (None, StoreChoice::Default(store) | StoreChoice::Chosen(store)) => Some(store),
            (None, StoreChoice::Off) => None,
        }
    }

    /// Refuses, before the first delivery, what this configuration cannot safely run with,
    /// each error naming the fix: an empty or whitespace-only secret
    /// ([`ConfigError::BlankSecret`]), `latest_only` handlers on a store without object claims
    /// ([`ConfigError::NoObjectClaims`]), an inbox with redelivery detection off or with another
    /// store (whichever order the builder calls came in), a zero or clock-overflowing
    /// duration, two handlers of the registry with one name
    /// ([`ConfigError::DuplicateHandlerName`]). [`Endpoint::new`](crate::Endpoint::new) and
    /// mounting the route check this (mounting stops the app at start-up); `Endpoint::new`
    /// gives the error as a value. The verifier also refuses to verify
    /// with a blank secret on its own: such deliveries are answered 500 `secret_blank`.
    ///
    /// ```
    /// use nextgen_events::{ConfigError, WebhookConfig};
    ///
    /// assert!(WebhookConfig::new("whsec_current").check().is_ok());
    /// let blank = WebhookConfig::new("whsec_current").with_secret("");
    /// assert_eq!(blank.check(), Err(ConfigError::BlankSecret { position: 2 }));
    /// ```
    pub fn check(&self) -> Result<(), ConfigError> {
        self.registry().check_names()?;
        if let Some(index) = self.verifier.secrets().iter().position(Secret::is_blank) {
            return Err(ConfigError::BlankSecret {
                position: index + 1,
            });
        }
        if let Some(store) = self.resolved_store()
            && store.object_claims().is_none()
            && let Some(handler) = self
                .registry()
                .iter()
                .find(|handler| handler.is_latest_only())
        {
            return Err(ConfigError::NoObjectClaims {
                handler: handler.name(),
            });
        }
        if self.inbox.is_some() {
            match self.store {
                StoreChoice::Off => return Err(ConfigError::InboxWithoutRedeliveryDetection),
                StoreChoice::Chosen(_) => return Err(ConfigError::InboxWithOtherStore),
                StoreChoice::Default(_) => {}
            }
        }
        let durations = [
            ("with_lease", self.lease, false),
            ("with_body_timeout", self.body_timeout, false),
            ("with_tolerance", self.verifier.tolerance(), true),
            ("with_inbox_poll", self.poll, false),
            ("with_inbox_stop_timeout", self.stop_timeout, true),
        ];
        for (setting, duration, zero_allowed) in durations {
            if !zero_allowed && duration.is_zero() {
                return Err(ConfigError::ZeroDuration { setting });
            }
            if duration > MAX_DURATION {
                return Err(ConfigError::DurationTooLong {
                    setting,
                    seconds: duration.as_secs(),
                });
            }
        }
        Ok(())
    }

    /// The handlers this endpoint runs (default: every `#[nextgen_event]` handler linked into
    /// the binary, [`Registry::global`]). Two endpoints of one app (two NextGen accounts, each
    /// with its secret) can each run their own set; a test can run only its handlers.
    ///
    /// ```
    /// use nextgen_events::{Registry, WebhookConfig};
    ///
    /// let payments = Registry::from_handlers(
    ///     Registry::global().iter().filter(|handler| handler.name().starts_with("payments::")),
    /// );
    /// let config = WebhookConfig::new("whsec_payments").with_registry(payments);
    /// assert!(config.registry().iter().all(|handler| handler.name().starts_with("payments::")));
    /// ```
    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// The handlers this endpoint runs.
    pub fn registry(&self) -> &Registry {
        match &self.registry {
            Some(registry) => registry,
            None => Registry::global(),
        }
    }

    /// The registry, shared, for the inbox's workers.
    pub(crate) fn shared_registry(&self) -> Option<Arc<Registry>> {
        self.registry.clone()
    }

    /// Calls `log` once for this configuration and its clones.
    pub(crate) fn once_per_endpoint(&self, log: impl FnOnce()) {
        self.hinted.call_once(log);
    }

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// What dispatch claims handlers with, unless redelivery detection is off.
    pub(crate) fn claims(&self) -> Option<Claims> {
        self.resolved_store().map(|store| Claims {
            store: Arc::clone(store),
            lease: self.lease,
            locks: Arc::clone(&self.locks),
            object_locks: Arc::clone(&self.object_locks),
        })
    }

    /// How long a body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The verifier built from this configuration.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// How many secrets are accepted.
    pub fn secret_count(&self) -> usize {
        self.verifier.secrets().len()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("secrets", &self.verifier.secrets())
            .field("tolerance", &self.verifier.tolerance())
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("unverified_body_budget", &self.unverified.limit())
            .field("idempotency", &self.resolved_store().is_some())
            .field("lease", &self.lease)
            .field("inbox", &self.inbox)
            .finish()
    }
}
