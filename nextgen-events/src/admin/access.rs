//! `PageAccess`: what the app's access function decides for one request to the inbox page.

/// What one request to the inbox page may do, as the app's access function decides it from
/// the request (its session cookie, its user, its network), so the app's own authentication
/// is the page's. There is no default: the page cannot be mounted without that function.
///
/// `who` names the person (or the rule) in the log line of every action, so that an audit
/// can tell who replayed what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAccess {
    /// Nothing: every request is answered 403.
    Deny,
    /// The counts, the chart, the lists and the entries, with no button; every action is
    /// refused with 403.
    ReadOnly {
        /// Who looks.
        who: String,
    },
    /// Everything, replays included.
    Full {
        /// Who acts.
        who: String,
    },
}

impl PageAccess {
    /// Read-only access for `who`.
    pub fn read_only(who: impl Into<String>) -> Self {
        PageAccess::ReadOnly { who: who.into() }
    }

    /// Full access for `who`.
    pub fn full(who: impl Into<String>) -> Self {
        PageAccess::Full { who: who.into() }
    }

    /// Whether the request may act (replay).
    pub fn may_act(&self) -> bool {
        matches!(self, PageAccess::Full { .. })
    }

    /// Who the access function said the request comes from; `None` when denied.
    pub fn who(&self) -> Option<&str> {
        match self {
            PageAccess::Deny => None,
            PageAccess::ReadOnly { who } | PageAccess::Full { who } => Some(who),
        }
    }
}
