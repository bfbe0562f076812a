//! Inbox mode over real HTTP with a real SQLite file: the inbox checks every inbox passes
//! (200 after a durable write, one entry per event id, retries on an injected clock, dead
//! letters, replay, pruning), and what the file costs.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod inbox_checks;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use inbox_checks::Setup;
use nextgen_events::inbox::Inbox;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_tests::services::TempFile;

/// A SQLite inbox on a moved clock in a fresh file, and a second connection to the file.
fn sqlite() -> Option<Setup<SqliteInbox>> {
    let file = TempFile::new("inbox");
    let clock = Setup::<SqliteInbox>::clock();
    let reader = Arc::clone(&clock);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap();
    let other = SqliteInbox::open(&file.0).unwrap();
    Some(Setup::new(inbox, other, clock, file))
}

inbox_checks!(sqlite());

/// The README's "how big it grows": bytes per delivery of the example's 1 KiB event.
///
/// ```text
/// cargo test --release -p nextgen-tests --test inbox -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_bytes_per_delivery() {
    let file = TempFile::new("size");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let body = serde_json::json!({
        "id": "evt_0000000000000000000000", "object": "event", "created": 1_713_745_200,
        "livemode": false, "type": "charge.succeeded", "pending_webhooks": 1,
        "data": { "object": { "id": "ch_1J2k3L4m5N6o", "amount": 2000, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded",
            "description": "x".repeat(700) } }
    })
    .to_string();
    let count = 10_000;
    let mut appends = Vec::new();
    for n in 0..count {
        let entry = nextgen_events::inbox::InboxEntry {
            event_id: format!("evt_{n:022}"),
            event_type: "charge.succeeded".to_owned(),
            body: body.clone().into_bytes(),
            signed_at: 1_713_745_200,
            received_at_ms: 1_713_745_200_000 + n,
            signature: Some(nextgen_events::sign(
                body.as_bytes(),
                "whsec_size",
                1_713_745_200,
            )),
        };
        appends.push(inbox.append(entry));
    }
    futures_util::future::join_all(appends).await;
    drop(inbox);
    let size = std::fs::metadata(&file.0).unwrap().len()
        + std::fs::metadata(format!("{}-wal", file.0.display())).map_or(0, |m| m.len());
    println!(
        "{count} deliveries of {} bytes: {size} bytes on disk, {} bytes per delivery",
        body.len(),
        size / count
    );
}
