//! How the inboxes that keep entries in a database store an entry's state and its errors: one
//! reading of them for the SQLite and the Redis inbox (and any store that comes next).

use super::{HandlerFailure, InboxState};

/// The listed state of an entry stored as `stored` after `attempts` attempts. The stores keep
/// four states (`pending`, `running`, `handled`, `dead`); a pending entry that was tried before
/// is listed as retrying. A state no version writes (the file or the keys were edited) lists
/// as dead: shown, and run again only on a replay.
pub(crate) fn listed_state(stored: &str, attempts: u32) -> InboxState {
    match stored {
        "pending" if attempts > 0 => InboxState::Retrying,
        "pending" => InboxState::Pending,
        "running" => InboxState::Running,
        "handled" => InboxState::Handled,
        _ => InboxState::Dead,
    }
}

/// The handlers' failures as stored: a JSON array.
pub(crate) fn errors_to_json(errors: &[HandlerFailure]) -> String {
    serde_json::to_string(errors).unwrap_or_else(|_| "[]".to_owned())
}

/// The handlers' failures read back; none when there are none stored or they do not parse.
pub(crate) fn errors_from_json(stored: Option<&str>) -> Vec<HandlerFailure> {
    stored
        .and_then(|errors| serde_json::from_str(errors).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_entry_tried_before_is_retrying_and_an_unknown_state_is_dead() {
        assert_eq!(listed_state("pending", 0), InboxState::Pending);
        assert_eq!(listed_state("pending", 1), InboxState::Retrying);
        assert_eq!(listed_state("running", 1), InboxState::Running);
        assert_eq!(listed_state("handled", 1), InboxState::Handled);
        assert_eq!(listed_state("dead", 3), InboxState::Dead);
        assert_eq!(listed_state("paused", 0), InboxState::Dead);
    }

    #[test]
    fn errors_go_in_and_out_as_a_json_array() {
        let errors = vec![HandlerFailure {
            handler: "book_refund".to_owned(),
            error: "the ledger is down".to_owned(),
        }];
        let json = errors_to_json(&errors);
        assert_eq!(
            json,
            r#"[{"handler":"book_refund","error":"the ledger is down"}]"#
        );
        assert_eq!(errors_from_json(Some(&json)), errors);
        assert_eq!(errors_from_json(None), Vec::new());
        assert_eq!(errors_from_json(Some("not json")), Vec::new());
    }
}
