//! Stopping an endpoint: from the moment `shutdown` begins, intake answers 503 with
//! `Retry-After` and writes nothing (inbox and inline mode, real HTTP); an inbox's workers
//! belong to an `Endpoint`, so a bare configuration in inbox mode is refused at mount.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use nextgen_events::actix::webhooks;
use nextgen_events::inbox::InboxOperator;
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{ConfigError, Endpoint, WebhookConfig, WebhookError};
use nextgen_tests::services::TempFile;
use support::{SECRET, TestServer, delivery, ran, runs};

const HANDLER: &str = "shutdown.record";

#[nextgen_event("charge.succeeded", name = "shutdown.record")]
async fn record(event: Event<Charge>) {
    ran(&event.id, HANDLER);
}

#[actix_rt::test]
async fn intake_after_shutdown_began_answers_503_with_retry_after_and_writes_nothing() {
    for inbox_mode in [true, false] {
        let file = TempFile::new("stopping");
        let inbox = SqliteInbox::open(&file.0).unwrap();
        let config = WebhookConfig::new(SECRET);
        let config = match inbox_mode {
            true => config.with_inbox(inbox.clone()).with_inbox_workers(1),
            false => config,
        };
        let endpoint = Endpoint::new(config).unwrap();
        let mounted = endpoint.clone();
        let server = TestServer::start_with(move |service| {
            webhooks("/webhook", mounted.clone())(service);
        });
        let client = reqwest::Client::new();
        let post = |id: &str| {
            let (body, signature) = delivery(id, "charge.succeeded");
            client
                .post(server.url("/webhook"))
                .header("NextGen-Signature", signature)
                .body(body)
                .send()
        };
        let before = format!("evt_before_stop_{inbox_mode}");
        assert_eq!(post(&before).await.unwrap().status(), 200);

        let report = endpoint.shutdown(Duration::from_secs(10)).await;
        assert!(report.is_clean(), "{report:?}");
        let health = endpoint.health();
        assert!(health.stopping && !health.is_ready(), "{health:?}");

        let after = format!("evt_after_stop_{inbox_mode}");
        let response = post(&after).await.unwrap();
        assert_eq!(response.status(), 503, "inbox mode {inbox_mode}");
        assert_eq!(
            response.headers()["retry-after"].to_str().unwrap(),
            "10",
            "inbox mode {inbox_mode}"
        );
        let answer = support::answer(response).await;
        assert_eq!(answer.code(), "shutting_down");
        assert!(
            answer.message().contains("delivered again"),
            "{}",
            answer.message()
        );
        let (body, signature) = delivery(&after, "charge.succeeded");
        let received = endpoint
            .receive(&body, Some(&signature), &Context::new())
            .await;
        assert_eq!(received.unwrap_err(), WebhookError::ShuttingDown);

        // Nothing of the refused delivery was written or run.
        if inbox_mode {
            assert!(inbox.show(&after, false).await.unwrap().is_none());
            assert!(inbox.show(&before, false).await.unwrap().is_some());
        } else {
            assert_eq!(runs(&before, HANDLER), 1);
        }
        assert_eq!(runs(&after, HANDLER), 0);
    }
}

#[test]
fn a_configuration_in_inbox_mode_is_mounted_only_as_an_endpoint() {
    let file = TempFile::new("mount-inbox");
    let config = WebhookConfig::new(SECRET).with_inbox(SqliteInbox::open(&file.0).unwrap());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = webhooks("/webhook", config.clone());
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains(&ConfigError::InboxNeedsEndpoint.to_string()),
        "{message}"
    );
    assert!(message.contains("Endpoint::new(config)"), "{message}");
    assert!(message.contains("shutdown"), "{message}");
    // The configuration itself started nothing: the endpoint's workers take the file's lock.
    let endpoint = Endpoint::new(config).unwrap();
    assert_eq!(endpoint.health().workers_alive, 2);
}
