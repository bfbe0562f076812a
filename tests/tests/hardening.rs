//! Issue 20's hardening, end to end: blank secrets refused, a store's far-future durations and
//! a panicking dispatch, queued deliveries re-checked against their body, and the budget for
//! unverified bodies in flight.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore};
use nextgen_events::prelude::*;
use nextgen_events::{
    ConfigError, Context, Endpoint, VerifiedDelivery, Verifier, WebhookConfig, sign,
};
use support::{Framework, SECRET, TestServer, delivery, now, post};

static CHARGES: AtomicUsize = AtomicUsize::new(0);

#[nextgen_event("charge.succeeded")]
async fn on_charge(_charge: Charge) {
    CHARGES.fetch_add(1, Ordering::SeqCst);
}

/// A blank secret never reaches a route: no endpoint is built with one, so neither the
/// mounted route nor an extractor (which needs an `Endpoint`) can verify with it.
#[test]
fn blank_secrets_get_no_endpoint_and_no_route() {
    for (position, config) in [
        (1, WebhookConfig::new("")),
        (1, WebhookConfig::new("  \t")),
        (2, WebhookConfig::new(SECRET).with_secret("")),
    ] {
        let refused = Endpoint::new(config.clone()).unwrap_err();
        assert_eq!(refused, ConfigError::BlankSecret { position });
        assert!(refused.to_string().contains("whsec_"), "{refused}");
        let mounted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            nextgen_events::actix::webhooks("/webhook", config.clone())
        }));
        let panic = mounted.err().expect("a blank secret is refused at mount");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("cannot mount the webhook route at `/webhook`")
                && message.contains(&refused.to_string()),
            "{message}"
        );
    }
}

#[test]
fn blank_secrets_are_refused_by_every_constructor() {
    let body = br#"{"id":"evt_1"}"#;
    let header = sign(body, "", 1_000);
    let error = Verifier::new("")
        .verify_at(body, &header, 1_000)
        .unwrap_err();
    assert_eq!(error.code(), "secret_blank");
    assert!(
        error.to_string().contains("NEXTGEN_WEBHOOK_SECRET"),
        "{error}"
    );
    let error = Verifier::new("whsec_a")
        .with_secret(" ")
        .verify_at(body, &header, 1_000)
        .unwrap_err();
    assert_eq!(error.code(), "secret_blank");
    // Counted from 1, as the configuration lists them.
    assert_eq!(
        error,
        nextgen_events::SignatureError::BlankSecret { position: 2 }
    );
    assert!(Verifier::new("whsec_a").check().is_ok());

    assert_eq!(
        WebhookConfig::new("").check(),
        Err(ConfigError::BlankSecret { position: 1 })
    );
    assert_eq!(
        WebhookConfig::new("whsec_a").with_secret("\n").check(),
        Err(ConfigError::BlankSecret { position: 2 })
    );
    let error = WebhookConfig::new(" ").check().unwrap_err().to_string();
    assert!(
        error.contains("whsec_") && error.contains("NEXTGEN_WEBHOOK_SECRET"),
        "{error}"
    );
    assert!(WebhookConfig::new(SECRET).check().is_ok());
    // Only blank entries of a list are dropped; a list of nothing is refused.
    assert!(WebhookConfig::from_secret_list(" , ,").is_err());
    assert_eq!(
        WebhookConfig::from_secret_list("whsec_a, ,")
            .unwrap()
            .secret_count(),
        1
    );
}

#[test]
fn mounting_with_a_blank_secret_stops_at_start_up() {
    let mounted = std::panic::catch_unwind(|| {
        let _ = nextgen_events::actix::webhooks("/webhook", WebhookConfig::new(""));
    });
    let panic = mounted.unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("empty or only whitespace"), "{message}");
}

// --- item 7: far-future durations, a panicking dispatch ------------------------------------

#[actix_rt::test]
async fn a_huge_retention_or_lease_saturates_instead_of_panicking() {
    // Over HTTP: a store whose retention no clock can add still answers and keeps its marker.
    let config =
        WebhookConfig::new(SECRET).with_idempotency_store(MemoryStore::new(Duration::MAX, 100));
    let server = TestServer::start(config, |_| {});
    let id = "evt_huge_retention";
    let (body, signature) = delivery(id, "charge.succeeded");
    let before = CHARGES.load(Ordering::SeqCst);
    let answer = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(CHARGES.load(Ordering::SeqCst) > before);
    // The marker holds: a redelivery is acknowledged without running the handler again.
    let again = CHARGES.load(Ordering::SeqCst);
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(CHARGES.load(Ordering::SeqCst), again);

    // Such a lease is refused when the configuration is checked (at mount)...
    let refused = WebhookConfig::new(SECRET)
        .with_lease(Duration::MAX)
        .check()
        .unwrap_err();
    assert!(refused.to_string().contains("with_lease"), "{refused}");
    // ...and the store itself, handed one directly, saturates instead of panicking.
    let store = MemoryStore::default();
    let Claim::Claimed(token) = store
        .claim("evt_huge_lease", "handler", Duration::MAX)
        .await
        .unwrap()
    else {
        panic!("a fresh claim")
    };
    assert!(
        store
            .renew("evt_huge_lease", "handler", token, Duration::MAX)
            .await
            .unwrap()
    );
    assert!(
        store
            .complete("evt_huge_lease", "handler", token)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim("evt_huge_lease", "handler", Duration::MAX)
            .await
            .unwrap(),
        Claim::AlreadyDone
    );
}

/// A store that panics while claiming: inside the detached dispatch task, outside any handler.
struct Panicking;

mod panicking_store {
    use std::time::Duration;

    use nextgen_events::idempotency::{Claim, IdempotencyStore, OwnerToken, StoreFuture};

    fn boom<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
        Box::pin(async { panic!("the store blew up on purpose") })
    }

    impl IdempotencyStore for super::Panicking {
        fn claim<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, Claim> {
            boom()
        }
        fn renew<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: OwnerToken,
            _: Duration,
        ) -> StoreFuture<'a, bool> {
            boom()
        }
        fn complete<'a>(&'a self, _: &'a str, _: &'a str, _: OwnerToken) -> StoreFuture<'a, bool> {
            boom()
        }
        fn release<'a>(&'a self, _: &'a str, _: &'a str, _: OwnerToken) -> StoreFuture<'a, bool> {
            boom()
        }
    }
}

#[actix_rt::test]
async fn a_panicking_dispatch_is_a_500_dispatch_panicked_not_a_shutdown() {
    let frameworks = [
        Framework::Actix,
        #[cfg(feature = "axum")]
        Framework::Axum,
    ];
    for framework in frameworks {
        let server = framework.start(WebhookConfig::new(SECRET).with_idempotency_store(Panicking));
        let (body, signature) = delivery(&framework.id("evt_dispatch_panics"), "charge.succeeded");
        let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (500, "dispatch_panicked"),
            "{framework:?}: {:?}",
            answer.body
        );
        // The server keeps serving.
        let answer = post(&server.url("/webhook"), b"{}".to_vec(), None).await;
        assert_eq!(answer.status, 400);
    }
}

// --- item 10: a queued delivery is checked against its body --------------------------------

#[actix_rt::test]
async fn a_queued_delivery_whose_id_or_type_do_not_match_its_body_is_refused() {
    let endpoint = Endpoint::new(WebhookConfig::new(SECRET).without_idempotency()).unwrap();
    let (body, signature) = delivery("evt_queued_real", "charge.succeeded");
    let genuine = endpoint.verify(body, Some(&signature)).unwrap();
    let queued = serde_json::to_value(&genuine).unwrap();

    for (field, value) in [
        ("event_id", "evt_queued_other"),
        ("event_type", "refund.created"),
    ] {
        let mut tampered = queued.clone();
        tampered[field] = serde_json::Value::String(value.to_owned());
        let tampered: VerifiedDelivery = serde_json::from_value(tampered).unwrap();
        let before = CHARGES.load(Ordering::SeqCst);
        let error = endpoint
            .handle(&tampered, &Context::new())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "delivery_mismatch", "{field}: {error}");
        assert!(error.to_string().contains(field), "{error}");
        assert_eq!(
            CHARGES.load(Ordering::SeqCst),
            before,
            "{field}: no handler ran"
        );
    }
    // The genuine one, through the queue, still runs.
    let later: VerifiedDelivery = serde_json::from_value(queued).unwrap();
    let taken = endpoint.handle(&later, &Context::new()).await.unwrap();
    assert_eq!(taken.event_id(), "evt_queued_real");
    assert!(taken.report().is_some(), "handled now: {taken:?}");
}

/// A `VerifiedDelivery` that came back from a queue or a file is verified again on the way in
/// (issue 31, item 6), at the time it was verified first: a body changed after it was
/// verified, a timestamp moved, a delivery kept without its header or signed with a secret the
/// endpoint does not have are refused, inline as in inbox mode, and no handler runs.
#[actix_rt::test]
async fn a_queued_delivery_is_verified_again_on_the_way_in() {
    let endpoint = Endpoint::new(WebhookConfig::new(SECRET).without_idempotency()).unwrap();
    let (body, signature) = delivery("evt_requeued", "charge.succeeded");
    let genuine = endpoint.verify(body, Some(&signature)).unwrap();
    let queued = serde_json::to_value(&genuine).unwrap();
    let refused = |tampered: serde_json::Value| {
        let endpoint = endpoint.clone();
        async move {
            let tampered: VerifiedDelivery = serde_json::from_value(tampered).unwrap();
            let before = CHARGES.load(Ordering::SeqCst);
            let error = endpoint
                .handle(&tampered, &Context::new())
                .await
                .unwrap_err();
            assert_eq!(
                CHARGES.load(Ordering::SeqCst),
                before,
                "{error}: a handler ran"
            );
            error
        }
    };

    // The body changed after verification, its id and type kept.
    let mut changed = queued.clone();
    let text = changed["body"]
        .as_str()
        .unwrap()
        .replace("\"amount\":", "\"amount\": ");
    changed["body"] = serde_json::Value::String(text);
    assert_eq!(refused(changed).await.code(), "signature_mismatch");

    // The timestamp moved (say, to pass a replay window later).
    let mut moved = queued.clone();
    moved["timestamp"] = serde_json::json!(genuine.timestamp + 3600);
    let error = refused(moved).await;
    assert!(
        error.code() == "delivery_mismatch" || error.code().starts_with("timestamp"),
        "{error}"
    );

    // Kept without its header: it cannot be verified, so it is not taken.
    let mut unsigned = queued.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    assert_eq!(refused(unsigned).await.code(), "unsigned_delivery");

    // Signed with a secret this endpoint does not have.
    let other = Endpoint::new(WebhookConfig::new("whsec_another_account")).unwrap();
    let error = other.handle(&genuine, &Context::new()).await.unwrap_err();
    assert_eq!(error.code(), "signature_mismatch");

    // The genuine one still runs.
    endpoint.handle(&genuine, &Context::new()).await.unwrap();
}

// --- item 12: a budget for unverified bodies in flight -------------------------------------

#[actix_rt::test]
async fn unverified_bodies_in_flight_share_a_bounded_budget() {
    use std::io::Write;

    let frameworks = [
        Framework::Actix,
        #[cfg(feature = "axum")]
        Framework::Axum,
    ];
    for framework in frameworks {
        let config = WebhookConfig::new(SECRET).with_unverified_body_budget(20_000);
        assert_eq!(config.unverified_body_budget(), 20_000);
        let server = framework.start(config);
        // A sender with a well-formed signature header that is slow to send its body holds
        // most of the budget...
        let header = sign(b"never sent", SECRET, now());
        let head = format!(
            "POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: 30000\r\nnextgen-signature: {header}\r\n\r\n"
        );
        let mut slow = support::raw(server.addr, &head, &[b' '; 19_500]);
        slow.flush().unwrap();

        // ...so another unverified body is refused, with when to come back, once the server
        // has read the slow one's bytes (asked again until then, each time a new event).
        let started = Instant::now();
        for probe in 0.. {
            let id = framework.id(&format!("evt_budget_probe_{probe}"));
            let (body, signature) = delivery(&id, "charge.succeeded");
            let response = reqwest::Client::new()
                .post(server.url("/webhook"))
                .header("NextGen-Signature", &signature)
                .body(body)
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            let answer = support::answer(response).await;
            if answer.status == 200 && started.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(
                (answer.status, answer.code()),
                (503, "unverified_body_budget_spent"),
                "{framework:?}: {:?}",
                answer.body
            );
            assert!(retry_after.is_some(), "{framework:?}: Retry-After");
            break;
        }

        // Once the slow sender is gone, its share is free again (as soon as the server has
        // seen it go).
        drop(slow);
        let (body, signature) = delivery(&framework.id("evt_budget"), "charge.succeeded");
        let started = Instant::now();
        loop {
            let answer = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
            if answer.status == 503 && started.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(answer.status, 200, "{framework:?}: {:?}", answer.body);
            break;
        }
    }
}

#[test]
fn the_unverified_body_budget_defaults_to_64_mib() {
    assert_eq!(
        WebhookConfig::new(SECRET).unverified_body_budget(),
        WebhookConfig::DEFAULT_UNVERIFIED_BODY_BUDGET
    );
    assert_eq!(
        WebhookConfig::DEFAULT_UNVERIFIED_BODY_BUDGET,
        64 * 1024 * 1024
    );
}

/// `NEXTGEN_WEBHOOK_SECRET` has one reading: `WebhookConfig::from_secret_list` (the server) and
/// `Secret::split_list` (the `nextgen` tool) find the same secrets in every list.
#[test]
fn the_secret_list_has_one_reading() {
    use nextgen_events::Secret;
    for list in [
        "whsec_a",
        " whsec_a , whsec_b ",
        "whsec_a,,whsec_b,",
        "\twhsec_a\n,whsec_b",
        "whsec_a b,whsec_c",
    ] {
        let config = WebhookConfig::from_secret_list(list).unwrap();
        let server: Vec<&[u8]> = config
            .verifier()
            .secrets()
            .iter()
            .map(Secret::expose)
            .collect();
        let tool: Vec<&[u8]> = Secret::split_list(list).map(str::as_bytes).collect();
        assert_eq!(server, tool, "{list:?}");
    }
    assert_eq!(Secret::split_list(" , ,").count(), 0);
}
