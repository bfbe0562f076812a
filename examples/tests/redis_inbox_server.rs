//! The example server in inbox mode on Redis (`NEXTGEN_INBOX_REDIS`): the real `server`
//! binary, two replicas on one prefix, and a replica killed with SIGKILL after acknowledging
//! deliveries that the other then handles.
//!
//! Needs the feature `redis-tests` and `NEXTGEN_TEST_REDIS_URL`, like `nextgen-cli/tests/inbox.rs`.
//!
//! ```text
//! NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test -p nextgen-examples --features redis-tests --test redis_inbox_server
//! ```

#![cfg(feature = "redis-tests")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nextgen_events::inbox::{InboxOperator, InboxStats};
use nextgen_events::redis::RedisInbox;
use nextgen_tests::services::redis_url;
use support::{Server, audits, deliver, until_handled};

/// A key prefix no other test or run uses.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("nextgen-server-test:{test}:{}:{nanos}", std::process::id())
}

/// The example server in inbox mode on Redis under `prefix`, with `workers` workers.
fn start(redis: &str, prefix: &str, workers: usize) -> Server {
    let workers = workers.to_string();
    Server::start(&[
        ("NEXTGEN_INBOX_REDIS", redis),
        ("NEXTGEN_INBOX_PREFIX", prefix),
        ("NEXTGEN_INBOX_WORKERS", &workers),
    ])
}

/// The inbox's counts, read through the library.
fn stats(url: &str, prefix: &str) -> InboxStats {
    actix_web::rt::System::new().block_on(async {
        let inbox = RedisInbox::connect_existing(url, prefix)
            .await
            .unwrap()
            .expect("the server created the inbox");
        inbox.stats().await.unwrap()
    })
}

#[test]
fn replicas_share_the_inbox_and_one_killed_after_the_200_loses_nothing() {
    let Some(redis) = redis_url("the example server on a Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    let ids: Vec<String> = (0..30).map(|n| format!("evt_redis_kill_{n:03}")).collect();

    // A replica that only takes deliveries in, killed right after the last 200.
    let intake = start(&redis, &prefix, 0);
    for id in &ids {
        deliver(&intake.url, id);
    }
    let mut lines = intake.kill();
    assert_eq!(stats(&redis, &prefix).pending, 30);

    // Two replicas with workers: everything handled, each handler once; a redelivery to
    // either adds nothing.
    let a = start(&redis, &prefix, 2);
    let b = start(&redis, &prefix, 2);
    until_handled(30, Duration::from_secs(20), || stats(&redis, &prefix));
    for id in &ids[..5] {
        deliver(&a.url, id);
        deliver(&b.url, id);
    }
    std::thread::sleep(Duration::from_millis(300));
    until_handled(30, Duration::from_secs(20), || stats(&redis, &prefix));
    lines.extend(a.kill());
    lines.extend(b.kill());
    let runs = audits(&lines, &ids);
    assert!(runs.values().all(|runs| *runs == 1), "{runs:?}");
}
