//! Endpoint configuration: secrets, replay tolerance, body limit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::context::AppData;
use crate::idempotency::{Claims, DEFAULT_LEASE, EventLocks, IdempotencyStore, MemoryStore};
use crate::inbox::WorkerSettings;
use crate::inbox::{Inbox, InboxMode, RetryPolicy};
use crate::route::BodyBudget;
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
    store: Option<Arc<dyn IdempotencyStore>>,
    lease: Duration,
    locks: Arc<EventLocks>,
    object_locks: Arc<EventLocks>,
    inbox: Option<Arc<InboxMode>>,
    workers: usize,
    retry: RetryPolicy,
    poll: Duration,
    data: AppData,
    // Shared by every clone: the bytes of unverified bodies all of a server's workers hold.
    unverified: Arc<BodyBudget>,
}

/// How many bytes of bodies not yet verified an endpoint holds at most by default: 64 MiB.
pub(crate) const DEFAULT_UNVERIFIED_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// How many inbox workers run by default.
pub(crate) const DEFAULT_INBOX_WORKERS: usize = 2;

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
            store: Some(Arc::new(MemoryStore::default())),
            lease: DEFAULT_LEASE,
            locks: Arc::default(),
            object_locks: Arc::default(),
            inbox: None,
            workers: DEFAULT_INBOX_WORKERS,
            retry: RetryPolicy::default(),
            poll: Duration::from_secs(1),
            data: AppData::default(),
            unverified: Arc::new(BodyBudget::new(DEFAULT_UNVERIFIED_BODY_BUDGET)),
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
    pub fn with_idempotency_store(mut self, store: impl IdempotencyStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Turns redelivery detection off: every delivery runs every matching handler.
    pub fn without_idempotency(mut self) -> Self {
        self.store = None;
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
    /// [`receive`](crate::receive) and [`VerifiedDelivery::dispatch`](crate::VerifiedDelivery::dispatch)
    /// still dispatch in place: the inbox is the route's.
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
        let inbox: Arc<dyn Inbox> = Arc::new(inbox);
        self.store = Some(inbox.idempotency_store());
        self.inbox = Some(Arc::new(InboxMode::new(inbox)));
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

    /// Starts the inbox's workers, once, in inbox mode; the route does it when mounted.
    pub(crate) fn start_inbox_workers(&self) {
        let (Some(mode), Some(claims)) = (&self.inbox, self.claims()) else {
            return;
        };
        mode.start(|| WorkerSettings {
            count: self.workers,
            retry: self.retry,
            poll: self.poll,
            shutdown_timeout: Duration::from_secs(30),
            claims,
            data: self.data.clone(),
        });
    }

    /// The idempotency store, unless turned off.
    pub fn idempotency_store(&self) -> Option<&dyn IdempotencyStore> {
        self.store.as_deref()
    }

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// What dispatch claims handlers with, unless redelivery detection is off.
    pub(crate) fn claims(&self) -> Option<Claims> {
        self.store.as_ref().map(|store| Claims {
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

    /// Refuses what this configuration cannot safely verify with: an empty or
    /// whitespace-only secret ([`ConfigError::BlankSecret`]). Mounting the route checks this
    /// (and stops the app at start-up); call it first to handle the error yourself. A
    /// configuration that skipped it still verifies nothing with a blank secret: such
    /// deliveries are answered 500 `secret_blank`.
    ///
    /// ```
    /// use nextgen_events::{ConfigError, WebhookConfig};
    ///
    /// assert!(WebhookConfig::new("whsec_current").check().is_ok());
    /// let blank = WebhookConfig::new("whsec_current").with_secret("");
    /// assert_eq!(blank.check(), Err(ConfigError::BlankSecret { position: 2 }));
    /// ```
    pub fn check(&self) -> Result<(), ConfigError> {
        match self.verifier.secrets().iter().position(Secret::is_blank) {
            Some(index) => Err(ConfigError::BlankSecret {
                position: index + 1,
            }),
            None => Ok(()),
        }
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
            .field("idempotency", &self.store.is_some())
            .field("lease", &self.lease)
            .field("inbox", &self.inbox)
            .finish()
    }
}
