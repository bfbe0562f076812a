//! The chaos run: the real example `server` in inbox mode, killed and started again on the same
//! inbox while many senders deliver distinct events and retry each until it is answered 2xx,
//! until the inbox is drained. Every run of the `*` handler is appended to a synced file, so
//! lost deliveries and duplicate runs show; the run fails on a lost delivery, on a duplicate
//! with no kill to explain it (or any duplicate when stopping with SIGTERM), and on more
//! duplicates after one kill than the replica has workers.
//!
//! The inbox is one SQLite file with one server, or a Redis or PostgreSQL inbox with two
//! replicas of the server sharing it, stopped one at a time. A Redis run keeps its keys under
//! a prefix of its own, a PostgreSQL run its tables in a schema of its own
//! (`chaos_<pid>_<unix ms>`, in the database `--postgres-url` names), so that runs never see
//! each other's entries. A PostgreSQL run that passed drops its schema; one that failed keeps
//! it, and names it, for a look.
//!
//! On PostgreSQL the deliveries are `charge.captured` events (`chaos.delivered` otherwise),
//! which the server's exactly-once handler books, one row per event, in the table
//! `captured_charges` of the run's schema (the servers make it at start-up), in the
//! transaction its done marker commits in; the `*` handler beside it is the plain one whose
//! runs the file counts. The table has no unique constraint: at the end the run counts its
//! rows per event and fails on any event without one (lost) or with more (duplicated). The
//! plain handler's duplicate runs stay allowed within the bound above.
//!
//! ```text
//! scripts/chaos.sh                                  # SQLite, SIGKILL every 2 s, 10,000 deliveries
//! scripts/chaos.sh --store redis --redis-url redis://127.0.0.1:6379/
//! scripts/chaos.sh --store postgres --postgres-url postgres://postgres@127.0.0.1:5432/nextgen_test
//! scripts/chaos.sh --signal term
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use nextgen_events::backend::{Access, BackendUrl, open_inbox};
use nextgen_events::inbox::{InboxOperator, InboxStats};

/// Kill the example server while it takes and handles deliveries; count what was lost and
/// what ran twice.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// How many distinct deliveries to send.
    #[arg(long, default_value_t = 10_000)]
    deliveries: usize,
    /// How many senders deliver at once.
    #[arg(long, default_value_t = 32)]
    senders: usize,
    /// Milliseconds between two stops of a server.
    #[arg(long, default_value_t = 2_000)]
    stop_every_ms: u64,
    /// How a server is stopped.
    #[arg(long, value_enum, default_value_t = Signal::Kill)]
    signal: Signal,
    /// The inbox: one SQLite file and one server, or Redis or PostgreSQL and two replicas (one
    /// stopped at a time).
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    store: Store,
    /// The Redis of `--store redis`.
    #[arg(long, env = "NEXTGEN_TEST_REDIS_URL")]
    redis_url: Option<String>,
    /// The PostgreSQL database of `--store postgres` (`postgres://USER@HOST:PORT/DB`, no
    /// `schema` parameter: each run makes a schema of its own there).
    #[arg(long, env = "NEXTGEN_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Inbox workers per server.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long each handler run takes before its effect, in milliseconds.
    #[arg(long, default_value_t = 5)]
    handler_ms: u64,
    /// The handlers' claim lease in milliseconds (a Redis replica takes over a dead one's
    /// deliveries after a lease and a half, a PostgreSQL replica once it lapses).
    #[arg(long, default_value_t = 2_000)]
    lease_ms: u64,
    /// The servers' first wait before a failed delivery is tried again, in milliseconds (each
    /// next wait doubles). A delivery a replica takes over from a killed one may find the
    /// dead one's claim of a plain handler still live for a few milliseconds (the claim was
    /// taken just after the entry, under the same lease): it fails as in progress and waits
    /// this long, not the default 30 s, before it is tried again.
    #[arg(long, default_value_t = 1_000)]
    retry_first_ms: u64,
    /// Fail unless at least this many stops happened.
    #[arg(long, default_value_t = 0)]
    min_stops: usize,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    max_seconds: u64,
    /// The example server's binary (default: `server` beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where the inbox file and the run log go (default: a fresh temporary folder, removed
    /// after a run that passed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Signal {
    /// SIGKILL: a crash; at most one duplicate run per busy worker.
    Kill,
    /// SIGTERM: a graceful stop; no duplicate run at all.
    Term,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Store {
    Sqlite,
    Redis,
    Postgres,
}

/// The inbox of a `--store postgres` run: the database `--postgres-url` names, in a schema
/// of this run's own.
struct Postgres {
    /// The database's URL, as given.
    database: String,
    /// `chaos_<pid>_<unix ms>`.
    schema: String,
}

impl Postgres {
    /// `--postgres-url` with a fresh schema; refused when it is not a PostgreSQL URL or names
    /// a schema already.
    fn new(args: &Args) -> Result<Postgres, String> {
        let Some(database) = args.postgres_url.as_deref().map(str::trim) else {
            return Err(
                "--store postgres needs --postgres-url (or NEXTGEN_TEST_POSTGRES_URL); \
                 scripts/postgres.sh start DIR starts a throwaway server"
                    .to_owned(),
            );
        };
        match BackendUrl::parse(database) {
            Ok(BackendUrl::Postgres { schema: None, .. }) => {}
            Ok(BackendUrl::Postgres {
                schema: Some(schema),
                ..
            }) => {
                return Err(format!(
                    "--postgres-url names the schema `{schema}`: leave it out, each run makes \
                     a schema of its own"
                ));
            }
            Ok(other) => {
                return Err(format!(
                    "--postgres-url must be a postgres:// URL, not a {} one",
                    other.backend()
                ));
            }
            Err(error) => return Err(format!("--postgres-url: {error}")),
        }
        Ok(Postgres {
            database: database.to_owned(),
            schema: format!("chaos_{}_{}", std::process::id(), unix_ms()),
        })
    }

    /// The inbox's URL, the servers' `NEXTGEN_INBOX_URL`: the database with `schema=S`.
    fn inbox_url(&self) -> String {
        let separator = if self.database.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}schema={}", self.database, self.schema)
    }

    /// Drops the run's schema, its inbox and its booked rows with it.
    #[cfg(feature = "postgres")]
    fn drop_schema(&self, observer: &Observer) -> Result<(), String> {
        use nextgen_events::postgres::sqlx::{self, Connection as _};

        let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
        observer
            .runtime
            .block_on(async {
                let mut connection = sqlx::PgConnection::connect(&self.database).await?;
                sqlx::query(&sql).execute(&mut connection).await?;
                connection.close().await
            })
            .map_err(|error| format!("dropping the schema {}: {error}", self.schema))
    }

    #[cfg(not(feature = "postgres"))]
    fn drop_schema(&self, _: &Observer) -> Result<(), String> {
        Ok(())
    }
}

const SECRET: &str = "whsec_chaos_run_secret";

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("chaos: {message}");
            ExitCode::from(2)
        }
    }
}

/// One server process of the run: its environment, port and the child while it runs.
struct Replica {
    name: &'static str,
    port: u16,
    starts: usize,
    child: Option<Child>,
    tag: String,
}

/// What the run's parts share.
struct Shared {
    urls: Vec<String>,
    /// The event type delivered: `charge.captured` on PostgreSQL, which the exactly-once
    /// handler books; `chaos.delivered`, which only the `*` handler takes, otherwise.
    event_type: &'static str,
    next: AtomicUsize,
    acknowledged: Mutex<HashSet<String>>,
    attempts: AtomicUsize,
    senders_done: AtomicBool,
}

fn run(args: &Args) -> Result<bool, String> {
    let started = Instant::now();
    let server = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|error| format!("where is this binary: {error}"))?
            .with_file_name("server"),
    };
    if !server.is_file() {
        return Err(format!(
            "no server binary at `{}`: build it (`cargo build -p nextgen-examples --bins`) or pass --server",
            server.display()
        ));
    }
    let keep_dir = args.dir.is_some();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "nextgen-chaos-{}-{}",
            std::process::id(),
            unix_ms()
        ))
    });
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let run_log = dir.join("runs.log");
    let _ = std::fs::remove_file(&run_log);
    let inbox_file = dir.join("inbox.sqlite3");
    let prefix = format!("nextgen-chaos:{}:{}", std::process::id(), unix_ms());

    let names: &[&'static str] = match args.store {
        Store::Sqlite => &["a"],
        Store::Redis | Store::Postgres => &["a", "b"],
    };
    if args.store == Store::Redis && args.redis_url.is_none() {
        return Err("--store redis needs --redis-url (or NEXTGEN_TEST_REDIS_URL)".to_owned());
    }
    // The inbox as the servers name it; the observer opens it with the library's URL opener,
    // as the `inbox` tool does.
    let (postgres, inbox_url) = match args.store {
        Store::Sqlite => (None, BackendUrl::sqlite(&inbox_file)),
        Store::Redis => (
            None,
            BackendUrl::Redis {
                url: args.redis_url.clone().unwrap_or_default(),
                prefix: Some(prefix.clone()),
            },
        ),
        Store::Postgres => {
            let postgres = Postgres::new(args)?;
            let url = BackendUrl::parse(&postgres.inbox_url())
                .map_err(|error| format!("--postgres-url: {error}"))?;
            (Some(postgres), url)
        }
    };
    let mut replicas = names
        .iter()
        .map(|&name| {
            Ok(Replica {
                name,
                port: free_port()?,
                starts: 0,
                child: None,
                tag: String::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let environment = |replica: &Replica| -> Vec<(&'static str, String)> {
        let mut environment = vec![
            ("NEXTGEN_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", replica.port.to_string()),
            ("RUST_LOG", "warn".to_owned()),
            ("NEXTGEN_INBOX_WORKERS", args.workers.to_string()),
            ("NEXTGEN_LEASE_MS", args.lease_ms.to_string()),
            ("NEXTGEN_RETRY_FIRST_MS", args.retry_first_ms.to_string()),
            ("NEXTGEN_RUN_LOG", run_log.display().to_string()),
            ("NEXTGEN_RUN_TAG", replica.tag.clone()),
            ("NEXTGEN_HANDLER_DELAY_MS", args.handler_ms.to_string()),
        ];
        match args.store {
            Store::Sqlite => {
                environment.push(("NEXTGEN_INBOX_SQLITE", inbox_file.display().to_string()))
            }
            Store::Redis => {
                environment.push((
                    "NEXTGEN_INBOX_REDIS",
                    args.redis_url.clone().unwrap_or_default(),
                ));
                environment.push(("NEXTGEN_INBOX_PREFIX", prefix.clone()));
            }
            Store::Postgres => {
                let url = postgres.as_ref().map(Postgres::inbox_url);
                environment.push(("NEXTGEN_INBOX_URL", url.unwrap_or_default()));
            }
        }
        environment
    };
    for replica in &mut replicas {
        start(&server, replica, &environment)?;
    }

    let shared = Arc::new(Shared {
        urls: replicas
            .iter()
            .map(|replica| format!("http://127.0.0.1:{}/webhook", replica.port))
            .collect(),
        event_type: match args.store {
            Store::Postgres => "charge.captured",
            Store::Sqlite | Store::Redis => "chaos.delivered",
        },
        next: AtomicUsize::new(0),
        acknowledged: Mutex::new(HashSet::new()),
        attempts: AtomicUsize::new(0),
        senders_done: AtomicBool::new(false),
    });
    let deadline = started + Duration::from_secs(args.max_seconds);
    let senders: Vec<_> = (0..args.senders.max(1))
        .map(|sender| {
            let shared = Arc::clone(&shared);
            let deliveries = args.deliveries;
            std::thread::spawn(move || send(&shared, sender, deliveries, deadline))
        })
        .collect();

    let observer = Observer::new(&inbox_url)?;
    // Stop one server every period, in turn, until every delivery is acknowledged and the
    // inbox is drained; a stopped server starts again at once on the same files.
    let mut stops: Vec<(String, Signal)> = Vec::new();
    let mut turn = 0;
    let mut last_stop = Instant::now();
    let mut senders = Some(senders);
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "gave up after {} s: {}",
                args.max_seconds,
                observer
                    .stats()
                    .map_or_else(|error| error, |stats| format!("{stats:?}"))
            ));
        }
        if senders
            .as_ref()
            .is_some_and(|senders| senders.iter().all(|s| s.is_finished()))
        {
            for sender in senders.take().into_iter().flatten() {
                sender
                    .join()
                    .map_err(|_| "a sender panicked".to_owned())??;
            }
            shared.senders_done.store(true, Ordering::SeqCst);
        }
        if shared.senders_done.load(Ordering::SeqCst) {
            let stats = observer.stats()?;
            if stats.pending + stats.retrying + stats.running == 0 {
                break;
            }
        }
        if last_stop.elapsed() >= Duration::from_millis(args.stop_every_ms) {
            let replica = &mut replicas[turn % names.len()];
            turn += 1;
            stops.push((replica.tag.clone(), args.signal));
            stop(replica, args.signal)?;
            start(&server, replica, &environment)?;
            last_stop = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = observer.stats()?;
    for replica in &mut replicas {
        stop(replica, Signal::Term)?;
    }

    let report = Report::read(&run_log, &shared, &stops, args)?;
    // The exactly-once handler's rows, per event.
    let rows = match &postgres {
        Some(postgres) => Some(Rows::count(&observer, postgres, &shared)?),
        None => None,
    };
    let wall = started.elapsed();
    println!(
        "chaos: store {:?}, {} replica(s) x {} workers, {:?} every {} ms",
        args.store,
        names.len(),
        args.workers,
        args.signal,
        args.stop_every_ms
    );
    println!(
        "acknowledged {}, lost {}, runs {}, duplicate runs {}, stops {}, dead letters {}, sends {}, wall {:.1} s",
        report.acknowledged,
        report.lost.len(),
        report.runs,
        report.duplicates,
        stops.len(),
        stats.dead,
        shared.attempts.load(Ordering::SeqCst),
        wall.as_secs_f64()
    );
    println!(
        "duplicates per stop: max {} (bound {}), unexplained {}",
        report.per_stop.values().max().copied().unwrap_or(0),
        report.bound,
        report.unexplained
    );
    if let Some(rows) = &rows {
        println!(
            "rows: lost {}, duplicated {} ({} rows for {} events in {}.{}; {} events with more than one)",
            rows.lost.len(),
            rows.duplicated,
            rows.total,
            rows.events,
            rows.schema,
            rows.table,
            rows.repeated.len()
        );
    }
    let mut failures = Vec::new();
    if let Some(rows) = &rows {
        if !rows.lost.is_empty() {
            let some: Vec<_> = rows.lost.iter().take(5).collect();
            failures.push(format!(
                "{} acknowledged deliveries without their row, e.g. {some:?}",
                rows.lost.len()
            ));
        }
        if rows.duplicated > 0 {
            let some: Vec<_> = rows.repeated.iter().take(5).collect();
            failures.push(format!(
                "{} duplicate rows from the exactly-once handler, e.g. {some:?}",
                rows.duplicated
            ));
        }
        if !rows.unknown.is_empty() {
            let some: Vec<_> = rows.unknown.iter().take(5).collect();
            failures.push(format!(
                "{} rows of events never acknowledged, e.g. {some:?}",
                rows.unknown.len()
            ));
        }
    }
    if report.acknowledged != args.deliveries {
        failures.push(format!(
            "{} of {} deliveries acknowledged",
            report.acknowledged, args.deliveries
        ));
    }
    if !report.lost.is_empty() {
        let some: Vec<_> = report.lost.iter().take(5).collect();
        failures.push(format!(
            "{} acknowledged deliveries never handled, e.g. {some:?}",
            report.lost.len()
        ));
    }
    if stats.dead > 0 {
        failures.push(format!("{} dead letters", stats.dead));
    }
    if report.unexplained > 0 {
        failures.push(format!(
            "{} duplicate runs with no stop between them",
            report.unexplained
        ));
    }
    if args.signal == Signal::Term && report.duplicates > 0 {
        failures.push(format!(
            "{} duplicate runs after graceful stops (the promise is 0)",
            report.duplicates
        ));
    }
    for (tag, duplicates) in &report.per_stop {
        if *duplicates > report.bound {
            failures.push(format!(
                "{duplicates} duplicate runs after the stop of `{tag}`, more than its {} workers",
                report.bound
            ));
        }
    }
    if stops.len() < args.min_stops {
        failures.push(format!(
            "only {} stops, fewer than --min-stops {}",
            stops.len(),
            args.min_stops
        ));
    }
    if failures.is_empty() {
        println!("chaos: passed");
        if !keep_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        if let Some(postgres) = &postgres {
            postgres.drop_schema(&observer)?;
        }
        Ok(true)
    } else {
        for failure in &failures {
            println!("chaos: FAILED: {failure}");
        }
        println!("chaos: the run's files are in {}", dir.display());
        if args.store != Store::Sqlite {
            println!("chaos: its inbox is {inbox_url}");
        }
        Ok(false)
    }
}

/// Delivers ids until none is left, each retried until it is answered 2xx.
fn send(
    shared: &Shared,
    sender: usize,
    deliveries: usize,
    deadline: Instant,
) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| error.to_string())?;
    let mut target = sender;
    loop {
        let n = shared.next.fetch_add(1, Ordering::SeqCst);
        if n >= deliveries {
            return Ok(());
        }
        let id = format!("evt_chaos_{n:07}");
        let body = body(shared.event_type, &id, n)?;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{id} was never acknowledged"));
            }
            shared.attempts.fetch_add(1, Ordering::SeqCst);
            // A redelivery is signed anew, as NextGen signs each attempt.
            let signature = nextgen_events::sign(body.as_bytes(), SECRET, unix_ms() / 1000);
            let url = &shared.urls[target % shared.urls.len()];
            let answer = client
                .post(url)
                .header("NextGen-Signature", signature)
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send();
            match answer {
                Ok(answer) if answer.status().is_success() => {
                    shared
                        .acknowledged
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id);
                    break;
                }
                Ok(answer) if answer.status().is_client_error() => {
                    return Err(format!("{id} was refused: {}", answer.status()));
                }
                _ => {
                    // Down or failing: try again (another replica, when there are two).
                    target += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// The body of delivery `n`, event `id`: a `charge.captured` sample of the catalog (a charge
/// of its own), or a `chaos.delivered` event outside it.
fn body(event_type: &str, id: &str, n: usize) -> Result<String, String> {
    let created = 1_713_745_200 + n as u64;
    let Some(mut event) = nextgen_events::testing::sample(event_type) else {
        return Ok(serde_json::json!({
            "id": id, "object": "event", "created": created, "livemode": false,
            "type": event_type, "pending_webhooks": 1,
            "data": { "object": { "id": format!("obj_{n}"), "object": "chaos" } }
        })
        .to_string());
    };
    event["id"] = id.into();
    event["created"] = created.into();
    event["data"]["object"]["id"] = format!("ch_chaos_{n:07}").into();
    String::from_utf8(nextgen_events::testing::sample_body(&event))
        .map_err(|error| format!("the {event_type} sample: {error}"))
}

/// The exactly-once handler's rows in the run's schema, against the acknowledged deliveries.
struct Rows {
    schema: String,
    table: &'static str,
    /// Rows in all.
    total: i64,
    /// Events with a row.
    events: usize,
    /// Acknowledged deliveries without a row.
    lost: Vec<String>,
    /// Rows beyond the first of their event.
    duplicated: i64,
    /// The events with more than one row, and how many.
    repeated: Vec<(String, i64)>,
    /// Rows of events never acknowledged.
    unknown: Vec<String>,
}

/// The table the server's `book_capture` handler writes (`handlers::captures::NAME`).
#[cfg(feature = "postgres")]
const CAPTURES_TABLE: &str = "captured_charges";

impl Rows {
    #[cfg(feature = "postgres")]
    fn count(observer: &Observer, postgres: &Postgres, shared: &Shared) -> Result<Rows, String> {
        use nextgen_events::postgres::sqlx::{self, Connection as _};

        let sql = format!(
            "SELECT event_id, count(*) FROM \"{}\".{CAPTURES_TABLE} GROUP BY event_id",
            postgres.schema
        );
        let counts: Vec<(String, i64)> = observer
            .runtime
            .block_on(async {
                let mut connection = sqlx::PgConnection::connect(&postgres.database).await?;
                let counts = sqlx::query_as(&sql).fetch_all(&mut connection).await?;
                connection.close().await?;
                Ok::<_, sqlx::Error>(counts)
            })
            .map_err(|error| format!("counting the rows of {CAPTURES_TABLE}: {error}"))?;
        let acknowledged = shared
            .acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let booked: HashMap<&str, i64> = counts
            .iter()
            .map(|(id, rows)| (id.as_str(), *rows))
            .collect();
        let mut lost: Vec<String> = acknowledged
            .iter()
            .filter(|id| !booked.contains_key(id.as_str()))
            .cloned()
            .collect();
        lost.sort();
        let mut repeated: Vec<(String, i64)> = counts
            .iter()
            .filter(|(_, rows)| *rows > 1)
            .cloned()
            .collect();
        repeated.sort();
        let mut unknown: Vec<String> = counts
            .iter()
            .filter(|(id, _)| !acknowledged.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        unknown.sort();
        Ok(Rows {
            schema: postgres.schema.clone(),
            table: CAPTURES_TABLE,
            total: counts.iter().map(|(_, rows)| rows).sum(),
            events: counts.len(),
            lost,
            duplicated: repeated.iter().map(|(_, rows)| rows - 1).sum(),
            repeated,
            unknown,
        })
    }

    #[cfg(not(feature = "postgres"))]
    fn count(_: &Observer, _: &Postgres, _: &Shared) -> Result<Rows, String> {
        Err("this chaos binary was built without the feature `postgres`".to_owned())
    }
}

/// Reads the inbox's counts with the library, as the `inbox` tool does: opened by its URL, so
/// that this binary builds whichever backends the examples are built with.
struct Observer {
    inbox: Arc<dyn InboxOperator>,
    runtime: tokio::runtime::Runtime,
}

impl Observer {
    fn new(url: &BackendUrl) -> Result<Observer, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        let inbox = runtime
            .block_on(open_inbox(url, Access::Inspect))
            .map_err(|error| format!("{error} (after the servers started)"))?
            .operator();
        Ok(Observer { inbox, runtime })
    }

    fn stats(&self) -> Result<InboxStats, String> {
        self.runtime
            .block_on(self.inbox.stats())
            .map_err(|error| error.to_string())
    }
}

/// What the run log says.
struct Report {
    acknowledged: usize,
    lost: Vec<String>,
    runs: usize,
    duplicates: usize,
    /// Duplicate runs per stopped run (by the tag of the run that ran first).
    per_stop: BTreeMap<String, usize>,
    /// Duplicates whose runs all came from one server run that was not stopped between them.
    unexplained: usize,
    bound: usize,
}

impl Report {
    fn read(
        path: &Path,
        shared: &Shared,
        stops: &[(String, Signal)],
        args: &Args,
    ) -> Result<Report, String> {
        let file =
            std::fs::File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut runs: HashMap<String, Vec<String>> = HashMap::new();
        let mut total = 0;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|error| error.to_string())?;
            let Some((tag, id)) = line.split_once(' ') else {
                continue;
            };
            total += 1;
            runs.entry(id.to_owned()).or_default().push(tag.to_owned());
        }
        let acknowledged = shared
            .acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut lost: Vec<String> = acknowledged
            .iter()
            .filter(|id| !runs.contains_key(*id))
            .cloned()
            .collect();
        lost.sort();
        let stopped: HashSet<&str> = stops.iter().map(|(tag, _)| tag.as_str()).collect();
        let mut per_stop = BTreeMap::new();
        let mut unexplained = 0;
        for tags in runs.values() {
            // Each run after the first is a duplicate; the run before it must have been stopped.
            for pair in tags.windows(2) {
                if pair[0] != pair[1] && stopped.contains(pair[0].as_str()) {
                    *per_stop.entry(pair[0].clone()).or_insert(0) += 1;
                } else {
                    // The same server run twice, or a run that was never stopped.
                    unexplained += 1;
                }
            }
        }
        Ok(Report {
            acknowledged: acknowledged.len(),
            lost,
            runs: total,
            duplicates: total - runs.len(),
            per_stop,
            unexplained,
            bound: args.workers,
        })
    }
}

fn start(
    server: &Path,
    replica: &mut Replica,
    environment: &dyn Fn(&Replica) -> Vec<(&'static str, String)>,
) -> Result<(), String> {
    replica.tag = format!("{}{}", replica.name, replica.starts);
    replica.starts += 1;
    let mut command = Command::new(server);
    for name in [
        "NEXTGEN_REDIS_URL",
        "NEXTGEN_STORE_SQLITE",
        "NEXTGEN_STORE_URL",
        "NEXTGEN_INBOX_SQLITE",
        "NEXTGEN_INBOX_REDIS",
        "NEXTGEN_INBOX_URL",
    ] {
        command.env_remove(name);
    }
    let mut child = command
        .envs(environment(replica))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("could not start {}: {error}", server.display()))?;
    // Ready once it listens; its output is drained so it never blocks on a full pipe.
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    }
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", replica.port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "server `{}` exited at start: {status}",
                replica.tag
            ));
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "server `{}` did not listen within 30 s",
                replica.tag
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    replica.child = Some(child);
    Ok(())
}

fn stop(replica: &mut Replica, signal: Signal) -> Result<(), String> {
    let Some(mut child) = replica.child.take() else {
        return Ok(());
    };
    match signal {
        Signal::Kill => child.kill().map_err(|error| error.to_string())?,
        Signal::Term => {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .map_err(|error| format!("kill -TERM: {error}"))?;
            if !status.success() {
                return Err(format!("kill -TERM {} failed", child.id()));
            }
        }
    }
    child.wait().map_err(|error| error.to_string())?;
    Ok(())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("no free port: {error}"))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
