//! The PostgreSQL store against a real server: the store contract, the tables it creates (once,
//! however many replicas start together), the URL opener, errors without passwords, and two
//! replicas in inline mode sharing one store over real HTTP.
//!
//! Needs `--features postgres` and `NEXTGEN_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway
//! cluster and sets it; `scripts/postgres.sh start DIR` starts one by hand). Without the
//! variable the tests fail, unless `NEXTGEN_SKIP_POSTGRES_TESTS=1` asks to skip them.
//!
//! ```text
//! NEXTGEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/nextgen_test cargo test -p nextgen-tests --features postgres --test postgres
//! ```

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nextgen_events::WebhookConfig;
use nextgen_events::backend::{Access, BackendUrl, OpenError, open_inbox, open_store};
use nextgen_events::idempotency::{Claim, IdempotencyStore};
use nextgen_events::postgres::{PgInbox, PgStore};
use nextgen_events::prelude::*;
use nextgen_tests::contract::StoreUnderTest;
use nextgen_tests::services::{postgres_url, unique_schema};
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// A store in a fresh schema on a clock the contract moves.
struct PgHarness {
    store: PgStore,
    clock: Arc<AtomicU64>,
}

impl PgHarness {
    async fn connect() -> Option<Self> {
        let url = postgres_url("the PostgreSQL store")?;
        let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
        let reader = Arc::clone(&clock);
        let store = PgStore::connect(&url, &unique_schema("contract"))
            .await
            .unwrap()
            .with_retention(Duration::from_secs(3600))
            .with_clock(move || reader.load(Ordering::SeqCst));
        Some(PgHarness { store, clock })
    }
}

impl StoreUnderTest for PgHarness {
    type Store = PgStore;
    fn store(&self) -> PgStore {
        self.store.clone()
    }
    fn lease(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn retention(&self) -> Duration {
        Duration::from_secs(3600)
    }
    async fn pass(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap();
        self.clock.fetch_add(millis, Ordering::SeqCst);
    }
}

nextgen_tests::store_contract_tests!(match PgHarness::connect().await {
    Some(harness) => harness,
    None => return,
});

/// The tables in `schema`, sorted.
async fn tables(store: &PgStore, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_an_empty_database_run_one_migration() {
    let Some(url) = postgres_url("the PostgreSQL migrations") else {
        return;
    };
    let schema = unique_schema("migrate");
    // Five replicas at once, store and inbox alike, on a schema that does not exist yet.
    let starts = (0..5).map(|n| {
        let (url, schema) = (url.clone(), schema.clone());
        tokio::spawn(async move {
            if n % 2 == 0 {
                PgStore::connect(&url, &schema).await.map(|_| ())
            } else {
                PgInbox::connect(&url, &schema).await.map(|_| ())
            }
        })
    });
    for started in futures_util::future::join_all(starts).await {
        started.unwrap().unwrap();
    }
    let store = PgStore::connect(&url, &schema).await.unwrap();
    assert_eq!(
        tables(&store, &schema).await,
        [
            "nextgen_handlers",
            "nextgen_inbox",
            "nextgen_inbox_bodies",
            "nextgen_migrations",
            "nextgen_objects"
        ]
    );
    let applied: Vec<(i32, String)> = sqlx::query_as(&format!(
        "SELECT version, name FROM {schema}.nextgen_migrations ORDER BY version"
    ))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        applied,
        [
            (1, "tables".to_owned()),
            (2, "operator".to_owned()),
            (3, "reruns".to_owned()),
            (4, "claim_in".to_owned())
        ]
    );
}

/// The inbox's indexes in `schema`, by name.
async fn inbox_indexes(store: &PgStore, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = 'nextgen_inbox' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// A schema of the first version (its tables and their indexes only) gains the operator's
/// indexes when an inbox of this version connects, and loses the index they replace.
#[tokio::test]
async fn a_schema_at_the_first_migration_is_brought_up_to_date() {
    let Some(url) = postgres_url("the PostgreSQL migrations") else {
        return;
    };
    let schema = unique_schema("migrate_up");
    let store = PgStore::connect(&url, &schema).await.unwrap();
    sqlx::raw_sql(&format!(
        "DROP INDEX {schema}.nextgen_inbox_listed; DROP INDEX {schema}.nextgen_inbox_dead;
         DROP INDEX {schema}.nextgen_inbox_failed;
         CREATE INDEX nextgen_inbox_received ON {schema}.nextgen_inbox (received_at_ms);
         DELETE FROM {schema}.nextgen_migrations WHERE version = 2;"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(
        inbox_indexes(&store, &schema).await,
        [
            "nextgen_inbox_due",
            "nextgen_inbox_handled",
            "nextgen_inbox_pkey",
            "nextgen_inbox_received"
        ]
    );
    PgInbox::connect(&url, &schema).await.unwrap();
    assert_eq!(
        inbox_indexes(&store, &schema).await,
        [
            "nextgen_inbox_dead",
            "nextgen_inbox_due",
            "nextgen_inbox_failed",
            "nextgen_inbox_handled",
            "nextgen_inbox_listed",
            "nextgen_inbox_pkey"
        ]
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused_with_the_fix() {
    let Some(url) = postgres_url("the PostgreSQL migrations") else {
        return;
    };
    let schema = unique_schema("newer");
    let store = PgStore::connect(&url, &schema).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO {schema}.nextgen_migrations (version, name) VALUES (99, 'future')"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let refused = PgStore::connect(&url, &schema)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("at migration 99"), "{refused}");
    assert!(refused.contains("upgrade nextgen-events"), "{refused}");
}

#[tokio::test]
async fn a_bad_schema_name_and_an_unreachable_server_say_what_is_wrong_without_the_password() {
    let Some(url) = postgres_url("the PostgreSQL store") else {
        return;
    };
    let refused = PgStore::connect(&url, "pay-ments")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("`pay-ments` is not a schema name"),
        "{refused}"
    );

    // A port nothing listens on, with a password in the URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://app:hunter2secret@127.0.0.1:{port}/payments");
    let started = std::time::Instant::now();
    let refused = PgStore::connect(&unreachable, "nextgen")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        refused.contains("could not connect to PostgreSQL"),
        "{refused}"
    );
    assert!(refused.contains("app:***@127.0.0.1"), "{refused}");
    assert!(!refused.contains("hunter2secret"), "{refused}");
}

#[tokio::test]
async fn the_url_opener_opens_the_store_and_the_inbox_and_a_tool_never_creates_one() {
    let Some(url) = postgres_url("the PostgreSQL opener") else {
        return;
    };
    let schema = unique_schema("opener");
    let separator = if url.contains('?') { '&' } else { '?' };
    let named = BackendUrl::parse(&format!("{url}{separator}schema={schema}")).unwrap();
    // A tool looking at a schema that holds no inbox is told so; nothing is created.
    let missing = open_inbox(&named, Access::Inspect).await.unwrap_err();
    assert!(matches!(missing, OpenError::NoInbox { .. }), "{missing}");
    assert!(missing.to_string().contains(&schema), "{missing}");

    let store = open_store(&named).await.unwrap();
    assert!(matches!(
        store
            .claim("evt_opener", "h", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    // The store made the tables: the inbox is there now, empty.
    let opened = open_inbox(&named, Access::Inspect).await.unwrap();
    assert_eq!(opened.operator().stats().await.unwrap().pending, 0);
    let served = open_inbox(&named, Access::Serve).await.unwrap();
    assert_eq!(served.url(), &named);
}

#[nextgen_event("refund.created")]
async fn pg_books_refund(event: Event<Refund>) {
    ran(&event.id, "pg_books_refund");
    // Long enough for the other replica's delivery to arrive meanwhile.
    actix_rt::time::sleep(Duration::from_millis(5)).await;
}

#[actix_rt::test]
async fn two_replicas_in_inline_mode_run_each_handler_once_per_event() {
    let Some(url) = postgres_url("the PostgreSQL store") else {
        return;
    };
    let schema = unique_schema("inline");
    let replica = || async {
        let store = PgStore::connect(&url, &schema).await.unwrap();
        TestServer::start(
            WebhookConfig::new(SECRET).with_idempotency_store(store),
            |_| {},
        )
    };
    let (a, b) = (replica().await, replica().await);
    let (url_a, url_b) = (a.url("/webhook"), b.url("/webhook"));
    let ids: Vec<String> = (0..50)
        .map(|n| format!("evt_pg_inline_{}_{n}", std::process::id()))
        .collect();
    let posts = ids.iter().map(|id| {
        let (body, signature) = delivery(id, "refund.created");
        let (url_a, url_b) = (url_a.clone(), url_b.clone());
        async move {
            let (first, second) = tokio::join!(
                post(&url_a, body.clone(), Some(&signature)),
                post(&url_b, body, Some(&signature))
            );
            // One ran it; the other found it in progress (409/500: sent again) or done (200).
            let statuses = [first.status, second.status];
            assert!(statuses.contains(&200), "{id}: {statuses:?}");
        }
    });
    futures_util::future::join_all(posts).await;
    for id in &ids {
        assert_eq!(runs(id, "pg_books_refund"), 1, "{id}");
    }
}
