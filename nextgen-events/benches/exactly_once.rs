//! What exactly once costs on PostgreSQL: one row inserted per event, several ways, measured in
//! interleaved rounds (one round of each way, again and again, the order turning each round),
//! so that the machine's noise falls on all of them alike.
//!
//! - `bare transaction`: `BEGIN`, the `INSERT`, `COMMIT`, straight on a sqlx pool. The floor:
//!   3 round trips, one commit.
//! - `transactional handler`: a handler that takes the app's transaction
//!   (`tx: &mut PgConnection`) doing the same `INSERT`, dispatched by the library through
//!   [`Endpoint::receive`] (signature check, envelope, typed payload, dispatch; no HTTP) on a
//!   `PgStore`: the claim (with `set_config('lock_timeout')` folded in, written done at once)
//!   and `BEGIN` in one simple query, the `INSERT`, `COMMIT`: 3 round trips, one commit.
//! - `plain handler`: a handler without the transaction doing the same `INSERT` on the pool,
//!   the same dispatch: the claim, the `INSERT`, the done marker, each its own commit: 3 round
//!   trips, 3 commits.
//! - `library's statements by hand`: the six statements the transactional handler sent before
//!   the claim was folded (`BEGIN`, `set_config`, claim, `INSERT`, marker, `COMMIT`), straight
//!   on the pool: what folding saved.
//! - `4 statements by hand`: `BEGIN`, then the claim, the `INSERT`, `COMMIT`, straight on the
//!   pool: what the transactional handler sent before the claim travelled with `BEGIN`.
//! - `3 round trips by hand`: the same, with `BEGIN` and the claim sent together as one
//!   simple query (`BEGIN; EXECUTE claim(...)`, the claim prepared once per connection of a
//!   pool of its own, its values written in as literals): what the transactional handler
//!   sends, without the endpoint: how much of its cost is the statements, and how much the
//!   dispatch.
//! - `3 round trips, claim unprepared`: `BEGIN` and the claim's SQL with its values written in,
//!   one simple query: the same round trips without a prepared statement (planned each time).
//! - `3 round trips, claim function`: `BEGIN; SELECT claim_in(...)` through sqlx's
//!   `begin_with`, the claim a PL/pgSQL function (its plan cached per session) that raises
//!   when the claim is not this transaction's; the values hex-encoded literals.
//!
//! Each with `C` concurrent producers, each sending its next event once its last one is done,
//! all on one thread (a current-thread tokio runtime, as each actix worker runs one).
//!
//! `cargo bench -p nextgen-events --features postgres --bench exactly_once -- [SECONDS=2] [ROUNDS=5] [PRODUCERS=1,16]`
//!
//! The database is `NEXTGEN_BENCH_POSTGRES_URL`, else `NEXTGEN_TEST_POSTGRES_URL`
//! (`postgres://user@host:port/database`, no `?schema=`; `scripts/postgres.sh start DIR`
//! starts a throwaway one); without either it says so and measures nothing. The store's
//! tables and the app's table (`bench_ledger`, no unique constraint) are made in a fresh
//! schema (`nextgen_once_<pid>_<ms>`), dropped at the end. `SECONDS` is each variant's share
//! of a round.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nextgen_events::postgres::{PgConnection, PgPool, PgStore};
use nextgen_events::prelude::*;
use nextgen_events::{Endpoint, Received, Registry, WebhookConfig};
use sqlx::Row as _;
use tokio::sync::Barrier;

const SECRET: &str = "whsec_exactly_once_bench";

/// The app's `INSERT`, into the run's schema.
static SCHEMA: OnceLock<String> = OnceLock::new();
static INSERT: OnceLock<String> = OnceLock::new();

/// The pool the plain handler writes on: the store's.
static POOL: OnceLock<PgPool> = OnceLock::new();

/// The row, in the transaction its done marker commits in.
#[nextgen_event("charge.succeeded", name = "bench.transactional")]
async fn book_in_transaction(
    event: Event<Charge>,
    tx: &mut PgConnection,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT.get().unwrap())
        .bind(&event.id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The row, on the pool: its own commit, then the done marker's.
#[nextgen_event("charge.succeeded", name = "bench.plain")]
async fn book_on_pool(event: Event<Charge>) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT.get().unwrap())
        .bind(&event.id)
        .execute(POOL.get().unwrap())
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Bare,
    Transactional,
    Plain,
    ByHand,
    Folded,
    Pipelined,
    Unprepared,
    Function,
}

impl Variant {
    const ALL: [Variant; 8] = [
        Variant::Bare,
        Variant::Transactional,
        Variant::Plain,
        Variant::ByHand,
        Variant::Folded,
        Variant::Pipelined,
        Variant::Unprepared,
        Variant::Function,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare transaction",
            Variant::Transactional => "transactional handler",
            Variant::Plain => "plain handler",
            Variant::ByHand => "library's statements by hand",
            Variant::Folded => "4 statements by hand",
            Variant::Pipelined => "3 round trips by hand",
            Variant::Unprepared => "3 round trips, claim unprepared",
            Variant::Function => "3 round trips, claim function",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Transactional => "tx",
            Variant::Plain => "plain",
            Variant::ByHand => "hand",
            Variant::Folded => "folded",
            Variant::Pipelined => "piped",
            Variant::Unprepared => "unprep",
            Variant::Function => "func",
        }
    }
}

/// What the producers share.
struct Bench {
    pool: PgPool,
    transactional: Endpoint,
    plain: Endpoint,
    /// The body's text before and after the event id.
    body: (String, String),
    /// The library's statements, for `ByHand`.
    claim: String,
    complete: String,
    folded: String,
    /// A pool whose connections have the claim prepared as `claim`, for `Pipelined`.
    prepared: PgPool,
}

fn main() {
    // `cargo bench` passes `--bench`; the rest is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let producers: Vec<usize> = args
        .get(2)
        .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16]);
    let url = ["NEXTGEN_BENCH_POSTGRES_URL", "NEXTGEN_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|url| !url.trim().is_empty())
        });
    let Some(url) = url else {
        eprintln!(
            "exactly_once: set NEXTGEN_BENCH_POSTGRES_URL (or NEXTGEN_TEST_POSTGRES_URL) to a \
             PostgreSQL database (scripts/postgres.sh start DIR starts one); nothing measured"
        );
        return;
    };
    // One thread, as each of actix's workers is (a `Context` is not `Send`), for every variant.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &runtime,
        run(&url, Duration::from_secs_f64(seconds), rounds, &producers),
    );
}

fn now_ms() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

async fn run(url: &str, share: Duration, rounds: usize, producers: &[usize]) {
    let schema = format!("nextgen_once_{}_{}", std::process::id(), now_ms());
    let store = PgStore::connect(url, &schema)
        .await
        .expect("the store's tables");
    let pool = store.pool().clone();
    sqlx::query(&format!(
        "CREATE TABLE \"{schema}\".bench_ledger (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
    ))
    .execute(&pool)
    .await
    .unwrap();
    INSERT
        .set(format!(
            "INSERT INTO \"{schema}\".bench_ledger (event_id) VALUES ($1)"
        ))
        .unwrap();
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION \"{schema}\".claim_in(p_event_id text, p_handler text, p_owner text, p_until bigint, p_now bigint, p_wait text)
         RETURNS void LANGUAGE plpgsql AS $f$
         DECLARE s text; o text;
         BEGIN
           PERFORM set_config('lock_timeout', p_wait, true);
           INSERT INTO \"{schema}\".nextgen_handlers AS h (event_id, handler, state, owner, until_ms)
           VALUES (p_event_id, p_handler, 'done', p_owner, p_until)
           ON CONFLICT (event_id, handler) DO UPDATE SET
             state = CASE WHEN h.until_ms <= p_now THEN 'done' ELSE h.state END,
             owner = CASE WHEN h.until_ms <= p_now THEN EXCLUDED.owner ELSE h.owner END,
             until_ms = CASE WHEN h.until_ms <= p_now THEN EXCLUDED.until_ms ELSE h.until_ms END
           RETURNING state, owner INTO s, o;
           IF o IS DISTINCT FROM p_owner THEN
             RAISE EXCEPTION 'not claimed: %', s USING ERRCODE = 'NX001';
           END IF;
         END $f$"
    ))
    .execute(&pool)
    .await
    .unwrap();
    SCHEMA.set(schema.clone()).unwrap();
    POOL.set(pool.clone()).unwrap();

    let endpoint = |name: &'static str| {
        let registry = Registry::from_handlers(
            Registry::global()
                .iter()
                .filter(|handler| handler.name() == name),
        );
        assert_eq!(registry.iter().count(), 1, "{name}");
        Endpoint::new(
            WebhookConfig::new(SECRET)
                .with_idempotency_store(store.clone())
                .with_registry(registry),
        )
        .unwrap()
    };
    // The catalog's charge.succeeded sample (about 1 KiB), a fresh id per event.
    let mut sample = nextgen_events::testing::sample("charge.succeeded").unwrap();
    sample["id"] = "EVENT_ID".into();
    let text = String::from_utf8(nextgen_events::testing::sample_body(&sample)).unwrap();
    let (before, after) = text.split_once("EVENT_ID").unwrap();
    // The statements `PgStore` runs for a transactional handler, as it writes them.
    let claim = format!(
        "INSERT INTO \"{schema}\".nextgen_handlers AS h (event_id, handler, state, owner, until_ms)
         VALUES ($1, $2, 'claimed', $3, $4)
         ON CONFLICT (event_id, handler) DO UPDATE SET
             state = CASE WHEN h.until_ms <= $5 THEN 'claimed' ELSE h.state END,
             owner = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.owner ELSE h.owner END,
             until_ms = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.until_ms ELSE h.until_ms END
         RETURNING state, owner"
    );
    let complete = format!(
        "UPDATE \"{schema}\".nextgen_handlers SET state = 'done', until_ms = $4
         WHERE event_id = $1 AND handler = $2 AND owner = $3 AND state = 'claimed'"
    );
    // The same claim with the lock timeout set in it, written done at once.
    let folded = format!(
        "INSERT INTO \"{schema}\".nextgen_handlers AS h (event_id, handler, state, owner, until_ms)
         SELECT $1::text, $2::text, 'done', $3::text, $4::bigint
         FROM (SELECT set_config('lock_timeout', $6::text, true)) AS settings WHERE true
         ON CONFLICT (event_id, handler) DO UPDATE SET
             state = CASE WHEN h.until_ms <= $5 THEN 'done' ELSE h.state END,
             owner = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.owner ELSE h.owner END,
             until_ms = CASE WHEN h.until_ms <= $5 THEN EXCLUDED.until_ms ELSE h.until_ms END
         RETURNING state, owner"
    );
    let bench = Arc::new(Bench {
        pool: pool.clone(),
        transactional: endpoint("bench.transactional"),
        plain: endpoint("bench.plain"),
        body: (before.to_owned(), after.to_owned()),
        claim,
        complete,
        prepared: {
            let prepare: &'static str =
                format!("PREPARE claim (text, text, text, bigint, bigint, text) AS {folded}")
                    .leak();
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(20)
                .test_before_acquire(false)
                .after_connect(move |connection, _| {
                    Box::pin(async move {
                        sqlx::Executor::execute(connection, prepare).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .unwrap()
        },
        folded,
    });

    let settings: Vec<String> = sqlx::query(
        "SELECT current_setting('server_version'), current_setting('fsync'),
                current_setting('synchronous_commit'), current_setting('wal_sync_method')",
    )
    .fetch_one(&pool)
    .await
    .map(|row| (0..4).map(|i| row.get::<String, _>(i)).collect())
    .unwrap();
    println!(
        "exactly_once: PostgreSQL {} (fsync {}, synchronous_commit {}, wal_sync_method {}), {} core(s) here; \
         {rounds} rounds, each {:.1} s per variant, interleaved; one row per event",
        settings[0],
        settings[1],
        settings[2],
        settings[3],
        std::thread::available_parallelism().map_or(1, usize::from),
        share.as_secs_f64()
    );

    for &producers in producers {
        // Warm up: the pool's connections, the prepared statements, the tables' first pages.
        for variant in Variant::ALL {
            measure(&bench, variant, producers, Duration::from_millis(300), 99).await;
        }
        // Per variant: events and seconds in all, and each round's rate.
        let mut totals = [(0_u64, 0_f64); Variant::ALL.len()];
        let mut rates: Vec<[f64; Variant::ALL.len()]> = Vec::new();
        for round in 0..rounds {
            let mut rate = [0_f64; Variant::ALL.len()];
            for turn in 0..Variant::ALL.len() {
                let index = (round + turn) % Variant::ALL.len();
                let variant = Variant::ALL[index];
                let (events, elapsed) = measure(&bench, variant, producers, share, round).await;
                totals[index].0 += events;
                totals[index].1 += elapsed.as_secs_f64();
                rate[index] = events as f64 / elapsed.as_secs_f64();
            }
            rates.push(rate);
        }
        report(producers, &totals, &rates);
    }

    let rows: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{schema}\".bench_ledger GROUP BY event_id HAVING count(*) > 1"
    ))
    .fetch_optional(&pool)
    .await
    .unwrap()
    .unwrap_or(0);
    assert_eq!(rows, 0, "an event with more than one row");
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

/// Runs `variant` with `producers` for `share`: the events done and the time they took.
async fn measure(
    bench: &Arc<Bench>,
    variant: Variant,
    producers: usize,
    share: Duration,
    round: usize,
) -> (u64, Duration) {
    let ready = Arc::new(Barrier::new(producers + 1));
    let tasks: Vec<_> = (0..producers)
        .map(|producer| {
            let (bench, ready) = (Arc::clone(bench), Arc::clone(&ready));
            tokio::task::spawn_local(async move {
                ready.wait().await;
                let deadline = Instant::now() + share;
                let mut done = 0_u64;
                while Instant::now() < deadline {
                    let id = format!(
                        "evt_{}_{producers}_{round}_{producer}_{done}",
                        variant.tag()
                    );
                    one(&bench, variant, &id).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    ready.wait().await;
    let started = Instant::now();
    let mut events = 0;
    for task in tasks {
        events += task.await.unwrap();
    }
    (events, started.elapsed())
}

/// One event, one row.
async fn one(bench: &Bench, variant: Variant, id: &str) {
    match variant {
        Variant::Bare => {
            let mut transaction = bench.pool.begin().await.unwrap();
            insert_row(&mut transaction, id).await;
            transaction.commit().await.unwrap();
        }
        Variant::Transactional | Variant::Plain => {
            let endpoint = if variant == Variant::Transactional {
                &bench.transactional
            } else {
                &bench.plain
            };
            let body = format!("{}{id}{}", bench.body.0, bench.body.1);
            let signature = nextgen_events::sign(body.as_bytes(), SECRET, now_ms() as u64 / 1000);
            let received = endpoint
                .receive(body.as_bytes(), Some(&signature), &Context::new())
                .await
                .unwrap();
            assert!(matches!(received, Received::Handled(_)));
        }
        Variant::ByHand => {
            let now = now_ms();
            let owner = "bench.by_hand.owner";
            let mut transaction = bench.pool.begin().await.unwrap();
            sqlx::query("SELECT set_config('lock_timeout', $1, true)")
                .bind("60000ms")
                .execute(&mut *transaction)
                .await
                .unwrap();
            let row = sqlx::query(&bench.claim)
                .bind(id)
                .bind("bench.by_hand")
                .bind(owner)
                .bind(now + 72 * 3_600_000)
                .bind(now)
                .fetch_one(&mut *transaction)
                .await
                .unwrap();
            assert_eq!(row.get::<String, _>(0), "claimed");
            insert_row(&mut transaction, id).await;
            let done = sqlx::query(&bench.complete)
                .bind(id)
                .bind("bench.by_hand")
                .bind(owner)
                .bind(now + 72 * 3_600_000)
                .execute(&mut *transaction)
                .await
                .unwrap();
            assert_eq!(done.rows_affected(), 1);
            transaction.commit().await.unwrap();
        }
        Variant::Folded => {
            let now = now_ms();
            let owner = "bench.folded.owner";
            let mut transaction = bench.pool.begin().await.unwrap();
            let row = sqlx::query(&bench.folded)
                .bind(id)
                .bind("bench.folded")
                .bind(owner)
                .bind(now + 72 * 3_600_000)
                .bind(now)
                .bind("60000ms")
                .fetch_one(&mut *transaction)
                .await
                .unwrap();
            assert_eq!(row.get::<String, _>(1), owner);
            insert_row(&mut transaction, id).await;
            transaction.commit().await.unwrap();
        }
        Variant::Function => {
            let now = now_ms();
            let hex = |text: &str| {
                let digits: String = text.bytes().map(|b| format!("{b:02x}")).collect();
                format!("convert_from(decode('{digits}', 'hex'), 'UTF8')")
            };
            let schema = SCHEMA.get().unwrap();
            let begin = format!(
                "BEGIN; SELECT \"{schema}\".claim_in({}, {}, {}, {}, {now}, '60000ms')",
                hex(id),
                hex("bench.func"),
                hex("bench.func.owner"),
                now + 72 * 3_600_000,
            );
            let mut connection = bench.pool.acquire().await.unwrap();
            let mut transaction = sqlx::Connection::begin_with(&mut *connection, begin)
                .await
                .unwrap();
            insert_row(&mut transaction, id).await;
            transaction.commit().await.unwrap();
        }
        Variant::Unprepared => {
            let now = now_ms();
            let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
            let claim = format!(
                "BEGIN; {}",
                bench
                    .folded
                    .replace("$1", &literal(id))
                    .replace("$2", "'bench.unprep'")
                    .replace("$3", "'bench.unprep.owner'")
                    .replace("$4", &(now + 72 * 3_600_000).to_string())
                    .replace("$5", &now.to_string())
                    .replace("$6", "'60000ms'")
            );
            let mut connection = bench.pool.acquire().await.unwrap();
            claim_insert_commit(&mut connection, &claim, "bench.unprep.owner", id).await;
        }
        Variant::Pipelined => {
            let now = now_ms();
            // Standard-conforming strings (the default): a quote is doubled, nothing else.
            let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
            let claim = format!(
                "BEGIN; EXECUTE claim({}, 'bench.piped', 'bench.piped.owner', {}, {now}, '60000ms')",
                literal(id),
                now + 72 * 3_600_000,
            );
            let mut connection = bench.prepared.acquire().await.unwrap();
            claim_insert_commit(&mut connection, &claim, "bench.piped.owner", id).await;
        }
    }
}

/// `BEGIN` and the claim in one simple query (`claim`, checked to be `owner`'s), the app's
/// `INSERT`, `COMMIT`: three round trips.
/// The app's one-row insert, on `connection` (inside the transaction begun there).
async fn insert_row(connection: &mut PgConnection, id: &str) {
    sqlx::query(INSERT.get().unwrap())
        .bind(id)
        .execute(connection)
        .await
        .unwrap();
}

async fn claim_insert_commit(connection: &mut PgConnection, claim: &str, owner: &str, id: &str) {
    let row = sqlx::raw_sql(claim)
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(1), owner);
    insert_row(connection, id).await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut *connection)
        .await
        .unwrap();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn report(
    producers: usize,
    totals: &[(u64, f64); Variant::ALL.len()],
    rates: &[[f64; Variant::ALL.len()]],
) {
    println!();
    println!("C = {producers} producer(s)");
    println!(
        "  {:<30} {:>10} {:>12} {:>22}",
        "variant", "events/s", "latency", "cost / bare (all; median)"
    );
    let bare = totals[0].0 as f64 / totals[0].1;
    for (index, variant) in Variant::ALL.iter().enumerate() {
        let rate = totals[index].0 as f64 / totals[index].1;
        let ratios = rates.iter().map(|round| round[0] / round[index]).collect();
        println!(
            "  {:<30} {:>10.0} {:>9.0} us {:>13.3}; {:.3}",
            variant.label(),
            rate,
            1e6 / rate * producers as f64,
            bare / rate,
            median(ratios)
        );
    }
    let per_round: Vec<String> = rates
        .iter()
        .map(|round| format!("{:.3}", round[0] / round[1]))
        .collect();
    println!(
        "  transactional / bare, round by round: {}",
        per_round.join(" ")
    );
}
