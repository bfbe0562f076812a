//! When a failed delivery is tried again, and when the inbox gives up on it.

use std::time::Duration;

use super::{Finish, HandlerFailure};
use crate::limits::MAX_DURATION;

/// Why a [`RetryPolicy`] cannot be used: the configuration's check refuses it when the route
/// is mounted, before any worker could trip over it.
///
/// Each message names the setter to change and what to give it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// The jitter is not a number (NaN), infinite, negative or above 1.
    #[error(
        "`RetryPolicy::with_jitter` is {jitter}, not a fraction between 0 and 1: give it one, such as 0.2 (the default), or 0.0 for no jitter"
    )]
    Jitter {
        /// The jitter given.
        jitter: f64,
    },
    /// The first wait is zero: a failing delivery would be retried at once, over and over,
    /// until the inbox gives up on it.
    #[error(
        "`RetryPolicy::with_first` is zero, so a failing delivery would be retried at once in a busy loop: give it a positive duration (default 30 s)"
    )]
    ZeroFirst,
    /// A duration setting is longer than a clock can safely add.
    #[error(
        "`RetryPolicy::{setting}` is {seconds} s, longer than the 10 years a clock can safely add: give it a duration in seconds to days (see its documentation for the default)"
    )]
    TooLong {
        /// The setter.
        setting: &'static str,
        /// The duration given, in whole seconds.
        seconds: u64,
    },
    /// The longest wait, lengthened by the jitter, is longer than a clock can safely add.
    #[error(
        "the longest retry wait (`RetryPolicy::with_max`, or `with_first` if it never reaches it) lengthened by `with_jitter` ({jitter}) is {seconds} s, longer than the 10 years a clock can safely add: lower `with_max` (default 1 h) or `with_jitter`"
    )]
    WaitTooLong {
        /// The longest wait with its largest jitter, in whole seconds.
        seconds: u64,
        /// The jitter given.
        jitter: f64,
    },
}

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

    /// The largest random part added to a wait, as a fraction of it between 0 and 1 (default
    /// 0.2). Anything else (NaN, infinite, negative, above 1) is refused when the route is
    /// mounted ([`RetryPolicyError::Jitter`]).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        // Kept as given, so that the check can name a wrong value instead of hiding it;
        // `jitter_share` keeps the arithmetic safe whatever it is.
        self.jitter = jitter;
        self
    }

    /// Whether every setting can be used: a jitter between 0 and 1, a first wait above zero,
    /// and no wait or give-up time so long that a clock cannot add it (10 years, jitter
    /// included). The configuration's check calls it, so a wrong policy is refused at mount
    /// with the setter named, instead of surfacing in a worker.
    pub(crate) fn check(&self) -> Result<(), RetryPolicyError> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(RetryPolicyError::Jitter {
                jitter: self.jitter,
            });
        }
        if self.first.is_zero() {
            return Err(RetryPolicyError::ZeroFirst);
        }
        let settings = [
            ("with_first", self.first),
            ("with_max", self.max),
            ("with_give_up_after", self.give_up_after),
        ];
        for (setting, duration) in settings {
            if duration > MAX_DURATION {
                return Err(RetryPolicyError::TooLong {
                    setting,
                    seconds: duration.as_secs(),
                });
            }
        }
        // The waits only grow, so the last one is the longest.
        let longest = self.delay(u32::MAX);
        let with_jitter = longest.saturating_add(jitter_share(longest, self.jitter));
        if with_jitter > MAX_DURATION {
            return Err(RetryPolicyError::WaitTooLong {
                seconds: with_jitter.as_secs(),
                jitter: self.jitter,
            });
        }
        Ok(())
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
        let jitter = jitter_share(delay, self.jitter * random_fraction());
        let wait = delay.saturating_add(jitter);
        let at_ms = now_ms.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        Finish::Retry { at_ms, errors }
    }
}

/// `share` of `delay`, without the panics of `Duration::mul_f64`: a share that is not a number
/// or not positive adds nothing, one above 1 adds the whole delay, and a product too large for
/// a `Duration` is the delay itself. A policy that skipped its check still never panics.
fn jitter_share(delay: Duration, share: f64) -> Duration {
    if share.is_nan() || share <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(delay.as_secs_f64() * share.min(1.0))
        .map_or(delay, |d| d.min(delay))
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

    #[test]
    fn the_check_refuses_each_wrong_setting_naming_its_setter() {
        assert_eq!(RetryPolicy::default().check(), Ok(()));
        for jitter in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 1.5] {
            let error = RetryPolicy::default()
                .with_jitter(jitter)
                .check()
                .expect_err("a jitter outside [0, 1] is refused");
            assert!(
                matches!(error, RetryPolicyError::Jitter { .. }),
                "{jitter}: {error:?}"
            );
            assert!(
                error.to_string().contains("`RetryPolicy::with_jitter`"),
                "{error}"
            );
        }
        for jitter in [0.0, 1.0] {
            assert_eq!(RetryPolicy::default().with_jitter(jitter).check(), Ok(()));
        }
        assert_eq!(
            RetryPolicy::default().with_first(Duration::ZERO).check(),
            Err(RetryPolicyError::ZeroFirst)
        );
        let too_long = [
            (
                "with_first",
                RetryPolicy::default().with_first(Duration::MAX),
            ),
            ("with_max", RetryPolicy::default().with_max(Duration::MAX)),
            (
                "with_give_up_after",
                RetryPolicy::default().with_give_up_after(Duration::MAX),
            ),
        ];
        for (setter, policy) in too_long {
            let error = policy.check().expect_err("longer than a clock can add");
            assert_eq!(
                error,
                RetryPolicyError::TooLong {
                    setting: setter,
                    seconds: Duration::MAX.as_secs()
                }
            );
            assert!(error.to_string().contains(setter), "{error}");
        }
        // Each within the bound, but the longest wait and its jitter together are not.
        let nine_years = Duration::from_secs(9 * 365 * 24 * 60 * 60);
        let error = RetryPolicy::default()
            .with_first(nine_years)
            .with_max(nine_years)
            .check()
            .expect_err("9 years and 20 % more is past 10 years");
        assert!(
            matches!(error, RetryPolicyError::WaitTooLong { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("with_max"), "{error}");
        assert_eq!(
            RetryPolicy::default()
                .with_first(nine_years)
                .with_max(nine_years)
                .with_jitter(0.0)
                .check(),
            Ok(())
        );
    }

    #[test]
    fn no_policy_panics_even_unchecked() {
        let policies = [
            RetryPolicy::default().with_jitter(f64::NAN),
            RetryPolicy::default().with_jitter(f64::INFINITY),
            RetryPolicy::default().with_jitter(f64::NEG_INFINITY),
            RetryPolicy::default().with_jitter(-3.0),
            RetryPolicy::default().with_jitter(7.0),
            RetryPolicy::default()
                .with_first(Duration::MAX)
                .with_max(Duration::MAX)
                .with_jitter(1.0),
            RetryPolicy::default()
                .with_first(Duration::MAX)
                .with_max(Duration::MAX)
                .with_factor(u32::MAX)
                .with_give_up_after(Duration::MAX)
                .with_jitter(f64::INFINITY),
            RetryPolicy::default().with_first(Duration::ZERO),
        ];
        for policy in policies {
            for failures in [0, 1, 2, 63, 64, u32::MAX] {
                for now_ms in [0, 1_000, u64::MAX] {
                    let Finish::Retry { at_ms, .. } =
                        policy.after_failure(failures, now_ms, now_ms, failure())
                    else {
                        panic!("{policy:?} gave up at once")
                    };
                    assert!(at_ms >= now_ms, "{policy:?}: {at_ms} < {now_ms}");
                }
            }
        }
    }

    #[test]
    fn a_jitter_share_is_at_most_the_delay_and_never_panics() {
        let second = Duration::from_secs(1);
        assert_eq!(jitter_share(second, f64::NAN), Duration::ZERO);
        assert_eq!(jitter_share(second, -1.0), Duration::ZERO);
        assert_eq!(jitter_share(second, 0.5), Duration::from_millis(500));
        assert_eq!(jitter_share(second, f64::INFINITY), second);
        assert_eq!(jitter_share(Duration::MAX, 1.0), Duration::MAX);
    }
}
