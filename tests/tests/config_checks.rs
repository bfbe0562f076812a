//! A configuration that contradicts itself is refused before the first delivery, with an
//! error that names the fix, whatever the order of the builder calls: never an endpoint that
//! answers 200 and handles nothing.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nextgen_events::idempotency::MemoryStore;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{ConfigError, Endpoint, WebhookConfig};
use nextgen_tests::services::TempFile;

const SECRET: &str = "whsec_config_checks";

fn inbox(file: &TempFile) -> SqliteInbox {
    SqliteInbox::open(&file.0).unwrap()
}

#[test]
fn an_inbox_without_redelivery_detection_is_refused_in_either_order() {
    let file = TempFile::new("no-idempotency");
    let first = WebhookConfig::new(SECRET)
        .with_inbox(inbox(&file))
        .without_idempotency();
    let second = WebhookConfig::new(SECRET)
        .without_idempotency()
        .with_inbox(inbox(&file));
    for config in [first, second] {
        let refused = config.check().unwrap_err();
        assert_eq!(refused, ConfigError::InboxWithoutRedeliveryDetection);
        assert!(
            refused
                .to_string()
                .contains("remove `without_idempotency()`"),
            "{refused}"
        );
        // Starting the workers is refused the same way: nothing is ever acknowledged that no
        // worker would handle.
        assert_eq!(Endpoint::new(config).unwrap_err(), refused);
    }
}

#[test]
fn an_inbox_with_another_store_is_refused_in_either_order() {
    let file = TempFile::new("other-store");
    let first = WebhookConfig::new(SECRET)
        .with_inbox(inbox(&file))
        .with_idempotency_store(MemoryStore::default());
    let second = WebhookConfig::new(SECRET)
        .with_idempotency_store(MemoryStore::default())
        .with_inbox(inbox(&file));
    for config in [first, second] {
        let refused = config.check().unwrap_err();
        assert_eq!(refused, ConfigError::InboxWithOtherStore);
        assert!(
            refused
                .to_string()
                .contains("remove `with_idempotency_store(..)`"),
            "{refused}"
        );
    }
}

#[test]
fn the_order_of_the_builder_calls_does_not_change_the_store_in_use() {
    let file = TempFile::new("order");
    let store = MemoryStore::default();
    let a = WebhookConfig::new(SECRET)
        .without_idempotency()
        .with_idempotency_store(store.clone())
        .with_lease(Duration::from_secs(9));
    let b = WebhookConfig::new(SECRET)
        .with_lease(Duration::from_secs(9))
        .without_idempotency()
        .with_idempotency_store(store);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    a.check().unwrap();
    b.check().unwrap();

    // With an inbox, the inbox's store is the one in use, set before or after the rest.
    let inbox = inbox(&file);
    let c = WebhookConfig::new(SECRET)
        .with_inbox(inbox.clone())
        .with_lease(Duration::from_secs(9));
    let d = WebhookConfig::new(SECRET)
        .with_lease(Duration::from_secs(9))
        .with_inbox(inbox);
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
    assert!(c.idempotency_store().is_some() && d.idempotency_store().is_some());
}

#[test]
fn durations_no_clock_can_hold_are_refused_with_the_setter_named() {
    let refused = WebhookConfig::new(SECRET)
        .with_lease(Duration::MAX)
        .check()
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ConfigError::DurationTooLong {
                setting: "with_lease",
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("`with_lease`"), "{refused}");
    for (config, setting) in [
        (
            WebhookConfig::new(SECRET).with_body_timeout(Duration::MAX),
            "with_body_timeout",
        ),
        (
            WebhookConfig::new(SECRET).with_tolerance(Duration::MAX),
            "with_tolerance",
        ),
        (
            WebhookConfig::new(SECRET).with_inbox_poll(Duration::MAX),
            "with_inbox_poll",
        ),
        (
            WebhookConfig::new(SECRET).with_inbox_stop_timeout(Duration::MAX),
            "with_inbox_stop_timeout",
        ),
    ] {
        let refused = config.check().unwrap_err();
        assert!(refused.to_string().contains(setting), "{refused}");
    }
    let zero = WebhookConfig::new(SECRET)
        .with_lease(Duration::ZERO)
        .check()
        .unwrap_err();
    assert_eq!(
        zero,
        ConfigError::ZeroDuration {
            setting: "with_lease"
        }
    );
    WebhookConfig::new(SECRET).check().unwrap();
}

#[test]
fn mounting_a_contradictory_configuration_stops_the_app_with_the_fix() {
    let file = TempFile::new("mount");
    let config = WebhookConfig::new(SECRET)
        .with_inbox(inbox(&file))
        .without_idempotency();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = nextgen_events::actix::webhooks("/webhook", config);
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("cannot mount the webhook route at `/webhook`"),
        "{message}"
    );
    assert!(
        message.contains("remove `without_idempotency()`"),
        "{message}"
    );
}

/// A retry policy a worker could not follow, and a store retention its backend cannot hold,
/// are refused before the first delivery, naming the setter.
#[test]
fn a_retry_policy_or_a_store_setting_no_backend_can_hold_is_refused_at_the_endpoint() {
    use nextgen_events::inbox::{RetryPolicy, RetryPolicyError};
    use nextgen_events::sqlite::SqliteStore;

    let nan =
        WebhookConfig::new(SECRET).with_retry_policy(RetryPolicy::default().with_jitter(f64::NAN));
    let refused = Endpoint::new(nan).unwrap_err();
    assert!(
        matches!(
            refused,
            ConfigError::RetryPolicy(RetryPolicyError::Jitter { .. })
        ),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("with_jitter"), "{refused}");
    let huge = RetryPolicy::default()
        .with_first(Duration::MAX)
        .with_max(Duration::MAX);
    let refused = Endpoint::new(WebhookConfig::new(SECRET).with_retry_policy(huge)).unwrap_err();
    assert!(
        matches!(refused, ConfigError::RetryPolicy(_)),
        "{refused:?}"
    );

    let file = TempFile::new("retention");
    let store = SqliteStore::open(&file.0)
        .unwrap()
        .with_retention(Duration::MAX);
    let refused =
        Endpoint::new(WebhookConfig::new(SECRET).with_idempotency_store(store)).unwrap_err();
    assert!(
        matches!(refused, ConfigError::StoreSettings(_)),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("with_retention"), "{refused}");
}
