//! The SQLite idempotency store: the shared contract on a real file, and markers that survive
//! a restart in inline mode.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::{Claim, IdempotencyStore, ObjectClaim, ObjectClaims, Watermark};
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteStore;
use nextgen_events::{Context, Endpoint, sign};
use nextgen_tests::contract::StoreUnderTest;
use nextgen_tests::services::TempFile;
use support::{SECRET, now, ran, runs};

struct SqliteHarness {
    file: TempFile,
    clock: Arc<AtomicU64>,
    store: SqliteStore,
}

impl SqliteHarness {
    fn new() -> Self {
        let file = TempFile::new("contract");
        let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
        let reader = Arc::clone(&clock);
        let store = SqliteStore::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst))
            .unwrap()
            .with_retention(Duration::from_secs(3600));
        SqliteHarness { file, clock, store }
    }
}

impl StoreUnderTest for SqliteHarness {
    type Store = SqliteStore;
    fn store(&self) -> SqliteStore {
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

nextgen_tests::store_contract_tests!(SqliteHarness::new());

#[nextgen_event("charge.refunded")]
async fn a_books_refund(event: Event<Charge>) {
    ran(&event.id, "a_books_refund");
}

/// Fails until the test lets it succeed (by event id).
static FIXED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

#[nextgen_event("charge.refunded")]
async fn b_notifies(event: Event<Charge>) -> Result<(), String> {
    ran(&event.id, "b_notifies");
    if FIXED.lock().unwrap().contains(&event.id) {
        Ok(())
    } else {
        Err("the mailer is down".to_owned())
    }
}

#[actix_rt::test]
async fn a_succeeded_handler_is_skipped_after_a_restart() {
    let file = TempFile::new("restart");
    let id = "evt_sqlite_restart";
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": "charge.refunded",
        "data": { "object": { "id": "ch_1", "amount": 2000, "amount_refunded": 2000,
            "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string();
    let signature = sign(body.as_bytes(), SECRET, now());
    {
        // First life of the process: one handler succeeds, the other fails.
        let config =
            WebhookConfig::new(SECRET).with_idempotency_store(SqliteStore::open(&file.0).unwrap());
        let first = Endpoint::new(config.clone())
            .unwrap()
            .receive(body.as_bytes(), Some(&signature), &Context::new())
            .await;
        assert_eq!(first.unwrap_err().code(), "handler_failed");
    }
    FIXED.lock().unwrap().push(id.to_owned());
    // Second life, on the same file: only the failed handler runs.
    let config =
        WebhookConfig::new(SECRET).with_idempotency_store(SqliteStore::open(&file.0).unwrap());
    let report = Endpoint::new(config.clone())
        .unwrap()
        .receive(body.as_bytes(), Some(&signature), &Context::new())
        .await
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(runs(id, "a_books_refund"), 1, "{report:?}");
    assert_eq!(runs(id, "b_notifies"), 2, "{report:?}");
    assert!(
        report
            .outcomes
            .iter()
            .any(|outcome| outcome.skipped && outcome.handler.ends_with("a_books_refund"))
    );
}

/// The file holds raw payloads: it and its `-wal` and `-shm` files are its owner's only,
/// whatever the umask, whether the inbox or the store created it.
#[cfg(unix)]
#[actix_rt::test]
async fn the_sqlite_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    use nextgen_events::idempotency::IdempotencyStore;
    use nextgen_events::sqlite::SqliteInbox;

    let inbox_file = TempFile::new("mode-inbox");
    let store_file = TempFile::new("mode-store");
    let inbox = SqliteInbox::open(&inbox_file.0).unwrap();
    let store = SqliteStore::open(&store_file.0).unwrap();
    let lease = Duration::from_secs(60);
    inbox.store().claim("evt_mode", "h", lease).await.unwrap();
    store.claim("evt_mode", "h", lease).await.unwrap();
    for file in [&inbox_file, &store_file] {
        for suffix in ["", "-wal", "-shm"] {
            let path = format!("{}{suffix}", file.0.display());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{path} is {mode:o}");
        }
    }
    drop((inbox, store));
}

/// SQLite's in-memory name is no file to create: opening it leaves no `:memory:` file behind.
#[test]
fn the_in_memory_name_creates_no_file() {
    let leftover = std::path::Path::new(":memory:");
    let existed = leftover.exists();
    let opened = nextgen_events::sqlite::SqliteStore::open(":memory:");
    let created = !existed && leftover.exists();
    if created {
        let _ = std::fs::remove_file(leftover);
    }
    assert!(opened.is_ok(), "{:?}", opened.err());
    assert!(!created, "opening `:memory:` created a file of that name");
}

/// A file that cannot be created is refused with why, naming the file.
#[test]
fn a_file_in_a_missing_directory_is_refused_with_why() {
    let missing = std::env::temp_dir()
        .join(format!("nextgen-missing-{}", std::process::id()))
        .join("store.sqlite3");
    let refused = nextgen_events::sqlite::SqliteStore::open(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("could not create the SQLite file"),
        "{refused}"
    );
    assert!(refused.contains("store.sqlite3"), "{refused}");
}

#[actix_rt::test]
async fn a_done_marker_at_the_end_of_its_retention_is_taken_over() {
    let harness = SqliteHarness::new();
    let (store, lease) = (harness.store(), harness.lease());
    let Ok(Claim::Claimed(owner)) = store.claim("evt_end", "h", lease).await else {
        panic!("a new event is claimed");
    };
    assert_eq!(store.complete("evt_end", "h", owner).await, Ok(true));
    harness.pass(harness.retention()).await;
    let again = store.claim("evt_end", "h", lease).await;
    assert!(matches!(again, Ok(Claim::Claimed(_))), "{again:?}");
}

#[actix_rt::test]
async fn expired_rows_are_swept_as_claims_go_on() {
    // Bounded on disk: claims whose process died (and markers past their retention) are
    // deleted by a later claim, not kept for ever.
    let harness = SqliteHarness::new();
    let (store, lease) = (harness.store(), harness.lease());
    for n in 0..1024 {
        store.claim(&format!("evt_{n}"), "h", lease).await.unwrap();
    }
    harness.pass(lease * 2).await;
    store.claim("evt_last", "h", lease).await.unwrap();
    let rows: i64 = rusqlite::Connection::open(&harness.file.0)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM nextgen_handlers", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(rows, 1);
}

#[actix_rt::test]
async fn an_object_claim_and_its_watermark_end_exactly_at_their_ends() {
    let harness = SqliteHarness::new();
    let (store, lease) = (harness.store(), harness.lease());
    let claim = |store: SqliteStore| async move { store.claim_object("cus_end", "h", lease).await };
    let Ok(ObjectClaim::Claimed { token, .. }) = claim(store.clone()).await else {
        panic!("a new object is claimed");
    };
    let handled = Watermark::new(100, "evt_1");
    assert_eq!(
        store.advance_object("cus_end", "h", token, &handled).await,
        Ok(true)
    );
    // Claimed again by a process that dies; at the end of its lease another takes it over.
    assert!(matches!(
        claim(store.clone()).await,
        Ok(ObjectClaim::Claimed { .. })
    ));
    harness.pass(lease).await;
    match claim(store.clone()).await {
        Ok(ObjectClaim::Claimed { newest, .. }) => assert_eq!(newest, Some(handled)),
        other => panic!("{other:?}"),
    }
    // At the end of its retention the watermark is no longer answered.
    harness.pass(harness.retention() - lease).await;
    match claim(store).await {
        Ok(ObjectClaim::Claimed { newest, .. }) => assert_eq!(newest, None),
        other => panic!("{other:?}"),
    }
}

/// A retention the file cannot hold (`Duration::MAX`, or zero: every marker forgotten at once)
/// is refused with the setter named: the store's by its check at mount, the inbox's when its
/// workers start, so no endpoint runs with it.
#[test]
fn retentions_the_file_cannot_hold_are_refused_naming_the_setter() {
    use nextgen_events::sqlite::SqliteInbox;
    use nextgen_events::{ConfigError, idempotency::StoreError};

    let file = TempFile::new("retention");
    let store = SqliteStore::open(&file.0).unwrap();
    assert_eq!(store.check_settings(), Ok(()));
    let refused = store
        .clone()
        .with_retention(Duration::MAX)
        .check_settings()
        .unwrap_err();
    assert_eq!(
        refused,
        StoreError::SettingTooLong {
            setting: "SqliteStore::with_retention",
            seconds: u64::MAX
        }
    );
    let message = refused.to_string();
    assert!(
        message.contains("`SqliteStore::with_retention`") && message.contains("10 years"),
        "{message}"
    );
    assert_eq!(
        store.with_retention(Duration::ZERO).check_settings(),
        Err(StoreError::ZeroSetting {
            setting: "SqliteStore::with_retention"
        })
    );

    let inbox_file = TempFile::new("retention-inbox");
    let inbox = SqliteInbox::open(&inbox_file.0).unwrap();
    assert_eq!(inbox.check_settings(), Ok(()));
    let inbox = inbox.with_retention(Duration::MAX);
    let expected = StoreError::SettingTooLong {
        setting: "SqliteInbox::with_retention",
        seconds: u64::MAX,
    };
    assert_eq!(inbox.store().check_settings(), Err(expected.clone()));
    let refused = Endpoint::new(WebhookConfig::new(SECRET).with_inbox(inbox)).unwrap_err();
    assert_eq!(refused, ConfigError::StoreSettings(expected));
    assert!(
        refused
            .to_string()
            .contains("`SqliteInbox::with_retention`"),
        "{refused}"
    );
}

/// Reproduced in review: a symlinked path started a second set of workers on one inbox file.
/// Its workers now take the file's one lock, so the second endpoint is refused.
#[cfg(unix)]
#[test]
fn a_symlinked_inbox_path_starts_no_second_set_of_workers() {
    use nextgen_events::sqlite::SqliteInbox;
    use nextgen_events::{ConfigError, idempotency::StoreError};

    let file = TempFile::new("symlinked");
    let link = TempFile::new("symlink");
    let first =
        Endpoint::new(WebhookConfig::new(SECRET).with_inbox(SqliteInbox::open(&file.0).unwrap()))
            .unwrap();
    std::os::unix::fs::symlink(&file.0, &link.0).unwrap();
    let refused =
        Endpoint::new(WebhookConfig::new(SECRET).with_inbox(SqliteInbox::open(&link.0).unwrap()))
            .unwrap_err();
    assert!(
        matches!(refused, ConfigError::Workers(StoreError::Locked { .. })),
        "{refused}"
    );
    drop(first);
}
