//! `Health`: what an endpoint can say about itself for a readiness and a liveness probe.

use std::fmt;
use std::time::Duration;

use crate::inbox::gauges::{GaugesHealth, STALE_AFTER};

/// An endpoint's health ([`Endpoint::health`](crate::Endpoint::health)), with a verdict for
/// each of Kubernetes' probes: [`is_ready`](Self::is_ready) for the readiness probe (send it
/// deliveries?) and [`is_alive`](Self::is_alive) for the liveness probe (restart it?).
/// [`summary`](Self::summary) (and `Display`) says in one line what is wrong, for the probe's
/// answer and the logs.
///
/// It is what the endpoint knows already: the workers' state, and what the inbox's gauge
/// refresher read last ([`with_inbox_gauges`](crate::WebhookConfig::with_inbox_gauges)), so
/// building it does no I/O and a probe costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The workers' lock: held by a SQLite inbox's workers, not needed by an inbox that
    /// replicas share, nor without workers.
    pub workers_lock: LockHealth,
    /// Whether the inbox's store answered the last read of its counts.
    pub store: StoreHealth,
    /// How long the oldest entry waiting for its first attempt had waited at the last read of
    /// the store; `None` when none waited, or when the store did not answer that read (see
    /// [`store`](Self::store)).
    pub oldest_pending: Option<Duration>,
    /// How long it may wait before the endpoint is not alive
    /// ([`with_backlog_threshold`](crate::WebhookConfig::with_backlog_threshold)).
    pub backlog_threshold: Duration,
}

/// The inbox workers' lock ([`Health::workers_lock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockHealth {
    /// No lock is needed: outside inbox mode, without workers, or on an inbox that replicas
    /// share (Redis, PostgreSQL).
    NotNeeded,
    /// The workers hold it (a SQLite inbox's `<file>.lock`): no other process's workers run on
    /// the file.
    Held,
    /// The workers needed it and no longer hold it: they stopped.
    NotHeld,
}

/// Whether the inbox's store answered the last read of its counts ([`Health::store`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreHealth {
    /// Not read: outside inbox mode, or an inbox without an operator view
    /// ([`Inbox::operator`](crate::inbox::Inbox::operator)).
    NotChecked,
    /// The endpoint started less than 3 cadences ago and the first read has not ended yet.
    Starting,
    /// It answered the last read.
    Reachable {
        /// How long ago that read ended.
        checked: Duration,
    },
    /// It failed the last read (or did not answer it in time).
    Unreachable {
        /// How long ago that read ended.
        checked: Duration,
        /// Why.
        error: String,
    },
    /// No read has ended for 3 cadences: the store does not answer, or the refresher stopped
    /// (after [`shutdown`](crate::Endpoint::shutdown)). Counts as unreachable.
    Stale {
        /// How long ago the last read ended; `None` when none did since the start.
        checked: Option<Duration>,
    },
}

impl StoreHealth {
    /// From what the refresher last read; `None`: not read at all.
    pub(crate) fn from_gauges(gauges: Option<&GaugesHealth>) -> StoreHealth {
        let Some(gauges) = gauges.filter(|gauges| gauges.reads_store) else {
            return StoreHealth::NotChecked;
        };
        let checked = gauges.last.as_ref().map(|last| last.at.elapsed());
        if gauges.is_stale() {
            return StoreHealth::Stale { checked };
        }
        match (&gauges.last, checked) {
            (Some(last), Some(checked)) => match &last.outcome {
                Ok(_) => StoreHealth::Reachable { checked },
                Err(error) => StoreHealth::Unreachable {
                    checked,
                    error: error.clone(),
                },
            },
            _ => StoreHealth::Starting,
        }
    }

    /// Whether an intake write can be expected to succeed: the store answered the last read,
    /// or it is not read at all.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            StoreHealth::NotChecked | StoreHealth::Reachable { .. }
        )
    }
}

impl Health {
    /// Readiness, for a Kubernetes `readinessProbe`: whether to send this replica deliveries.
    /// True when the endpoint is not stopping and, in inbox mode, the inbox's store answered
    /// the last read of its counts within the last 3 cadences, so that appending a delivery
    /// can succeed (until the first read ends, not ready). Outside inbox mode: not stopping.
    ///
    /// Not ready takes the replica out of the load balancer without restarting it: right for
    /// a stop in progress and for a store that is down (a restart would not bring it back).
    /// Workers are not part of it: an intake-only replica is ready without any.
    pub fn is_ready(&self) -> bool {
        !self.stopping && self.store.is_ok()
    }

    /// Liveness, for a Kubernetes `livenessProbe`: whether the process still does its work, so
    /// that a restart is the fix when it does not. True when every configured inbox worker
    /// runs, the workers' lock is held where one is needed, and no entry has waited for its
    /// first attempt longer than the [backlog threshold](Self::backlog_threshold): what a
    /// stalled worker shows first. The backlog counts only for an endpoint with workers (an
    /// intake-only one cannot drain it) and only from a read the store answered, so a store
    /// outage does not restart the replicas. Outside inbox mode: always true.
    pub fn is_alive(&self) -> bool {
        self.workers_alive >= self.inbox_workers
            && self.workers_lock != LockHealth::NotHeld
            && !self.backlog_too_old()
    }

    /// Whether the oldest pending entry waited longer than the threshold, on an endpoint whose
    /// workers should have taken it.
    fn backlog_too_old(&self) -> bool {
        self.inbox_workers > 0
            && self
                .oldest_pending
                .is_some_and(|age| age > self.backlog_threshold)
    }

    /// One line naming what is wrong, with the verdicts first: `ok: ...` when ready and alive,
    /// else `not ready: ...`, `not alive: ...` or `not ready, not alive: ...` followed by each
    /// problem. The same text as `Display`.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// What makes the endpoint not ready or not alive, each a phrase.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.stopping {
            problems.push("stopping: deliveries are answered 503".to_owned());
        }
        if self.workers_alive < self.inbox_workers {
            problems.push(format!(
                "{} of {} inbox workers running",
                self.workers_alive, self.inbox_workers
            ));
        }
        if self.workers_lock == LockHealth::NotHeld {
            problems.push("the workers' lock is not held".to_owned());
        }
        match &self.store {
            StoreHealth::NotChecked | StoreHealth::Reachable { .. } => {}
            StoreHealth::Starting => {
                problems.push("the inbox's store has not answered a first read yet".to_owned());
            }
            StoreHealth::Unreachable { checked, error } => problems.push(format!(
                "the inbox's store failed a read {} ago: {error}",
                seconds(*checked)
            )),
            StoreHealth::Stale { checked } => problems.push(match checked {
                Some(checked) => format!(
                    "the inbox's store has not answered a read for {} (over {STALE_AFTER} cadences)",
                    seconds(*checked)
                ),
                None => format!(
                    "the inbox's store has not answered a read since the start (over {STALE_AFTER} cadences)"
                ),
            }),
        }
        if self.backlog_too_old()
            && let Some(age) = self.oldest_pending
        {
            problems.push(format!(
                "the oldest pending entry has waited {}, over the backlog threshold of {}: are the workers stalled?",
                seconds(age),
                seconds(self.backlog_threshold)
            ));
        }
        problems
    }
}

/// `1.5 s`: a duration as an on-call person reads it.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.is_ready(), self.is_alive()) {
            (true, true) => "ok",
            (false, true) => "not ready",
            (true, false) => "not alive",
            (false, false) => "not ready, not alive",
        };
        let problems = self.problems();
        if !problems.is_empty() {
            return write!(f, "{verdict}: {}", problems.join("; "));
        }
        // Nothing wrong: the state, so that a probe's answer shows what was checked.
        if self.store == StoreHealth::NotChecked && self.inbox_workers == 0 {
            return write!(f, "{verdict}: taking deliveries");
        }
        write!(
            f,
            "{verdict}: {} of {} inbox workers running",
            self.workers_alive, self.inbox_workers
        )?;
        if self.workers_lock == LockHealth::Held {
            write!(f, ", the workers' lock held")?;
        }
        if let StoreHealth::Reachable { checked } = self.store {
            write!(f, ", the store answered {} ago", seconds(checked))?;
            match self.oldest_pending {
                Some(age) => write!(
                    f,
                    ", the oldest pending entry waited {} (threshold {})",
                    seconds(age),
                    seconds(self.backlog_threshold)
                )?,
                None => write!(f, ", no entry pending")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Health, LockHealth, StoreHealth};

    fn healthy() -> Health {
        Health {
            stopping: false,
            inbox_workers: 2,
            workers_alive: 2,
            worker_restarts: 0,
            workers_lock: LockHealth::Held,
            store: StoreHealth::Reachable {
                checked: Duration::from_secs(1),
            },
            oldest_pending: Some(Duration::from_secs(3)),
            backlog_threshold: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_healthy_endpoint_is_ready_and_alive_and_says_what_was_checked() {
        let health = healthy();
        assert!(health.is_ready() && health.is_alive());
        assert_eq!(
            health.summary(),
            "ok: 2 of 2 inbox workers running, the workers' lock held, the store answered 1.0 s ago, the oldest pending entry waited 3.0 s (threshold 300.0 s)"
        );
    }

    #[test]
    fn each_problem_is_named_under_the_verdict_it_breaks() {
        let stopped = Health {
            stopping: true,
            workers_alive: 0,
            workers_lock: LockHealth::NotHeld,
            ..healthy()
        };
        assert!(!stopped.is_ready() && !stopped.is_alive());
        assert_eq!(
            stopped.summary(),
            "not ready, not alive: stopping: deliveries are answered 503; 0 of 2 inbox workers running; the workers' lock is not held"
        );

        let down = Health {
            store: StoreHealth::Unreachable {
                checked: Duration::from_millis(500),
                error: "connection refused".to_owned(),
            },
            oldest_pending: None,
            ..healthy()
        };
        assert!(!down.is_ready() && down.is_alive());
        assert_eq!(
            down.summary(),
            "not ready: the inbox's store failed a read 0.5 s ago: connection refused"
        );

        let stale = Health {
            store: StoreHealth::Stale { checked: None },
            ..healthy()
        };
        assert!(!stale.is_ready(), "{stale}");

        let stalled = Health {
            oldest_pending: Some(Duration::from_secs(301)),
            ..healthy()
        };
        assert!(stalled.is_ready() && !stalled.is_alive());
        assert!(
            stalled.summary().starts_with(
                "not alive: the oldest pending entry has waited 301.0 s, over the backlog threshold of 300.0 s"
            ),
            "{stalled}"
        );
        // An intake-only endpoint cannot drain the backlog: restarting it would not help.
        let intake = Health {
            inbox_workers: 0,
            workers_alive: 0,
            workers_lock: LockHealth::NotNeeded,
            ..stalled
        };
        assert!(intake.is_alive(), "{intake}");
    }
}
