//! The floor of the PostgreSQL inbox route: the rows the inbox writes per delivery (one in
//! `nextgen_inbox`, one in `nextgen_inbox_bodies`, the same columns, the `charge.succeeded`
//! sample's body) written by plain sqlx from concurrent producers, each on its own connection,
//! each row in its own transaction: `BEGIN`, the two `INSERT`s, `COMMIT`, then the next row,
//! as an HTTP sender waits for its 200 before sending the next. One commit per row; whatever
//! the server groups of concurrent commits into one WAL flush, it groups on its own. No HTTP,
//! no verification, no parsing, no `NOTIFY`.
//!
//! `cargo bench -p nextgen-events --features postgres --bench postgres_floor -- URL [SECONDS=10] [PRODUCERS=64]`
//!
//! `URL` is `postgres://user@host:port/database` (no `?schema=`). The tables are made by
//! `PgInbox::connect` in a fresh schema of their own (`nextgen_floor_<pid>_<ms>`), dropped at
//! the end. Prints `FLOOR rows_per_second <n>`, which `scripts/bench-inbox.sh` reads.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nextgen_events::postgres::PgInbox;
use sqlx::Connection as _;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Barrier;

fn main() {
    // `cargo bench` passes `--bench`; the rest is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let Some(url) = args.first().cloned() else {
        eprintln!("usage: postgres_floor URL [SECONDS=10] [PRODUCERS=64]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let producers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&url, seconds, producers));
}

fn now_ms() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

async fn run(url: &str, seconds: u64, producers: usize) {
    let schema = format!("nextgen_floor_{}_{}", std::process::id(), now_ms());
    // The library's own tables, as its migrations make them; then the inbox is dropped (and
    // its pool with it): the rows are written by the producers' own pool.
    drop(
        PgInbox::connect(url, &schema)
            .await
            .expect("the inbox's tables"),
    );
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(producers).unwrap())
        .min_connections(0)
        .connect(url)
        .await
        .expect("a pool");

    // The sample the route's deliveries carry (981 bytes), with a header of the same form.
    let sample = nextgen_events::testing::sample("charge.succeeded").unwrap();
    let body: Arc<[u8]> = nextgen_events::testing::sample_body(&sample).into();
    let signature: Arc<str> = format!("t=1713745200,v1={}", "0f".repeat(32)).into();
    let insert_entry: Arc<str> = format!(
        "INSERT INTO {schema}.nextgen_inbox (event_id, event_type, received_at_ms, state, due_at_ms)
         VALUES ($1, $2, $3, 'pending', $3) ON CONFLICT (event_id) DO NOTHING"
    )
    .into();
    let insert_body: Arc<str> = format!(
        "INSERT INTO {schema}.nextgen_inbox_bodies (event_id, body, signature, signed_at)
         VALUES ($1, $2, $3, $4)"
    )
    .into();

    // Every producer holds its connection before the clock starts.
    let ready = Arc::new(Barrier::new(producers + 1));
    let tasks: Vec<_> = (0..producers)
        .map(|producer| {
            let (pool, ready) = (pool.clone(), Arc::clone(&ready));
            let (body, signature) = (Arc::clone(&body), Arc::clone(&signature));
            let (insert_entry, insert_body) = (Arc::clone(&insert_entry), Arc::clone(&insert_body));
            tokio::spawn(async move {
                let mut connection = pool.acquire().await.expect("a connection");
                ready.wait().await;
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut written = 0_u64;
                while Instant::now() < deadline {
                    let id = format!("evt_floor_{producer}_{written}");
                    let received = now_ms();
                    let mut transaction = connection.begin().await.expect("BEGIN");
                    sqlx::query(&insert_entry)
                        .bind(&id)
                        .bind("charge.succeeded")
                        .bind(received)
                        .execute(&mut *transaction)
                        .await
                        .expect("the entry's INSERT");
                    sqlx::query(&insert_body)
                        .bind(&id)
                        .bind(&body[..])
                        .bind(&*signature)
                        .bind(received / 1000)
                        .execute(&mut *transaction)
                        .await
                        .expect("the body's INSERT");
                    transaction.commit().await.expect("COMMIT");
                    written += 1;
                }
                written
            })
        })
        .collect();
    ready.wait().await;
    let started = Instant::now();
    let mut written = 0_u64;
    for task in tasks {
        written += task.await.unwrap();
    }
    let elapsed = started.elapsed();

    let counted: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {schema}.nextgen_inbox JOIN {schema}.nextgen_inbox_bodies USING (event_id)"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        u64::try_from(counted).unwrap(),
        written,
        "rows committed against rows counted"
    );
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!(
        "{written} rows in {:.1} s by {producers} producers, one transaction per row, {}-byte bodies",
        elapsed.as_secs_f64(),
        body.len()
    );
    println!(
        "FLOOR rows_per_second {:.0}",
        written as f64 / elapsed.as_secs_f64()
    );
}
