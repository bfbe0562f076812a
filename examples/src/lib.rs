//! What the example binaries share: the local test secret, the default URL, and their
//! failure type. Sample events come from `nextgen_events::testing::sample`.

mod failure;

pub use failure::Failure;

/// The secret the example server verifies with, and the trigger tool signs with, when
/// `NEXTGEN_WEBHOOK_SECRET` is not set. For local testing only.
pub const TEST_SECRET: &str = "whsec_test_secret";

/// Where the example server listens by default, and where the trigger tool sends events.
pub const DEFAULT_WEBHOOK_URL: &str = "http://127.0.0.1:8080/webhook";
