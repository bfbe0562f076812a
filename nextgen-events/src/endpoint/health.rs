//! `Health`: what an endpoint can say about itself for a readiness check.

/// An endpoint's health, for a readiness route
/// ([`Endpoint::health`](crate::Endpoint::health)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// [`shutdown`](crate::Endpoint::shutdown) began: deliveries are answered 503.
    pub stopping: bool,
    /// How many inbox workers the configuration asked for (0 outside inbox mode).
    pub inbox_workers: usize,
    /// How many of them run now.
    pub workers_alive: usize,
    /// How many times a worker panicked outside a delivery and was started again.
    pub worker_restarts: u64,
}

impl Health {
    /// Ready to take deliveries and to handle them: not stopping, every worker running.
    pub fn is_ready(&self) -> bool {
        !self.stopping && self.workers_alive == self.inbox_workers
    }
}
