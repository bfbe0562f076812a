//! `Received`: what became of a delivery the endpoint accepted.

use crate::dispatch::DispatchReport;

/// What became of a delivery that was accepted: the answer is 200 `{"received": true}` for
/// each of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Its handlers ran now (inline mode): each succeeded, now or for an earlier delivery of
    /// the same event id.
    Handled(DispatchReport),
    /// Kept in the inbox (inbox mode): its workers run the handlers.
    Queued {
        /// The event's id (`evt_...`).
        event_id: String,
        /// The event's type, e.g. `charge.succeeded`.
        event_type: String,
    },
    /// Already in the inbox, from an earlier delivery of the same event id: kept once.
    AlreadyQueued {
        /// The event's id (`evt_...`).
        event_id: String,
        /// The event's type, e.g. `charge.succeeded`.
        event_type: String,
    },
}

impl Received {
    /// The event's id (`evt_...`).
    pub fn event_id(&self) -> &str {
        match self {
            Received::Handled(report) => &report.event_id,
            Received::Queued { event_id, .. } | Received::AlreadyQueued { event_id, .. } => {
                event_id
            }
        }
    }

    /// The event's type, e.g. `charge.succeeded`.
    pub fn event_type(&self) -> &str {
        match self {
            Received::Handled(report) => &report.event_type,
            Received::Queued { event_type, .. } | Received::AlreadyQueued { event_type, .. } => {
                event_type
            }
        }
    }

    /// The handlers' report, when they ran now (inline mode).
    pub fn report(&self) -> Option<&DispatchReport> {
        match self {
            Received::Handled(report) => Some(report),
            Received::Queued { .. } | Received::AlreadyQueued { .. } => None,
        }
    }

    /// The handlers' report, when they ran now (inline mode).
    pub fn into_report(self) -> Option<DispatchReport> {
        match self {
            Received::Handled(report) => Some(report),
            Received::Queued { .. } | Received::AlreadyQueued { .. } => None,
        }
    }

    /// The delivery's outcome label in the metrics (`nextgen_deliveries_total`).
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Received::Handled(_) => "handled",
            Received::Queued { .. } => "queued",
            Received::AlreadyQueued { .. } => "duplicate",
        }
    }
}
