//! The inbox's intake, through the real actix route in inbox mode, on a SQLite inbox: what the
//! route stores is what a worker reads back, byte for byte.
//!
//! Each input is a body (arbitrary bytes), signed with the endpoint's secret at the current
//! time and POSTed to `/webhook` of an app mounted with an `Endpoint` in inbox mode and no
//! workers. Then, as a worker would, the target takes from the inbox:
//! - a 200 for an event id never seen before: exactly one entry is due, and it holds the body
//!   byte for byte, the envelope's id and type, the signature's timestamp and a receive time
//!   within the request's; it is finished as handled;
//! - a 200 for an id seen before (a redelivery, with this body or another): nothing is due,
//!   and the entry kept is the first body, unchanged;
//! - any other answer (not an event, not UTF-8, ...): nothing is due, and the body is not an
//!   envelope `RawEvent::parse` accepts, or is not UTF-8.
//!
//! When the input's first byte is below 0x20 (a control character, which no JSON text starts
//! with), it picks one of four event ids and the rest is spliced into an envelope as its
//! `data.object`, so that redeliveries of one id with other bodies come up often; otherwise the
//! whole input is the body.

#![no_main]

#[path = "common/scratch.rs"]
mod scratch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, test};
use libfuzzer_sys::fuzz_target;
use nextgen_events::actix::webhooks;
use nextgen_events::inbox::{Finish, Inbox, InboxOperator};
use nextgen_events::sqlite::{Durability, SqliteInbox};
use nextgen_events::{Endpoint, RawEvent, SignatureHeader, WebhookConfig, sign};

const SECRET: &str = "whsec_fuzz_inbox";
const LEASE: Duration = Duration::from_secs(60);

struct Intake {
    system: actix_rt::SystemRunner,
    inbox: SqliteInbox,
    endpoint: Endpoint,
    /// The first body stored for each event id.
    stored: HashMap<String, Vec<u8>>,
}

thread_local! {
    static INTAKE: RefCell<Intake> = RefCell::new(Intake::new());
}

impl Intake {
    fn new() -> Self {
        let path = scratch::sqlite_path("inbox");
        let system = actix_rt::System::new();
        // Clones share the database.
        let inbox = SqliteInbox::open_with(&path, Durability::Normal)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
        let config = WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_workers(0);
        // One endpoint, mounted in each app the target builds, as a server mounts clones.
        let endpoint = Endpoint::new(config).expect("the fuzz configuration is valid");
        Intake {
            system,
            inbox,
            endpoint,
            stored: HashMap::new(),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn body_from(data: &[u8]) -> Vec<u8> {
    match data.split_first() {
        Some((&selector, object)) if selector < 0x20 => {
            let mut body = format!(
                r#"{{"id":"evt_fuzz_{}","object":"event","created":1713745200,"livemode":false,"type":"charge.succeeded","data":{{"object":"#,
                selector % 4
            )
            .into_bytes();
            body.extend_from_slice(object);
            body.extend_from_slice(b"}}");
            body
        }
        _ => data.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let body = body_from(data);
    INTAKE.with_borrow_mut(|intake| {
        let Intake {
            system,
            inbox,
            endpoint,
            stored,
        } = intake;
        system.block_on(async {
            let app =
                test::init_service(App::new().configure(webhooks("/webhook", endpoint.clone())))
                    .await;
            let signed_at = now_secs();
            let header = sign(&body, SECRET, signed_at);
            let before_ms = inbox.now_ms();
            let request = test::TestRequest::post()
                .uri("/webhook")
                .insert_header((SignatureHeader::NAME, header))
                .insert_header(("Content-Type", "application/json"))
                .set_payload(body.clone())
                .to_request();
            let status = test::call_service(&app, request).await.status();
            let after_ms = inbox.now_ms();
            let taken = inbox
                .take(LEASE)
                .await
                .unwrap_or_else(|error| panic!("take failed: {error}"));

            if !status.is_success() {
                assert!(
                    taken.is_none(),
                    "answered {status}, yet the inbox holds a new entry"
                );
                let parsed = std::str::from_utf8(&body).is_ok() && RawEvent::parse(&body).is_ok();
                // A body that is an envelope and text is only refused for a reason of its own.
                assert!(
                    !parsed || status.as_u16() == 413,
                    "an envelope was answered {status}"
                );
                return;
            }
            assert_eq!(status.as_u16(), 200);
            let raw = RawEvent::parse(&body)
                .unwrap_or_else(|error| panic!("200 for a body that is no envelope: {error}"));
            match stored.get(&raw.id) {
                None => {
                    let taken = taken.unwrap_or_else(|| {
                        panic!("200 for the new event {:?}, nothing to take", raw.id)
                    });
                    let entry = &taken.entry;
                    assert_eq!(entry.body, body, "the stored body is not the one received");
                    assert_eq!(entry.event_id, raw.id);
                    assert_eq!(entry.event_type, raw.event_type);
                    assert_eq!(entry.signed_at, signed_at);
                    assert!(
                        (before_ms..=after_ms).contains(&entry.received_at_ms),
                        "received at {} ms, outside the request's {before_ms}..={after_ms}",
                        entry.received_at_ms
                    );
                    assert_eq!(taken.attempts, 1);
                    assert_eq!(taken.first_failed_at_ms, None);
                    let finished = inbox
                        .finish(&entry.event_id, taken.token, Finish::Handled)
                        .await
                        .unwrap_or_else(|error| panic!("finish failed: {error}"));
                    assert!(finished, "the lease just taken was not held");
                    stored.insert(raw.id.clone(), body.clone());
                }
                Some(first) => {
                    assert!(
                        taken.is_none(),
                        "a redelivery of {:?} made a second entry",
                        raw.id
                    );
                    let record = inbox
                        .show(&raw.id, true)
                        .await
                        .unwrap_or_else(|error| panic!("show failed: {error}"))
                        .unwrap_or_else(|| panic!("the entry of {:?} is gone", raw.id));
                    assert_eq!(
                        record.body.as_deref().map(str::as_bytes),
                        Some(first.as_slice()),
                        "a redelivery changed the stored body of {:?}",
                        raw.id
                    );
                }
            }
        });
    });
});
