//! Rate limiting for the warnings that unauthenticated senders can trigger.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets at most `burst` events through per `window`, and says how many it held back when the
/// next window lets one through: a flood of forged requests cannot flood the log.
#[derive(Debug)]
pub(crate) struct Throttle {
    burst: u32,
    window: Duration,
    state: Mutex<Option<Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    passed: u32,
    held: u64,
}

impl Throttle {
    pub(crate) const fn new(burst: u32, window: Duration) -> Self {
        Throttle {
            burst,
            window,
            state: Mutex::new(None),
        }
    }

    /// `Some(held back before this one)` when the event may be logged, `None` when not.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = state.get_or_insert(Window {
            start: now,
            passed: 0,
            held: 0,
        });
        let mut held_before = 0;
        if now.duration_since(window.start) >= self.window {
            held_before = window.held;
            *window = Window {
                start: now,
                passed: 0,
                held: 0,
            };
        }
        if window.passed < self.burst {
            window.passed += 1;
            Some(held_before)
        } else {
            window.held += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_counted_and_reported_once() {
        let throttle = Throttle::new(3, Duration::from_secs(1));
        let start = Instant::now();
        let admitted: Vec<_> = (0..10).map(|_| throttle.admit(start)).collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        // The next window reports the 7 held back, once.
        let later = start + Duration::from_secs(1);
        assert_eq!(throttle.admit(later), Some(7));
        assert_eq!(throttle.admit(later), Some(0));
    }
}
