//! Each way in reads a delivery's body for its handlers once: the route, `Endpoint::receive`,
//! an extractor's `verify` then `handle`, and in inbox mode the worker (intake reads only the
//! envelope's id and type). One test, alone in its binary, so the process-wide count is its own.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use nextgen_events::actix::webhooks;
use nextgen_events::inbox::{InboxOperator, InboxState};
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::testing::handler_reads;
use nextgen_events::{Endpoint, WebhookConfig};
use nextgen_tests::services::TempFile;
use support::{SECRET, TestServer, delivery, ran, runs};

const HANDLER: &str = "one_read.record";

#[nextgen_event("charge.succeeded", name = "one_read.record")]
async fn record(event: Event<Charge>) {
    ran(&event.id, HANDLER);
}

/// `work`'s count of body reads.
async fn reads<T>(work: impl Future<Output = T>) -> (T, u64) {
    let before = handler_reads();
    let done = work.await;
    (done, handler_reads() - before)
}

#[actix_rt::test]
async fn each_way_in_reads_a_body_for_its_handlers_once() {
    let inline = Endpoint::new(WebhookConfig::new(SECRET)).unwrap();

    let (body, signature) = delivery("evt_read_receive", "charge.succeeded");
    let (taken, counted) = reads(inline.receive(&body, Some(&signature), &Context::new())).await;
    taken.unwrap();
    assert_eq!(counted, 1, "receive");

    let (body, signature) = delivery("evt_read_extractor", "charge.succeeded");
    let (handled, counted) = reads(async {
        let verified = inline.verify(body, Some(&signature)).unwrap();
        inline.handle(&verified, &Context::new()).await
    })
    .await;
    handled.unwrap();
    assert_eq!(counted, 1, "verify, then handle");

    let mounted = inline.clone();
    let server = TestServer::start_with(move |service| {
        webhooks("/webhook", mounted.clone())(service);
    });
    let (body, signature) = delivery("evt_read_route", "charge.succeeded");
    let (answer, counted) = reads(support::post(
        &server.url("/webhook"),
        body,
        Some(&signature),
    ))
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(counted, 1, "the route");

    // Inbox mode: intake reads no payload; the worker reads it once.
    let file = TempFile::new("one-read");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let queued = Endpoint::new(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_workers(0),
    )
    .unwrap();
    let (body, signature) = delivery("evt_read_inbox", "charge.succeeded");
    let (kept, counted) = reads(queued.receive(&body, Some(&signature), &Context::new())).await;
    kept.unwrap();
    assert_eq!(counted, 0, "intake");
    queued.shutdown(Duration::from_secs(5)).await;

    let before = handler_reads();
    let working = Endpoint::new(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_poll(Duration::from_millis(10)),
    )
    .unwrap();
    let started = Instant::now();
    while inbox
        .show("evt_read_inbox", false)
        .await
        .unwrap()
        .unwrap()
        .state
        != InboxState::Handled
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    working.shutdown(Duration::from_secs(5)).await;
    assert_eq!(handler_reads() - before, 1, "the inbox's worker");
    for id in [
        "evt_read_receive",
        "evt_read_extractor",
        "evt_read_route",
        "evt_read_inbox",
    ] {
        assert_eq!(runs(id, HANDLER), 1, "{id}");
    }
}
