//! How an endpoint stops: intake closes, what runs finishes and records its outcome, and a
//! report names what was left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::WebhookError;

/// What [`Endpoint::shutdown`](crate::Endpoint::shutdown) found when it returned.
///
/// A clean stop left nothing: every inbox worker finished the delivery it held and recorded
/// every outcome, and no inline dispatch was running. When the timeout ran out first, the
/// report names the inbox deliveries still held (they are taken again at the next start, once
/// their leases lapse; handlers that succeeded stay skipped) and counts the inline deliveries
/// still running (they were not acknowledged, so the sender delivers them again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// The event ids the inbox's workers still held when the timeout ran out.
    pub left: Vec<String>,
    /// Deliveries still being taken (read, kept or dispatched inline) when the timeout ran out.
    pub in_flight: usize,
    /// How long the stop took.
    pub elapsed: Duration,
}

impl StopReport {
    /// Nothing was left running.
    pub fn is_clean(&self) -> bool {
        self.left.is_empty() && self.in_flight == 0
    }
}

/// An endpoint's intake gate: open until the stop begins, counting the deliveries inside.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    /// Told when the last delivery inside leaves during a stop.
    settled: Notify,
}

/// One delivery inside the gate; leaving (however the delivery ends) is counted on drop.
pub(crate) struct Inside(Arc<Intake>);

impl Drop for Inside {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.0.stopping.load(Ordering::SeqCst)
        {
            self.0.settled.notify_waiters();
        }
    }
}

impl Intake {
    /// Lets a delivery in, unless the stop began: then it is answered 503 with `Retry-After`
    /// and nothing of it is read or written.
    pub(crate) fn enter(self: &Arc<Self>) -> Result<Inside, WebhookError> {
        // Counted before the flag is read, and the stop sets the flag before it reads the
        // count: either the stop waits for this delivery, or this delivery sees the stop.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let inside = Inside(Arc::clone(self));
        if self.stopping.load(Ordering::SeqCst) {
            return Err(WebhookError::ShuttingDown);
        }
        Ok(inside)
    }

    /// Closes the gate.
    pub(crate) fn close(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits until no delivery is inside, or `deadline`; how many are still inside.
    pub(crate) async fn settled(&self, deadline: Option<tokio::time::Instant>) -> usize {
        loop {
            let mut settled = std::pin::pin!(self.settled.notified());
            settled.as_mut().enable();
            let inside = self.in_flight.load(Ordering::SeqCst);
            if inside == 0 {
                return 0;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return self.in_flight.load(Ordering::SeqCst);
                    }
                }
                None => settled.await,
            }
        }
    }
}
