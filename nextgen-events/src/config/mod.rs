//! Endpoint configuration: secrets, replay tolerance, body limit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod error;

pub use error::ConfigError;

use crate::handler::AppData;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use crate::handler::TransactionOf;
use crate::idempotency::{DEFAULT_LEASE, IdempotencyStore, MemoryStore};
use crate::inbox::gauges::GaugeSettings;
use crate::inbox::{Inbox, RetryPolicy};
use crate::limits::MAX_DURATION;
use crate::registry::Registry;
use crate::signature::{Secret, Verifier};

/// The environment variable [`WebhookConfig::from_env`] reads.
pub(crate) const SECRET_ENV: &str = "NEXTGEN_WEBHOOK_SECRET";

/// The default body limit: 1 MiB. NextGen events are a few KiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a body may take to arrive by default: NextGen sends a few KiB at once.
pub(crate) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a webhook endpoint verifies and reads deliveries: settings only.
///
/// A configuration is a plain value: building or cloning it starts nothing and owns nothing
/// that runs. [`Endpoint::new`](crate::Endpoint::new) checks it and builds the endpoint that
/// runs it (the inbox's workers, the in-process claim locks, the budget for unverified
/// bodies), and [`Endpoint::shutdown`](crate::Endpoint::shutdown) stops that.
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
    // A handle: every clone names the same store, so endpoints built from clones (one per
    // actix worker thread) see the same done markers.
    store: StoreChoice,
    lease: Duration,
    inbox: Option<InboxChoice>,
    workers: usize,
    retry: RetryPolicy,
    poll: Duration,
    stop_timeout: Duration,
    data: AppData,
    unverified_body_budget: usize,
    registry: Option<Arc<Registry>>,
    inbox_name: Arc<str>,
    inbox_gauges: Duration,
    backlog_threshold: Duration,
}

/// The inbox named by [`WebhookConfig::with_inbox`], with the idempotency store its handlers'
/// markers live in.
#[derive(Clone)]
pub(crate) struct InboxChoice {
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) store: Arc<dyn IdempotencyStore>,
}

/// What the inbox's workers are told by the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerCount {
    pub(crate) count: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) poll: Duration,
    pub(crate) stop_timeout: Duration,
}

/// How many bytes of bodies not yet verified an endpoint holds at most by default: 64 MiB.
pub(crate) const DEFAULT_UNVERIFIED_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// How many inbox workers run by default.
pub(crate) const DEFAULT_INBOX_WORKERS: usize = 2;

pub(crate) const DEFAULT_INBOX_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The inbox's name in its gauges' `inbox` label by default.
pub(crate) const DEFAULT_INBOX_NAME: &str = "inbox";

/// How often the inbox's gauges are refreshed by default.
pub(crate) const DEFAULT_INBOX_GAUGES: Duration = Duration::from_secs(15);

/// How long the oldest pending entry may wait before the endpoint is not alive, by default.
pub(crate) const DEFAULT_BACKLOG_THRESHOLD: Duration = Duration::from_secs(5 * 60);

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

    /// The inbox's name in its gauges' `inbox` label by default: `inbox` (see
    /// [`with_inbox_name`](Self::with_inbox_name)).
    pub const DEFAULT_INBOX_NAME: &str = DEFAULT_INBOX_NAME;

    /// How often the inbox's gauges are refreshed by default: 15 s (see
    /// [`with_inbox_gauges`](Self::with_inbox_gauges)).
    pub const DEFAULT_INBOX_GAUGES: Duration = DEFAULT_INBOX_GAUGES;

    /// How long the oldest pending entry may wait before the endpoint is not alive, by
    /// default: 5 min (see [`with_backlog_threshold`](Self::with_backlog_threshold)).
    pub const DEFAULT_BACKLOG_THRESHOLD: Duration = DEFAULT_BACKLOG_THRESHOLD;

    /// A configuration with one secret, the default tolerance (300 s) and body limit (1 MiB).
    pub fn new(secret: impl Into<Secret>) -> Self {
        WebhookConfig {
            verifier: Verifier::new(secret),
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            store: StoreChoice::Default(Arc::new(MemoryStore::default())),
            lease: DEFAULT_LEASE,
            inbox: None,
            workers: DEFAULT_INBOX_WORKERS,
            retry: RetryPolicy::default(),
            poll: Duration::from_secs(1),
            stop_timeout: DEFAULT_INBOX_STOP_TIMEOUT,
            data: AppData::default(),
            unverified_body_budget: DEFAULT_UNVERIFIED_BODY_BUDGET,
            registry: None,
            inbox_name: Arc::from(DEFAULT_INBOX_NAME),
            inbox_gauges: DEFAULT_INBOX_GAUGES,
            backlog_threshold: DEFAULT_BACKLOG_THRESHOLD,
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
        let mut secrets = Secret::split_list(list);
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
    /// over all requests in flight (default 64 MiB). Each [`Endpoint`](crate::Endpoint) has
    /// its own budget: build one endpoint and mount clones of it in every actix worker so they
    /// share one.
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
        self.unverified_body_budget = bytes;
        self
    }

    /// How many bytes of unverified bodies the endpoint holds at once at most.
    pub fn unverified_body_budget(&self) -> usize {
        self.unverified_body_budget
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
    /// the endpoint's workers handle it in the background, retrying failures (see
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
    /// // One endpoint, one set of workers: mount clones of it, stop it with `shutdown`.
    /// let endpoint = nextgen_events::Endpoint::new(config).expect("a valid configuration");
    /// # let _ = endpoint; }
    /// ```
    ///
    /// The workers belong to the [`Endpoint`](crate::Endpoint) built from this configuration,
    /// so mounting the configuration itself is refused in inbox mode
    /// ([`ConfigError::InboxNeedsEndpoint`]): actix would build one endpoint, and one set of
    /// workers, per worker thread.
    pub fn with_inbox(mut self, inbox: impl Inbox) -> Self {
        let store = inbox.idempotency_store();
        self.inbox = Some(InboxChoice {
            inbox: Arc::new(inbox),
            store,
        });
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

    /// How long a stop waits for the inbox workers to finish the deliveries they hold when the
    /// last handle of the [`Endpoint`](crate::Endpoint) is dropped without
    /// [`shutdown`](crate::Endpoint::shutdown) (default 30 s; `shutdown` takes its own). A
    /// worker finishes its delivery and records every outcome before it stops. What is still
    /// running when the time runs out is named in a warning and taken again at the next start,
    /// once its lease lapses.
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

    /// The inbox's name in the `inbox` label of its gauges (default `inbox`), so that an app
    /// with two endpoints in inbox mode (two NextGen accounts, say) tells their gauges apart
    /// (see [`metrics`](crate::metrics)). A blank name is refused
    /// ([`ConfigError::BlankInboxName`]).
    ///
    /// ```
    /// use nextgen_events::WebhookConfig;
    ///
    /// let config = WebhookConfig::new("whsec_payments").with_inbox_name("payments");
    /// assert_eq!(config.inbox_name(), "payments");
    /// ```
    pub fn with_inbox_name(mut self, name: impl Into<String>) -> Self {
        self.inbox_name = Arc::from(name.into());
        self
    }

    /// The inbox's name in its gauges.
    pub fn inbox_name(&self) -> &str {
        &self.inbox_name
    }

    /// How often the endpoint reads the inbox's counts ([`InboxOperator::stats`]) into its
    /// gauges and its [health](crate::Endpoint::health) (default 15 s). One read per cadence,
    /// whatever the traffic; the store counts as unreachable when no read has answered for 3
    /// cadences. Zero is refused ([`ConfigError::ZeroDuration`]).
    ///
    /// [`InboxOperator::stats`]: crate::inbox::InboxOperator::stats
    pub fn with_inbox_gauges(mut self, every: Duration) -> Self {
        self.inbox_gauges = every;
        self
    }

    /// How often the inbox's gauges are refreshed.
    pub fn inbox_gauges(&self) -> Duration {
        self.inbox_gauges
    }

    /// How long the oldest entry waiting for its first attempt may wait before the endpoint
    /// is not alive ([`Health::is_alive`](crate::Health::is_alive); default 5 min): the age
    /// a stalled worker shows first. Give it well above the time a burst takes to drain, so
    /// that a busy inbox is not taken for a stalled one. Zero is refused
    /// ([`ConfigError::ZeroDuration`]).
    pub fn with_backlog_threshold(mut self, threshold: Duration) -> Self {
        self.backlog_threshold = threshold;
        self
    }

    /// How long the oldest pending entry may wait before the endpoint is not alive.
    pub fn backlog_threshold(&self) -> Duration {
        self.backlog_threshold
    }

    /// A value for handlers' arguments in inbox mode, usually the same `web::Data<T>` the
    /// `App` registers: the workers dispatch away from any request.
    pub fn with_app_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }

    /// The inbox and its store, in inbox mode.
    pub(crate) fn inbox(&self) -> Option<&InboxChoice> {
        self.inbox.as_ref()
    }

    /// How the inbox's workers run.
    pub(crate) fn workers(&self) -> WorkerCount {
        WorkerCount {
            count: self.workers,
            retry: self.retry,
            poll: self.poll,
            stop_timeout: self.stop_timeout,
        }
    }

    /// How the inbox's gauges are refreshed.
    pub(crate) fn gauges(&self) -> GaugeSettings {
        GaugeSettings {
            inbox: Arc::clone(&self.inbox_name),
            every: self.inbox_gauges,
        }
    }

    /// Values for the handlers' arguments away from a request (the inbox's workers).
    pub(crate) fn app_data(&self) -> &AppData {
        &self.data
    }

    /// The idempotency store, unless turned off.
    pub fn idempotency_store(&self) -> Option<&dyn IdempotencyStore> {
        self.resolved_store().map(|store| &**store)
    }

    /// The store in use: the inbox's in inbox mode, else the chosen or default one.
    pub(crate) fn resolved_store(&self) -> Option<&Arc<dyn IdempotencyStore>> {
        match (&self.inbox, &self.store) {
            (Some(inbox), _) => Some(&inbox.store),
            (None, StoreChoice::Default(store) | StoreChoice::Chosen(store)) => Some(store),
            (None, StoreChoice::Off) => None,
        }
    }

    /// Refuses, before the first delivery, what this configuration cannot safely run with,
    /// each error naming the fix: an empty or whitespace-only secret
    /// ([`ConfigError::BlankSecret`]), `latest_only` handlers on a store without object claims
    /// ([`ConfigError::NoObjectClaims`]), handlers that take a PostgreSQL transaction on a
    /// store that cannot write their markers in it
    /// ([`ConfigError::TransactionNeedsPostgres`]), an inbox with redelivery detection off or with another
    /// store (whichever order the builder calls came in), a zero or clock-overflowing
    /// duration, a blank inbox name ([`ConfigError::BlankInboxName`]), two handlers of the
    /// registry with one name ([`ConfigError::DuplicateHandlerName`]). [`Endpoint::new`](crate::Endpoint::new) and
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
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        for handler in self.registry().iter() {
            let Some(of) = handler.transaction() else {
                continue;
            };
            if !self
                .resolved_store()
                .is_some_and(|store| holds_markers_in_transactions(store, of))
            {
                let handler = handler.name();
                return Err(match of {
                    #[cfg(feature = "postgres")]
                    TransactionOf::Postgres => ConfigError::TransactionNeedsPostgres { handler },
                    #[cfg(feature = "sqlite")]
                    TransactionOf::Sqlite => ConfigError::TransactionNeedsSqlite { handler },
                });
            }
        }
        if self.inbox.is_some() {
            match self.store {
                StoreChoice::Off => return Err(ConfigError::InboxWithoutRedeliveryDetection),
                StoreChoice::Chosen(_) => return Err(ConfigError::InboxWithOtherStore),
                StoreChoice::Default(_) => {}
            }
        }
        self.retry.check()?;
        if let Some(choice) = &self.inbox {
            choice
                .inbox
                .check_settings()
                .map_err(ConfigError::StoreSettings)?;
        }
        if let Some(store) = self.resolved_store() {
            store.check_settings().map_err(ConfigError::StoreSettings)?;
        }
        let durations = [
            ("with_lease", self.lease, false),
            ("with_body_timeout", self.body_timeout, false),
            ("with_tolerance", self.verifier.tolerance(), true),
            ("with_inbox_poll", self.poll, false),
            ("with_inbox_stop_timeout", self.stop_timeout, true),
            ("with_inbox_gauges", self.inbox_gauges, false),
            ("with_backlog_threshold", self.backlog_threshold, false),
        ];
        if self.inbox_name.trim().is_empty() {
            return Err(ConfigError::BlankInboxName);
        }
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

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.lease
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
            .field("unverified_body_budget", &self.unverified_body_budget)
            .field("idempotency", &self.resolved_store().is_some())
            .field("lease", &self.lease)
            .field("inbox", &self.inbox.is_some())
            .field("inbox_workers", &self.workers)
            .field("inbox_name", &self.inbox_name)
            .field("inbox_gauges", &self.inbox_gauges)
            .field("backlog_threshold", &self.backlog_threshold)
            .finish()
    }
}

/// Whether `store` writes done markers in the transactions of handlers that take one `of`
/// its backend.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn holds_markers_in_transactions(store: &Arc<dyn IdempotencyStore>, of: TransactionOf) -> bool {
    match of {
        #[cfg(feature = "postgres")]
        TransactionOf::Postgres => store.pg_transactions().is_some(),
        #[cfg(feature = "sqlite")]
        TransactionOf::Sqlite => store.sqlite_transactions().is_some(),
    }
}
