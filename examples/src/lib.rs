//! What the example binaries share: the local test secret and the default URL. Sample events
//! come from `nextgen_events::testing::sample`; the `nextgen` command (crate `nextgen-cli`)
//! sends them (`nextgen trigger`) and looks into inboxes (`nextgen inbox`).

/// The secret the example server verifies with when `NEXTGEN_WEBHOOK_SECRET` is not set, and
/// `nextgen trigger` signs with by default. For local testing only.
pub const TEST_SECRET: &str = "whsec_test_secret";

/// Where the example server listens by default, and where `nextgen trigger` sends events.
pub const DEFAULT_WEBHOOK_URL: &str = "http://127.0.0.1:8080/webhook";
