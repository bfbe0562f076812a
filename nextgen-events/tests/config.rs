//! `WebhookConfig` settings seen through `receive`: the configured tolerance (not the default)
//! decides which timestamps are accepted, in both directions, against an injected clock.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nextgen_events::signature::DEFAULT_TOLERANCE;
use nextgen_events::{Context, SignatureError, WebhookConfig, WebhookError, receive, sign};

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
        .tolerance(tolerance)
        .clock(|| NOW);
    let body = body(id);
    let header = sign(&body, SECRET, timestamp);
    receive(&config, &body, Some(&header), &Context::new())
        .await
        .map(drop)
}

/// Each tolerance differs from the 300 s default, on both sides of it: a setting that is
/// ignored fails one of them.
const TOLERANCES: [u64; 4] = [0, 10, 299, 1000];

#[actix_rt::test]
async fn the_configured_tolerance_accepts_up_to_n_seconds_either_way() {
    for n in TOLERANCES {
        assert_ne!(Duration::from_secs(n), DEFAULT_TOLERANCE);
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
    let config = WebhookConfig::new(SECRET).clock(|| NOW);
    assert_eq!(config.verifier().tolerance_duration(), DEFAULT_TOLERANCE);
    let default = DEFAULT_TOLERANCE.as_secs();
    for (timestamp, accepted) in [
        (NOW - default, true),
        (NOW + default, true),
        (NOW - default - 1, false),
        (NOW + default + 1, false),
    ] {
        let body = body(&format!("evt_default_tolerance_{timestamp}"));
        let header = sign(&body, SECRET, timestamp);
        let result = receive(&config, &body, Some(&header), &Context::new()).await;
        match (accepted, &result) {
            (true, Ok(_)) => {}
            (false, Err(error)) if error.code() == "timestamp_outside_tolerance" => {}
            _ => panic!("signed at {timestamp} (now {NOW}): {result:?}"),
        }
    }
}
