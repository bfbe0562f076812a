//! The bounds every duration setting is held to, shared by the configuration, the retry policy
//! and the stores, so that one number decides what "too long" means.

use std::time::Duration;

/// The longest duration a setting may have: 10 years, far beyond any sensible lease, retention
/// or wait, and short enough that every clock the crate adds it to (`Instant`, Unix
/// milliseconds in an `i64` or a `u64`, Redis's `PX`, SQLite's integers) can hold the sum
/// with room to spare.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
