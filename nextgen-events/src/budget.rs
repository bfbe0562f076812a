//! The budget for bodies not yet verified: how many bytes all of an endpoint's requests in
//! flight may hold before their signatures are checked.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::WebhookError;

/// How many bytes of bodies not yet verified an endpoint may hold at once, over all its
/// requests in flight (see [`WebhookConfig::with_unverified_body_budget`]).
#[derive(Debug)]
pub(crate) struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    pub(crate) fn new(limit: usize) -> Self {
        BodyBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` more of the budget, unless that would spend more than all of it.
    /// A request's share, empty until it grows.
    pub(crate) fn hold(&self) -> Held<'_> {
        Held {
            budget: self,
            bytes: 0,
        }
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One request's share of the [`BodyBudget`], given back when dropped, however the request
/// ends (verified, refused, timed out, or its future dropped).
pub(crate) struct Held<'a> {
    budget: &'a BodyBudget,
    bytes: usize,
}

impl Held<'_> {
    /// Grows the share to `total` bytes, or answers 503 when the budget is spent.
    pub(crate) fn grow_to(&mut self, total: usize) -> Result<(), WebhookError> {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        if !self.budget.take(more) {
            return Err(WebhookError::UnverifiedBodyBudgetSpent {
                budget: self.budget.limit,
            });
        }
        self.bytes = total;
        Ok(())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}
