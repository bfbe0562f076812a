//! The example receiver: an actix-web server that verifies NextGen webhooks and dispatches them
//! to the `#[nextgen_event]` handlers in `handlers.rs`.
//!
//! ```text
//! cargo run -p nextgen-examples --bin server
//! cargo run -p nextgen-cli -- trigger charge.succeeded
//! ```
//!
//! - `POST /webhook`: the NextGen endpoint (`nextgen_events::actix::webhooks`).
//! - `GET /healthz`: liveness, for a Kubernetes `livenessProbe` (`Health::is_alive`): 200 while
//!   every inbox worker runs, holds its lock where one is needed (SQLite) and no entry has waited
//!   for its first attempt longer than the backlog threshold (5 min); 503 otherwise. A restart is
//!   the fix for what fails it.
//! - `GET /readyz`: readiness, for a `readinessProbe` (`Health::is_ready`): 200 while the
//!   endpoint takes deliveries and, in inbox mode, the inbox's store answered its last read;
//!   503 while stopping or while the store does not answer.
//!
//!   Both answer `Health::summary` as text: `ok: ...`, or the verdicts and what is wrong.
//! - `GET /metrics`: the library's metrics in Prometheus text format, when `NEXTGEN_METRICS=1`.
//! - `GET /webhooks/inbox`: in inbox mode, the inbox page (`nextgen_events::actix::inbox_page`):
//!   counts, the last 24 hours, failing handlers, the entries, replays; open with full access
//!   to requests from loopback, denied to every other address (an app puts its own
//!   authentication there).
//!
//! With `NEXTGEN_BENCH_ROUTES=1` only (the scripts in `scripts/` set it), routes without
//! authentication for benchmarks and load tests:
//!
//! - `GET /ledger`: the totals the `charge.succeeded` handler keeps in app state.
//! - `POST /echo`: reads the body (same 1 MiB limit) and answers 200 `{"received": true}`,
//!   without verifying or parsing: a baseline for benchmarks.
//! - `POST /floor`: one signature check and one typed parse, no handler.
//!
//! Environment: `NEXTGEN_WEBHOOK_SECRET` (the endpoint's secret, or several separated by commas
//! during a rotation; without it the server runs with the trigger tool's test secret, and it
//! refuses to listen on anything but loopback while any of its secrets is the test secret),
//! `HOST` (default `127.0.0.1`), `PORT` (default `8080`, `0` for any free port),
//! `RUST_LOG` (default `info`). Where handled events are remembered, at most one of:
//!
//! - nothing set: in this process's memory, handlers run before the answer (inline);
//! - `NEXTGEN_REDIS_URL`: in that Redis, shared by every replica (inline; feature `redis`);
//! - `NEXTGEN_STORE_SQLITE=PATH`: in that SQLite file, kept across restarts (inline; feature
//!   `sqlite`);
//! - `NEXTGEN_INBOX_SQLITE=PATH`: inbox mode: each delivery is committed to that SQLite file,
//!   answered 200, and handled in the background by `NEXTGEN_INBOX_WORKERS` workers (default 2;
//!   0 only takes deliveries in), with retries and dead letters (feature `sqlite`);
//!   `NEXTGEN_INBOX_DURABILITY=normal` trades a power cut's last writes for speed.
//! - `NEXTGEN_INBOX_REDIS=URL`: inbox mode on a Redis stream that replicas share, keys under
//!   `NEXTGEN_INBOX_PREFIX` (default `nextgen:example`): each delivery is written to Redis,
//!   answered 200, and handled by one replica's workers (`NEXTGEN_INBOX_WORKERS`); a delivery
//!   a replica that died was handling is taken over by another (feature `redis`);
//! - `NEXTGEN_INBOX_URL=URL` or `NEXTGEN_STORE_URL=URL`: inbox mode, or inline mode's store, on
//!   the backend the URL names (`sqlite:PATH`, `redis://HOST?prefix=P`,
//!   `postgres://USER@HOST/DB?schema=S`), opened as every mode is, by `nextgen_events::backend`.
//!   A PostgreSQL inbox (feature `postgres`) is shared by every replica on the same database
//!   and schema (`nextgen` when the URL names none), created with its tables at the first
//!   start: each delivery is committed there, answered 200, and handled by one replica's
//!   workers (`NEXTGEN_INBOX_WORKERS`); a delivery a replica that died was handling is taken
//!   by another once its lease lapses. With `NEXTGEN_STORE_URL=postgres://...`, inline mode's
//!   claims and done markers are in that schema, shared by the replicas.
//!
//! `NEXTGEN_LEASE_MS` sets the handlers' claim lease, which is also how long an inbox entry
//! stays with a worker between renewals (default 60 s; a Redis replica takes over a dead one's
//! delivery after a lease and a half, a PostgreSQL replica once it lapses).
//! `NEXTGEN_RETRY_FIRST_MS` sets the first wait before a failed inbox delivery is tried again
//! (default 30 s, each next one twice the last). For `scripts/chaos.sh`:
//! `NEXTGEN_STOP_TIMEOUT_MS` bounds the stop after SIGTERM or Ctrl-C (default 30 s): the
//! server answers what is in flight, then the endpoint's workers finish what they hold.
//! `NEXTGEN_RUN_LOG=PATH` makes the `*` handler append `NEXTGEN_RUN_TAG EVENT_ID` to that
//! file (synced) on every run, after `NEXTGEN_HANDLER_DELAY_MS`.
//!
//! On PostgreSQL (a `postgres://` `NEXTGEN_INBOX_URL` or `NEXTGEN_STORE_URL`) the server also
//! runs a handler that takes the app's transaction: `charge.captured` is booked in the table
//! `captured_charges` of the inbox's or store's schema (made at start-up when missing), in the
//! transaction its done marker commits in: exactly once. In every other mode that handler is
//! left out of the endpoint's registry.

mod handlers;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use nextgen_events::admin::PageAccess;
use nextgen_events::backend::{Access, BackendUrl, SqliteDurability, open_inbox, open_store};
use nextgen_events::inbox::RetryPolicy;
use nextgen_events::payloads::Charge;
use nextgen_events::{
    ConfigError, Endpoint, Event, Registry, SignatureHeader, Verifier, WebhookConfig,
};
use nextgen_examples::TEST_SECRET;
use tracing_subscriber::EnvFilter;

use crate::handlers::Ledger;

/// The environment variable the secret comes from.
const SECRET_ENV: &str = WebhookConfig::SECRET_ENV;

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 8080;

#[actix_web::main]
async fn main() -> ExitCode {
    init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

async fn run() -> Result<(), String> {
    let config = webhook_config()?;
    // The parsed list, not the variable: `whsec_test_secret,` or `whsec_real,whsec_test_secret`
    // accept the public test secret just the same.
    let test_secret = config
        .verifier()
        .secrets()
        .iter()
        .any(|secret| secret.expose() == TEST_SECRET.as_bytes());
    let host = std::env::var("HOST").unwrap_or_else(|_| DEFAULT_HOST.to_owned());
    if test_secret && !is_loopback(&host) {
        return Err(format!(
            "refusing to listen on `{host}` with the built-in test secret, which anyone can sign \
             with: set {SECRET_ENV} to your endpoint's secret, or listen on 127.0.0.1 (HOST)"
        ));
    }
    let ledger = web::Data::new(Ledger::default());
    // Inbox workers dispatch away from any request: they get the app data from the config.
    let config = idempotency_store(config.with_app_data(ledger.clone())).await?;
    let config = match std::env::var(LEASE_ENV) {
        Ok(ms) => config.with_lease(std::time::Duration::from_millis(
            ms.trim()
                .parse()
                .map_err(|_| format!("{LEASE_ENV} must be a number of milliseconds, not `{ms}`"))?,
        )),
        Err(_) => config,
    };
    let config = match std::env::var(RETRY_FIRST_ENV) {
        Ok(ms) => config.with_retry_policy(RetryPolicy::default().with_first(
            std::time::Duration::from_millis(ms.trim().parse().map_err(|_| {
                format!("{RETRY_FIRST_ENV} must be a number of milliseconds, not `{ms}`")
            })?),
        )),
        Err(_) => config,
    };
    // Checked, and in inbox mode its workers started, before the first connection: a SQLite
    // inbox whose workers another process runs stops the server here, with the holder's name.
    let endpoint = Endpoint::new(config).map_err(|error| error.to_string())?;
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT must be a port number (0-65535), not `{port}`"))?,
        Err(_) => DEFAULT_PORT,
    };

    let body_limit = endpoint.config().body_limit();
    let verifier = web::Data::new(endpoint.config().verifier().clone());
    let metrics = prometheus()?;
    let bench_routes = bench_routes()?;
    let mounted = endpoint.clone();
    let inbox_page = endpoint.inbox_operator().is_some();
    let server = HttpServer::new(move || {
        let page = mounted.clone();
        let app = App::new()
            .configure(move |service| {
                if inbox_page {
                    nextgen_events::actix::inbox_page("/webhooks/inbox", page, loopback_only)(
                        service,
                    );
                }
            })
            .app_data(ledger.clone())
            .configure(nextgen_events::actix::webhooks("/webhook", mounted.clone()))
            .app_data(web::Data::new(mounted.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .app_data(web::Data::new(metrics.clone()))
            .route("/metrics", web::get().to(render_metrics));
        let ledger = web::Data::clone(&ledger);
        let verifier = web::Data::clone(&verifier);
        app.configure(move |service| {
            if !bench_routes {
                return;
            }
            service
                .service(
                    web::resource("/ledger")
                        .app_data(ledger)
                        .route(web::get().to(ledger_totals)),
                )
                .service(
                    web::resource("/echo")
                        .app_data(web::PayloadConfig::new(body_limit))
                        .route(web::post().to(echo)),
                )
                .service(
                    web::resource("/floor")
                        .app_data(web::PayloadConfig::new(body_limit))
                        .app_data(verifier)
                        .route(web::post().to(floor)),
                );
        })
    })
    .bind((host.as_str(), port))
    .map_err(|error| format!("could not listen on {host}:{port}: {error}"))?;

    let address = server
        .addrs()
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    let url = format!("http://{}/webhook", reachable(&host, address));
    tracing::info!("receiving NextGen webhooks at {url}");
    println!("Send it a test event with:");
    // No secret on the command line: the trigger reads NEXTGEN_WEBHOOK_SECRET itself.
    println!("  cargo run -p nextgen-cli -- trigger charge.succeeded --url {url}");

    // actix stops on SIGTERM or Ctrl-C once the requests in flight are answered; then the
    // endpoint stops here, on this thread, whichever actix thread drops its clone last.
    let stop_timeout = stop_timeout()?;
    let served = server.run().await;
    let report = endpoint.shutdown(stop_timeout).await;
    if !report.is_clean() {
        tracing::warn!(
            left = ?report.left,
            in_flight = report.in_flight,
            "stopped with deliveries still running: they are taken again at the next start"
        );
    }
    served.map_err(|error| format!("the server stopped: {error}"))
}

/// How long the stop waits for the inbox workers and the handlers still running: 30 s, or
/// `NEXTGEN_STOP_TIMEOUT_MS`.
fn stop_timeout() -> Result<std::time::Duration, String> {
    match std::env::var(STOP_TIMEOUT_ENV) {
        Ok(ms) => ms
            .trim()
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| {
                format!("{STOP_TIMEOUT_ENV} must be a number of milliseconds, not `{ms}`")
            }),
        Err(_) => Ok(std::time::Duration::from_secs(30)),
    }
}

/// The environment variable of the stop's timeout, in milliseconds.
const STOP_TIMEOUT_ENV: &str = "NEXTGEN_STOP_TIMEOUT_MS";

/// The configuration from `NEXTGEN_WEBHOOK_SECRET`, or with the test secret when it is unset.
fn webhook_config() -> Result<WebhookConfig, String> {
    match WebhookConfig::from_env() {
        Ok(config) => {
            match config.check() {
                // The store is chosen later (`idempotency_store`), which keeps the handlers
                // that take a transaction only on PostgreSQL; `Endpoint::new` checks it all.
                Ok(()) | Err(ConfigError::TransactionNeedsPostgres { .. }) => {}
                Err(error) => return Err(error.to_string()),
            }
            tracing::info!(
                secrets = config.secret_count(),
                "verifying signatures with the secret(s) from {SECRET_ENV}"
            );
            Ok(config)
        }
        Err(ConfigError::MissingSecret { .. }) => {
            tracing::warn!(
                "{SECRET_ENV} is not set: verifying signatures with the built-in test secret \
                 (the trigger tool's default); set {SECRET_ENV} to your endpoint's secret \
                 for anything but local testing"
            );
            Ok(WebhookConfig::new(TEST_SECRET))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The environment variable naming the Redis that replicas share their idempotency store in.
const REDIS_URL_ENV: &str = "NEXTGEN_REDIS_URL";

/// The key prefix of the example's Redis keys.
const REDIS_PREFIX: &str = "nextgen:example";

/// The environment variable naming the SQLite file of inbox mode.
const INBOX_SQLITE_ENV: &str = "NEXTGEN_INBOX_SQLITE";

/// The environment variable naming the SQLite file of the inline mode's durable store.
const STORE_SQLITE_ENV: &str = "NEXTGEN_STORE_SQLITE";

/// The environment variable with the handlers' claim lease, in milliseconds (default 60 s).
const LEASE_ENV: &str = "NEXTGEN_LEASE_MS";

/// The environment variable with the first wait before a failed inbox delivery is tried again,
/// in milliseconds (default 30 s; each next wait doubles).
const RETRY_FIRST_ENV: &str = "NEXTGEN_RETRY_FIRST_MS";

/// The environment variable with the number of inbox workers.
const INBOX_WORKERS_ENV: &str = "NEXTGEN_INBOX_WORKERS";

/// The environment variable naming the Redis of inbox mode on Redis.
const INBOX_REDIS_ENV: &str = "NEXTGEN_INBOX_REDIS";

/// The environment variable with the key prefix of the Redis inbox (default `REDIS_PREFIX`).
const INBOX_PREFIX_ENV: &str = "NEXTGEN_INBOX_PREFIX";

/// The environment variable naming the inbox by URL (`sqlite:PATH`, `redis://...?prefix=P`,
/// `postgres://...?schema=S`).
const INBOX_URL_ENV: &str = "NEXTGEN_INBOX_URL";

/// The environment variable naming inline mode's idempotency store by URL (the same forms).
const STORE_URL_ENV: &str = "NEXTGEN_STORE_URL";

/// `config` with the store or inbox the environment names, or as it is (in memory, inline),
/// and the handlers that can run on it: the ones that take the app's transaction
/// ([`handlers::book_capture`]) on PostgreSQL only, after their table is made there; elsewhere
/// they are left out of the registry (mounting would refuse them).
async fn idempotency_store(config: WebhookConfig) -> Result<WebhookConfig, String> {
    let (config, backend) = open_backend(config).await?;
    #[cfg(feature = "postgres")]
    if let Some(BackendUrl::Postgres { url, schema, .. }) = &backend {
        let schema = schema
            .as_deref()
            .unwrap_or(nextgen_events::postgres::DEFAULT_SCHEMA);
        handlers::captures::prepare(url, schema).await?;
        tracing::info!(
            "exactly once: charge.captured is booked in {schema}.{} in the handler's transaction",
            handlers::captures::NAME
        );
        return Ok(config);
    }
    let _ = backend;
    Ok(config.with_registry(Registry::from_handlers(
        Registry::global()
            .iter()
            .filter(|handler| !handler.takes_transaction()),
    )))
}

/// `config` with the store or inbox the environment names, and its URL, or as it is (in
/// memory, inline); says which at start-up. Every one is opened by the library's URL opener. A
/// store that is named but cannot be opened stops the server: replicas silently falling back
/// to memory would run handlers twice.
async fn open_backend(
    config: WebhookConfig,
) -> Result<(WebhookConfig, Option<BackendUrl>), String> {
    let set = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let chosen: Vec<(&str, String)> = [
        REDIS_URL_ENV,
        STORE_SQLITE_ENV,
        STORE_URL_ENV,
        INBOX_SQLITE_ENV,
        INBOX_REDIS_ENV,
        INBOX_URL_ENV,
    ]
    .into_iter()
    .filter_map(|name| set(name).map(|value| (name, value)))
    .collect();
    let workers = || match set(INBOX_WORKERS_ENV) {
        Some(workers) => workers.parse::<usize>().map_err(|_| {
            format!("{INBOX_WORKERS_ENV} must be a number of workers, not `{workers}`")
        }),
        None => Ok(WebhookConfig::DEFAULT_INBOX_WORKERS),
    };
    let parsed =
        |name: &str, url: &str| BackendUrl::parse(url).map_err(|error| format!("{name}: {error}"));
    let (name, url, inbox) = match chosen.as_slice() {
        [] => {
            tracing::info!(
                "idempotency store: in memory, this process only (set {REDIS_URL_ENV} or \
                 {STORE_URL_ENV} to share it between replicas, {STORE_SQLITE_ENV} to keep it \
                 across restarts, or {INBOX_SQLITE_ENV}, {INBOX_REDIS_ENV} or {INBOX_URL_ENV} \
                 for inbox mode)"
            );
            return Ok((config, None));
        }
        [(name @ REDIS_URL_ENV, url)] => (*name, redis(url, REDIS_PREFIX.to_owned()), false),
        [(name @ STORE_SQLITE_ENV, path)] => (*name, sqlite(path)?, false),
        [(name @ STORE_URL_ENV, url)] => (*name, parsed(name, url)?, false),
        [(name @ INBOX_SQLITE_ENV, path)] => (*name, sqlite(path)?, true),
        [(name @ INBOX_REDIS_ENV, url)] => {
            let prefix = set(INBOX_PREFIX_ENV).unwrap_or_else(|| REDIS_PREFIX.to_owned());
            (*name, redis(url, prefix), true)
        }
        [(name, url)] => (*name, parsed(name, url)?, true),
        several => {
            return Err(format!(
                "set at most one of {REDIS_URL_ENV}, {STORE_SQLITE_ENV}, {STORE_URL_ENV}, \
                 {INBOX_SQLITE_ENV}, {INBOX_REDIS_ENV} and {INBOX_URL_ENV}; these are set: {}",
                several
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    if !inbox {
        let store = open_store(&url)
            .await
            .map_err(|error| format!("{name}: {error}"))?;
        tracing::info!("idempotency store: {url}, kept across restarts (inline mode)");
        return Ok((config.with_idempotency_store(store), Some(url)));
    }
    let workers = workers()?;
    let inbox = open_inbox(&url, Access::Serve)
        .await
        .map_err(|error| format!("{name}: {error}"))?;
    tracing::info!(
        workers,
        "inbox mode: deliveries are kept in {url} before the 200, then handled in the background"
    );
    Ok((
        config.with_inbox(inbox.inbox()).with_inbox_workers(workers),
        Some(url),
    ))
}

/// A SQLite file named by its path, committing as `NEXTGEN_INBOX_DURABILITY` says (`full`, the
/// default, or `normal`).
fn sqlite(path: &str) -> Result<BackendUrl, String> {
    let durability = match std::env::var(DURABILITY_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("" | "full") => SqliteDurability::Full,
        Ok("normal") => SqliteDurability::Normal,
        Ok(other) => {
            return Err(format!(
                "{DURABILITY_ENV} must be `full` or `normal`, not `{other}`"
            ));
        }
    };
    Ok(BackendUrl::Sqlite {
        path: path.into(),
        durability,
    })
}

/// The environment variable with a SQLite file's durability (`full` or `normal`).
const DURABILITY_ENV: &str = "NEXTGEN_INBOX_DURABILITY";

/// A Redis named by its URL, with the key prefix.
fn redis(url: &str, prefix: String) -> BackendUrl {
    BackendUrl::Redis {
        url: url.to_owned(),
        prefix: Some(prefix),
    }
}

/// Whether `host` only accepts connections from this machine.
fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The address to send requests to: a wildcard listen address (`0.0.0.0`, `::`) is reached
/// through loopback; a host name is kept as given.
fn reachable(host: &str, bound: SocketAddr) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            let loopback = match ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(loopback, bound.port()).to_string()
        }
        Ok(ip) => SocketAddr::new(ip, bound.port()).to_string(),
        Err(_) => format!("{host}:{}", bound.port()),
    }
}

/// The environment variable that turns on the unauthenticated benchmark routes (`/ledger`,
/// `/echo`, `/floor`).
const BENCH_ROUTES_ENV: &str = "NEXTGEN_BENCH_ROUTES";

/// Whether `NEXTGEN_BENCH_ROUTES=1` asks for the benchmark routes.
fn bench_routes() -> Result<bool, String> {
    match std::env::var(BENCH_ROUTES_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("" | "0") => Ok(false),
        Ok("1") => {
            tracing::warn!(
                "{BENCH_ROUTES_ENV}=1: serving GET /ledger, POST /echo and POST /floor without authentication, for benchmarks"
            );
            Ok(true)
        }
        Ok(other) => Err(format!("{BENCH_ROUTES_ENV} must be 1 or 0, not `{other}`")),
    }
}

/// The environment variable that turns on `GET /metrics` (Prometheus text format).
const METRICS_ENV: &str = "NEXTGEN_METRICS";

/// The Prometheus recorder, installed when `NEXTGEN_METRICS=1`.
fn prometheus() -> Result<Option<PrometheusHandle>, String> {
    match std::env::var(METRICS_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("" | "0") => Ok(None),
        Ok("1") => {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .map_err(|error| {
                    format!("{METRICS_ENV}: could not install the recorder: {error}")
                })?;
            tracing::info!("metrics: Prometheus text at GET /metrics");
            Ok(Some(handle))
        }
        Ok(other) => Err(format!("{METRICS_ENV} must be 1 or 0, not `{other}`")),
    }
}

async fn render_metrics(metrics: web::Data<Option<PrometheusHandle>>) -> HttpResponse {
    match metrics.get_ref() {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::NotFound()
            .content_type("text/plain")
            .body(format!(
                "metrics are off: start the server with {METRICS_ENV}=1\n"
            )),
    }
}

/// Who may use the inbox page: this example trusts loopback (the person at the machine) and
/// no one else; a real app decides from its own session or its proxy's header.
fn loopback_only(request: &HttpRequest) -> PageAccess {
    match request.peer_addr() {
        Some(peer) if peer.ip().is_loopback() => PageAccess::full(format!("local {peer}")),
        _ => PageAccess::Deny,
    }
}

/// Liveness: 200 while the workers do their work (`Health::is_alive`), 503 otherwise; the
/// body is the health's one-line summary either way.
async fn healthz(endpoint: web::Data<Endpoint>) -> HttpResponse {
    let health = endpoint.health();
    probe_answer(health.is_alive(), &health)
}

/// Readiness: 200 while the endpoint takes deliveries and its store answers
/// (`Health::is_ready`), 503 otherwise, with the summary.
async fn readyz(endpoint: web::Data<Endpoint>) -> HttpResponse {
    let health = endpoint.health();
    probe_answer(health.is_ready(), &health)
}

/// A probe's answer: 200 or 503, with what `health` says in one line.
fn probe_answer(passed: bool, health: &nextgen_events::Health) -> HttpResponse {
    let mut answer = if passed {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    answer.content_type("text/plain").body(health.summary())
}

async fn ledger_totals(ledger: web::Data<Ledger>) -> HttpResponse {
    HttpResponse::Ok().json(ledger.snapshot())
}

/// Reads the body (up to the webhook body limit) and acknowledges it, doing nothing else.
async fn echo(body: web::Bytes) -> HttpResponse {
    let _ = body;
    nextgen_events::actix::received()
}

/// The least a webhook route can do, for `scripts/bench-http.sh`: the body as `/echo` reads
/// it, one signature check and one typed parse, no handler, no idempotency store.
async fn floor(
    request: HttpRequest,
    body: web::Bytes,
    verifier: web::Data<Verifier>,
) -> HttpResponse {
    let header = request
        .headers()
        .get(SignatureHeader::NAME)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if verifier.verify(&body, header).is_err() {
        return HttpResponse::BadRequest().finish();
    }
    match serde_json::from_slice::<Event<Charge>>(&body) {
        Ok(event) => {
            std::hint::black_box(event);
            nextgen_events::actix::received()
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}
