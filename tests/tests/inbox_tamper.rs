//! Nothing in the inbox runs unless it verifies: a worker verifies each entry again, with the
//! signature header it was kept with, against the configured secrets, before it dispatches it.
//! Rows written into a real SQLite file by hand (or into a real Redis, with `--features redis`)
//! become dead letters that say why, and their handlers never run.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nextgen_events::inbox::{Inbox, InboxEntry, InboxOperator, InboxRecord, InboxState};
use nextgen_events::prelude::*;
use nextgen_events::sign;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{Endpoint, WebhookConfig};
use nextgen_tests::services::TempFile;

const SECRET: &str = "whsec_tamper_test";

/// The amounts booked, per event id.
static BOOKED: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());

#[nextgen_event("charge.succeeded", name = "tamper.book")]
async fn book(charge: Event<Charge>) {
    BOOKED
        .lock()
        .unwrap()
        .push((charge.id.clone(), charge.data.object.amount));
}

fn booked(id: &str) -> Vec<i64> {
    BOOKED
        .lock()
        .unwrap()
        .iter()
        .filter(|(booked, _)| booked == id)
        .map(|(_, amount)| *amount)
        .collect()
}

fn body(id: &str, amount: i64) -> String {
    serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": "charge.succeeded",
        "data": { "object": { "id": "ch_1", "amount": amount, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string()
}

/// An entry as the route keeps it: signed with `secret` at `signed_at`.
fn signed(id: &str, amount: i64, secret: &str, signed_at: u64) -> InboxEntry {
    let body = body(id, amount);
    InboxEntry {
        event_id: id.to_owned(),
        event_type: "charge.succeeded".to_owned(),
        signature: Some(sign(body.as_bytes(), secret, signed_at)),
        body: body.into_bytes(),
        signed_at,
        received_at_ms: signed_at * 1000,
    }
}

fn config(inbox: impl Inbox) -> WebhookConfig {
    WebhookConfig::new(SECRET)
        .with_inbox(inbox)
        .with_inbox_workers(1)
        .with_inbox_poll(Duration::from_millis(10))
}

async fn settled<I: Inbox + InboxOperator>(inbox: &I, id: &str) -> InboxRecord {
    let started = Instant::now();
    loop {
        let record = inbox.show(id, false).await.unwrap().unwrap();
        if matches!(record.state, InboxState::Handled | InboxState::Dead) {
            return record;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{record:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_dead_unverified(record: &InboxRecord, says: &str) {
    assert_eq!(record.state, InboxState::Dead, "{record:?}");
    assert_eq!(record.last_errors.len(), 1, "{record:?}");
    assert_eq!(record.last_errors[0].handler, "(signature)", "{record:?}");
    assert!(record.last_errors[0].error.contains(says), "{record:?}");
    assert!(
        booked(&record.event_id).is_empty(),
        "never dispatched: {record:?}"
    );
}

#[actix_rt::test]
async fn sqlite_rows_written_by_hand_become_dead_letters_and_never_run() {
    let file = TempFile::new("tamper");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let now = 1_713_745_200;
    // The genuine one, kept as the route keeps it, runs.
    inbox
        .append(signed("evt_genuine", 2000, SECRET, now))
        .await
        .unwrap();
    // Signed with another secret.
    inbox
        .append(signed("evt_other_secret", 2000, "whsec_attacker", now))
        .await
        .unwrap();
    // Genuine, then its body changed in the file.
    inbox
        .append(signed("evt_altered", 2000, SECRET, now))
        .await
        .unwrap();
    // Genuine, then its verified time changed in the file.
    inbox
        .append(signed("evt_moved", 2000, SECRET, now))
        .await
        .unwrap();
    {
        let connection = rusqlite::Connection::open(&file.0).unwrap();
        // The review's reproduction: a row with no signature, signed_at 0, a large amount.
        connection
            .execute(
                "INSERT INTO nextgen_inbox (event_id, event_type, body, signed_at, received_at_ms, state, due_at_ms) VALUES ('evt_by_hand', 'charge.succeeded', ?1, 0, 0, 'pending', 0)",
                [body("evt_by_hand", 99_999_999).into_bytes()],
            )
            .unwrap();
        connection
            .execute(
                "UPDATE nextgen_inbox SET body = ?1 WHERE event_id = 'evt_altered'",
                [body("evt_altered", 99_999_999).into_bytes()],
            )
            .unwrap();
        connection
            .execute(
                "UPDATE nextgen_inbox SET signed_at = signed_at + 100 WHERE event_id = 'evt_moved'",
                [],
            )
            .unwrap();
    }
    let config = config(inbox.clone());
    let config = Endpoint::new(config).unwrap();

    let genuine = settled(&inbox, "evt_genuine").await;
    assert_eq!(genuine.state, InboxState::Handled, "{genuine:?}");
    assert_eq!(booked("evt_genuine"), [2000]);
    assert_dead_unverified(
        &settled(&inbox, "evt_by_hand").await,
        "without its signature header",
    );
    assert_dead_unverified(&settled(&inbox, "evt_other_secret").await, "old secret");
    assert_dead_unverified(&settled(&inbox, "evt_altered").await, "old secret");
    assert_dead_unverified(
        &settled(&inbox, "evt_moved").await,
        "changed after it was kept",
    );

    // A replay puts it back, and it is refused again: replay is no way around the check.
    let replayed = inbox.replay(&["evt_by_hand".to_owned()]).await.unwrap();
    assert_eq!(replayed, ["evt_by_hand"]);
    let again = settled(&inbox, "evt_by_hand").await;
    assert_dead_unverified(&again, "without its signature header");
    drop(config);
}

#[actix_rt::test]
async fn a_rotated_secret_still_verifies_while_the_old_one_is_configured() {
    let file = TempFile::new("rotation");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    inbox
        .append(signed("evt_old_secret", 700, "whsec_old", 1_713_745_200))
        .await
        .unwrap();
    let config = config(inbox.clone()).with_secret("whsec_old");
    let config = Endpoint::new(config).unwrap();
    let record = settled(&inbox, "evt_old_secret").await;
    assert_eq!(record.state, InboxState::Handled, "{record:?}");
    assert_eq!(booked("evt_old_secret"), [700]);
    drop(config);
}

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis_entries_written_by_hand_become_dead_letters_and_never_run() {
    use nextgen_events::redis::RedisInbox;
    use nextgen_tests::services::{redis_url, unique_prefix};

    let Some(url) = redis_url("unverified entries in the Redis inbox") else {
        return;
    };
    let inbox = RedisInbox::connect(&url, unique_prefix("tamper"))
        .await
        .unwrap();
    let now = 1_713_745_200;
    inbox
        .append(signed("evt_redis_genuine", 1500, SECRET, now))
        .await
        .unwrap();
    // What anyone who reaches a Redis without AUTH could append.
    let mut forged = signed("evt_redis_forged", 99_999_999, "whsec_attacker", now);
    inbox.append(forged.clone()).await.unwrap();
    forged.event_id = "evt_redis_unsigned".to_owned();
    forged.body = body("evt_redis_unsigned", 99_999_999).into_bytes();
    forged.signature = None;
    inbox.append(forged).await.unwrap();

    let config = config(inbox.clone());
    let config = Endpoint::new(config).unwrap();
    let genuine = settled(&inbox, "evt_redis_genuine").await;
    assert_eq!(genuine.state, InboxState::Handled, "{genuine:?}");
    assert_eq!(booked("evt_redis_genuine"), [1500]);
    assert_dead_unverified(&settled(&inbox, "evt_redis_forged").await, "old secret");
    assert_dead_unverified(
        &settled(&inbox, "evt_redis_unsigned").await,
        "without its signature header",
    );
    drop(config);
}

/// The dead letter's reason, as the row keeps it.
fn unreadable_reason(errors: &str, field: &str) {
    assert!(errors.contains("(inbox entry)"), "{errors}");
    assert!(
        errors.contains(&format!("`{field}` cannot be read")),
        "{errors}"
    );
    assert!(errors.contains("replay it"), "{errors}");
}

/// A row whose columns no longer read as an entry (changed by hand, or by a broken tool) is
/// made a dead letter naming the column by the take that meets it, and never taken again; the
/// entry behind it is taken as usual. It was marked running by the take, whose reading then
/// failed, and taken again after every lease, forever.
#[actix_rt::test]
async fn a_sqlite_row_that_cannot_be_read_becomes_a_dead_letter_naming_the_column() {
    let file = TempFile::new("unreadable");
    let inbox = SqliteInbox::open_with_clock(&file.0, || 1_713_745_200_000).unwrap();
    let now = 1_713_745_200;
    let broken = [
        (
            "evt_text_signed_at",
            "UPDATE nextgen_inbox SET signed_at = 'abc' WHERE event_id = ?1",
            "signed_at",
        ),
        (
            "evt_negative_received",
            "UPDATE nextgen_inbox SET received_at_ms = -5 WHERE event_id = ?1",
            "received_at_ms",
        ),
        (
            "evt_blob_type",
            "UPDATE nextgen_inbox SET event_type = X'FF1B' WHERE event_id = ?1",
            "event_type",
        ),
        (
            "evt_text_failed",
            "UPDATE nextgen_inbox SET first_failed_at_ms = 'yesterday' WHERE event_id = ?1",
            "first_failed_at_ms",
        ),
    ];
    for (n, (id, _, _)) in broken.iter().enumerate() {
        let mut entry = signed(id, 2000, SECRET, now);
        entry.received_at_ms = 1_000 + n as u64;
        inbox.append(entry).await.unwrap();
    }
    let mut good = signed("evt_after_the_broken", 2000, SECRET, now);
    good.received_at_ms = 10_000;
    inbox.append(good).await.unwrap();
    let connection = rusqlite::Connection::open(&file.0).unwrap();
    for (id, update, _) in &broken {
        connection.execute(update, [id]).unwrap();
    }

    let taken = inbox.take(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        taken.map(|taken| taken.entry.event_id).as_deref(),
        Some("evt_after_the_broken")
    );
    for (id, _, field) in &broken {
        let (state, errors): (String, String) = connection
            .query_row(
                "SELECT state, last_errors FROM nextgen_inbox WHERE event_id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(state, "dead", "{id}");
        unreadable_reason(&errors, field);
    }
    // Nothing is taken again: the dead letters wait for an operator.
    assert_eq!(inbox.take(Duration::from_secs(60)).await.unwrap(), None);
    assert_eq!(inbox.stats().await.unwrap().dead, broken.len() as u64);
}

/// The Redis inbox's entry hash with a field that does not read (a `signed_at` that is not a
/// number, an attempts count `HINCRBY` cannot add to, a `received_at_ms` that is no score):
/// a dead letter naming the field, never taken again. It was marked running, failed to
/// convert, and was taken over after every lease with its attempts growing without end.
#[cfg(feature = "redis")]
#[actix_rt::test]
async fn a_redis_entry_with_a_bad_field_becomes_a_dead_letter_naming_it() {
    use nextgen_events::redis::RedisInbox;
    use nextgen_tests::services::{redis_url, unique_prefix};

    let Some(url) = redis_url("unreadable entries in the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("unreadable");
    let inbox = RedisInbox::connect(&url, prefix.clone())
        .await
        .unwrap()
        .with_clock(|| 1_713_745_200_000);
    let now = 1_713_745_200;
    let broken = [
        ("evt_redis_text_signed_at", "signed_at", "abc"),
        ("evt_redis_bad_attempts", "attempts", "many"),
        ("evt_redis_bad_received", "received_at_ms", "soon"),
        ("evt_redis_bad_failed", "first_failed_at_ms", "-1"),
    ];
    for (n, (id, _, _)) in broken.iter().enumerate() {
        let mut entry = signed(id, 2000, SECRET, now);
        entry.received_at_ms = 1_000 + n as u64;
        inbox.append(entry).await.unwrap();
    }
    let mut good = signed("evt_redis_after_the_broken", 2000, SECRET, now);
    good.received_at_ms = 10_000;
    inbox.append(good).await.unwrap();
    let mut redis = inbox.connection().clone();
    let entry_key = |id: &str| format!("{prefix}:inbox:entry:{id}");
    for (id, field, value) in &broken {
        let () = redis::cmd("HSET")
            .arg(entry_key(id))
            .arg(field)
            .arg(value)
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    let taken = inbox.take(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        taken.map(|taken| taken.entry.event_id).as_deref(),
        Some("evt_redis_after_the_broken")
    );
    for (id, field, _) in &broken {
        let (state, errors): (String, String) = redis::cmd("HMGET")
            .arg(entry_key(id))
            .arg("state")
            .arg("last_errors")
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(state, "dead", "{id}");
        unreadable_reason(&errors, field);
    }
    assert_eq!(inbox.take(Duration::from_secs(60)).await.unwrap(), None);
    assert_eq!(inbox.stats().await.unwrap().dead, broken.len() as u64);
}
