//! When a failed delivery is tried again, and when the inbox gives up on it.

use std::time::Duration;

use super::{Finish, HandlerFailure};

/// Exponential backoff with jitter, then a dead letter.
///
/// The defaults follow NextGen's own retries: 30 s after the first failure, doubling, at most
/// 1 h apart, and given up 3 days after the first failure. Each wait is lengthened by a random
/// part of up to `jitter` of it, so that deliveries that failed together do not come back
/// together.
///
/// ```
/// use std::time::Duration;
/// use nextgen_events::inbox::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_jitter(0.0);
/// assert_eq!(policy.delay(1), Duration::from_secs(30));
/// assert_eq!(policy.delay(2), Duration::from_secs(60));
/// assert_eq!(policy.delay(20), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    first: Duration,
    factor: u32,
    max: Duration,
    give_up_after: Duration,
    jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(30),
            factor: 2,
            max: Duration::from_secs(60 * 60),
            give_up_after: Duration::from_secs(3 * 24 * 60 * 60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The wait after the first failure (default 30 s).
    pub fn with_first(mut self, first: Duration) -> Self {
        self.first = first;
        self
    }

    /// What each wait is multiplied by (default 2).
    pub fn with_factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// The longest wait (default 1 h).
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// How long after the first failure the inbox gives up (default 3 days).
    pub fn with_give_up_after(mut self, give_up_after: Duration) -> Self {
        self.give_up_after = give_up_after;
        self
    }

    /// The largest random part added to a wait, as a fraction of it (default 0.2).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The wait after the `failures`-th failure, before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(63);
        let multiplier = self.factor.checked_pow(exponent).unwrap_or(u32::MAX);
        self.first.saturating_mul(multiplier).min(self.max)
    }

    /// How an attempt that failed with `errors` ends: retried, or dead.
    pub(crate) fn after_failure(
        &self,
        failures: u32,
        first_failed_at_ms: u64,
        now_ms: u64,
        errors: Vec<HandlerFailure>,
    ) -> Finish {
        let failing_for = Duration::from_millis(now_ms.saturating_sub(first_failed_at_ms));
        if failing_for >= self.give_up_after {
            return Finish::Dead { errors };
        }
        let delay = self.delay(failures);
        let jitter = delay.mul_f64(self.jitter * random_fraction());
        let at_ms =
            now_ms.saturating_add(u64::try_from((delay + jitter).as_millis()).unwrap_or(u64::MAX));
        Finish::Retry { at_ms, errors }
    }
}

/// A number in [0, 1): jitter needs spread, not secrecy.
fn random_fraction() -> f64 {
    let mut bytes = [0; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    fraction(u32::from_le_bytes(bytes))
}

/// `bits` as a fraction in `[0, 1)`: the jitter never reaches its whole share.
fn fraction(bits: u32) -> f64 {
    f64::from(bits) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Vec<HandlerFailure> {
        vec![HandlerFailure {
            handler: "h".to_owned(),
            error: "down".to_owned(),
        }]
    }

    #[test]
    fn waits_double_up_to_the_cap_then_the_inbox_gives_up() {
        let policy = RetryPolicy::default().with_jitter(0.0);
        let waits: Vec<u64> = (1..=9).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let day = 24 * 60 * 60 * 1000;
        assert_eq!(
            policy.after_failure(3, 0, 1_000, failure()),
            Finish::Retry {
                at_ms: 121_000,
                errors: failure()
            }
        );
        assert_eq!(
            policy.after_failure(80, 0, 3 * day, failure()),
            Finish::Dead { errors: failure() }
        );
    }

    #[test]
    fn every_setting_takes_effect() {
        let policy = RetryPolicy::default()
            .with_jitter(0.0)
            .with_first(Duration::from_secs(5))
            .with_factor(3)
            .with_max(Duration::from_secs(100))
            .with_give_up_after(Duration::from_secs(60));
        let waits: Vec<u64> = (1..=5).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(waits, [5, 15, 45, 100, 100]);
        assert_eq!(
            policy.after_failure(2, 0, 59_999, failure()),
            Finish::Retry {
                at_ms: 59_999 + 15_000,
                errors: failure()
            }
        );
        assert_eq!(
            policy.after_failure(2, 0, 60_000, failure()),
            Finish::Dead { errors: failure() }
        );
        // A factor below 1 would shrink the waits: it is taken as 1.
        let flat = RetryPolicy::default().with_jitter(0.0).with_factor(0);
        assert_eq!(flat.delay(4), flat.delay(1));
    }

    #[test]
    fn random_bits_make_a_fraction_below_one() {
        assert_eq!(fraction(0), 0.0);
        assert_eq!(fraction(1 << 31), 0.5);
        assert!(fraction(u32::MAX) < 1.0);
    }

    #[test]
    fn jitter_only_lengthens_a_wait_and_by_at_most_its_share() {
        let policy = RetryPolicy::default();
        let mut waits = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let Finish::Retry { at_ms, .. } = policy.after_failure(1, 0, 0, failure()) else {
                panic!("gave up too early")
            };
            assert!((30_000..36_000).contains(&at_ms), "{at_ms}");
            waits.insert(at_ms);
        }
        // Spread, so that deliveries that failed together are not retried together.
        assert!(waits.len() > 100, "{} distinct waits of 200", waits.len());
    }
}
