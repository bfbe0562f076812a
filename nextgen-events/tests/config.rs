//! `WebhookConfig` settings seen through `receive`: the configured tolerance (not the default)
//! decides which timestamps are accepted, in both directions, against an injected clock; a
//! list of secrets (as `NEXTGEN_WEBHOOK_SECRET` holds it) accepts each of them.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nextgen_events::idempotency::{Claim, DEFAULT_LEASE, MemoryStore};
use nextgen_events::{
    ConfigError, Context, Endpoint, SignatureError, Verifier, WebhookConfig, WebhookError, sign,
};

const SECRET: &str = "whsec_config_tolerance";
/// The configured clock's "now".
const NOW: u64 = 1_713_745_200;

fn body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","created":{NOW},"livemode":false,"data":{{"object":{{"id":"cus_1","object":"customer","balance":0,"created":{NOW}}}}}}}"#
    )
    .into_bytes()
}

/// `receive` of a delivery signed at `timestamp`, with `tolerance` and the clock at `NOW`.
async fn receive_signed_at(
    tolerance: Duration,
    timestamp: u64,
    id: &str,
) -> Result<(), WebhookError> {
    let config = WebhookConfig::new(SECRET)
        .with_tolerance(tolerance)
        .with_clock(|| NOW);
    let body = body(id);
    let header = sign(&body, SECRET, timestamp);
    Endpoint::new(config.clone())
        .unwrap()
        .receive(&body, Some(&header), &Context::new())
        .await
        .map(drop)
}

/// Each tolerance differs from the 300 s default, on both sides of it: a setting that is
/// ignored fails one of them.
const TOLERANCES: [u64; 4] = [0, 10, 299, 1000];

#[actix_rt::test]
async fn the_configured_tolerance_accepts_up_to_n_seconds_either_way() {
    for n in TOLERANCES {
        assert_ne!(Duration::from_secs(n), Verifier::DEFAULT_TOLERANCE);
        for (timestamp, side) in [(NOW - n, "past"), (NOW, "now"), (NOW + n, "future")] {
            let id = format!("evt_tolerance_{n}_accept_{side}");
            let result = receive_signed_at(Duration::from_secs(n), timestamp, &id).await;
            assert!(
                result.is_ok(),
                "tolerance {n} s, signed {side} at {timestamp} (now {NOW}): {result:?}"
            );
        }
    }
}

#[actix_rt::test]
async fn the_configured_tolerance_rejects_n_plus_one_seconds_either_way() {
    for n in TOLERANCES {
        let skew = i64::try_from(n).unwrap() + 1;
        for (timestamp, skew, side) in [(NOW - n - 1, skew, "past"), (NOW + n + 1, -skew, "future")]
        {
            let id = format!("evt_tolerance_{n}_reject_{side}");
            let error = receive_signed_at(Duration::from_secs(n), timestamp, &id)
                .await
                .unwrap_err();
            assert_eq!(error.code(), "timestamp_outside_tolerance", "{error}");
            assert_eq!(error.status(), 400);
            match &error {
                WebhookError::Signature(signature) => assert_eq!(
                    signature,
                    &SignatureError::TimestampOutsideTolerance {
                        timestamp,
                        skew,
                        tolerance: n,
                    },
                    "tolerance {n} s, signed {side}"
                ),
                other => panic!("tolerance {n} s, signed {side}: {other:?}"),
            }
            let message = error.to_string();
            assert!(
                message.contains(&format!("tolerance of {n} s")),
                "{message}"
            );
        }
    }
}

#[actix_rt::test]
async fn without_a_tolerance_setting_the_default_applies() {
    let config = WebhookConfig::new(SECRET).with_clock(|| NOW);
    assert_eq!(config.verifier().tolerance(), Verifier::DEFAULT_TOLERANCE);
    let default = Verifier::DEFAULT_TOLERANCE.as_secs();
    for (timestamp, accepted) in [
        (NOW - default, true),
        (NOW + default, true),
        (NOW - default - 1, false),
        (NOW + default + 1, false),
    ] {
        let body = body(&format!("evt_default_tolerance_{timestamp}"));
        let header = sign(&body, SECRET, timestamp);
        let result = Endpoint::new(config.clone())
            .unwrap()
            .receive(&body, Some(&header), &Context::new())
            .await;
        match (accepted, &result) {
            (true, Ok(_)) => {}
            (false, Err(error)) if error.code() == "timestamp_outside_tolerance" => {}
            _ => panic!("signed at {timestamp} (now {NOW}): {result:?}"),
        }
    }
}

#[actix_rt::test]
async fn a_secret_list_accepts_each_of_its_secrets_and_only_those() {
    // As `NEXTGEN_WEBHOOK_SECRET` holds it during a rotation: spaces around each secret and
    // empty entries are ignored.
    let config = WebhookConfig::from_secret_list(" whsec_list_old , whsec_list_new,, ")
        .unwrap()
        .with_clock(|| NOW);
    assert_eq!(config.secret_count(), 2);
    for (index, secret) in ["whsec_list_old", "whsec_list_new"].into_iter().enumerate() {
        let body = body(&format!("evt_secret_list_{index}"));
        let header = sign(&body, secret, NOW);
        let result = Endpoint::new(config.clone())
            .unwrap()
            .receive(&body, Some(&header), &Context::new())
            .await;
        assert!(result.is_ok(), "signed with {secret}: {result:?}");
    }
    let body = body("evt_secret_list_foreign");
    let header = sign(&body, " whsec_list_old ", NOW);
    let error = Endpoint::new(config.clone())
        .unwrap()
        .receive(&body, Some(&header), &Context::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "signature_mismatch");
}

#[test]
fn a_secret_list_without_a_secret_is_refused_naming_the_variable() {
    for list in ["", "   ", ",", " , ,, "] {
        let error = WebhookConfig::from_secret_list(list).unwrap_err();
        assert_eq!(
            error,
            ConfigError::EmptySecret {
                variable: WebhookConfig::SECRET_ENV
            },
            "{list:?}"
        );
        assert!(
            error.to_string().contains(WebhookConfig::SECRET_ENV),
            "{error}"
        );
    }
}

#[actix_rt::test]
async fn the_configured_store_and_lease_are_the_ones_in_use() {
    let config = WebhookConfig::new(SECRET);
    assert!(
        config.idempotency_store().is_some(),
        "redelivery detection is on by default"
    );
    assert_eq!(config.lease(), DEFAULT_LEASE);

    // `store()` hands out the configured store itself: a claim through it is seen by the store.
    let store = MemoryStore::default();
    let lease = Duration::from_secs(7);
    let config = config
        .with_idempotency_store(store.clone())
        .with_lease(lease);
    assert_eq!(config.lease(), lease);
    let claim = config
        .idempotency_store()
        .unwrap()
        .claim("evt_config_store", "handler", config.lease())
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
    assert_eq!(store.len(), 1);

    assert!(config.without_idempotency().idempotency_store().is_none());
}

#[test]
fn debug_shows_the_settings_and_never_a_secret() {
    // What a start-up log line of the configuration shows.
    let config = WebhookConfig::new("whsec_debug_current_S3cr3t")
        .with_secret("n0prefix_debug_S3cr3t")
        .with_tolerance(Duration::from_secs(42))
        .with_body_limit(12_345)
        .with_body_timeout(Duration::from_secs(9))
        .with_lease(Duration::from_secs(77));
    for debug in [format!("{config:?}"), format!("{config:#?}")] {
        for shown in [
            "WebhookConfig",
            "42s",
            "12345",
            "9s",
            "77s",
            "idempotency: true",
        ] {
            assert!(debug.contains(shown), "{shown:?} missing from {debug}");
        }
        assert!(!debug.contains("S3cr3t"), "a secret is shown: {debug}");
    }
    let debug = format!("{:?}", config.without_idempotency());
    assert!(debug.contains("idempotency: false"), "{debug}");
}
