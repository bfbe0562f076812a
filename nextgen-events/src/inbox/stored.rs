//! How the inboxes that keep entries in a database store an entry's state and its errors: one
//! reading of them for the SQLite and the Redis inbox (and any store that comes next).

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::HourCounts;
use super::{HandlerFailure, InboxState, RecordedRerun};

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

/// The reruns an entry records, as stored: a JSON array (Redis keeps them in its scripts).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn reruns_to_json(reruns: &[RecordedRerun]) -> String {
    serde_json::to_string(reruns).unwrap_or_else(|_| "[]".to_owned())
}

/// The reruns an entry records, read back; none when none are stored or they do not parse
/// (changed outside nextgen-events): a record is still shown.
pub(crate) fn reruns_from_json(stored: Option<&str>) -> Vec<RecordedRerun> {
    stored
        .and_then(|reruns| serde_json::from_str(reruns).ok())
        .unwrap_or_default()
}

/// The handler an unreadable entry's dead letter names: no handler ran, the entry itself is
/// at fault.
pub(crate) const UNREADABLE: &str = "(inbox entry)";

/// How many unreadable entries one take turns into dead letters before it answers (nothing
/// taken; the worker comes back at once for the next): a bound on the work of one call.
pub(crate) const UNREADABLE_PER_TAKE: usize = 16;

/// The dead letter of an entry whose stored `field` cannot be read, `problem` saying how. The
/// entry was changed outside nextgen-events (or by a broken tool): taking it again would fail
/// the same way forever, so it is kept for an operator, never run.
pub(crate) fn unreadable(field: &str, problem: &str) -> Vec<HandlerFailure> {
    vec![HandlerFailure {
        handler: UNREADABLE.to_owned(),
        error: format!(
            "the inbox entry's `{field}` cannot be read ({problem}); it was changed outside nextgen-events: fix the field (or delete the entry) and replay it"
        ),
    }]
}

/// An hour, in milliseconds.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const HOUR_MS: u64 = 60 * 60 * 1000;

/// The hours `from_ms` (rounded down to an hour) and the `hours - 1` after it, every count
/// zero: what [`InboxHistory::hourly`](super::InboxHistory::hourly) fills in.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn empty_hours(from_ms: u64, hours: u32) -> Vec<HourCounts> {
    let first = from_ms - from_ms % HOUR_MS;
    (0..u64::from(hours))
        .map_while(|hour| {
            let hour_start_ms = first.checked_add(hour.checked_mul(HOUR_MS)?)?;
            Some(HourCounts {
                hour_start_ms,
                ..HourCounts::default()
            })
        })
        .collect()
}

/// The stores' query bounds for the hours of `counts` (made by [`empty_hours`]): from the
/// first hour's start to the last one's end, in signed milliseconds. `None` for no hours.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn hours_span(counts: &[HourCounts]) -> Option<(i64, i64)> {
    let (first, last) = (counts.first()?, counts.last()?);
    let bound = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX);
    Some((
        bound(first.hour_start_ms),
        bound(last.hour_start_ms.saturating_add(HOUR_MS)),
    ))
}

/// The entry of `counts` for `hour` (milliseconds since the epoch over [`HOUR_MS`], as the
/// stores' queries group them), when it is one of them.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn hour_slot(counts: &mut [HourCounts], hour: i64) -> Option<&mut HourCounts> {
    let first_hour = counts.first()?.hour_start_ms / HOUR_MS;
    let index = u64::try_from(hour).ok()?.checked_sub(first_hour)?;
    counts.get_mut(usize::try_from(index).ok()?)
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
    fn an_unreadable_entry_names_the_field_and_the_fix() {
        let errors = unreadable("signed_at", "`abc` is not a number");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].handler, "(inbox entry)");
        assert!(
            errors[0].error.contains("`signed_at`"),
            "{}",
            errors[0].error
        );
        assert!(errors[0].error.contains("`abc` is not a number"));
        assert!(errors[0].error.contains("replay it"));
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

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn reruns_go_in_and_out_as_a_json_array() {
        let reruns = vec![RecordedRerun {
            handler: "send_receipt".to_owned(),
            at_ms: 1_800_000_000_000,
        }];
        let json = reruns_to_json(&reruns);
        assert_eq!(
            json,
            r#"[{"handler":"send_receipt","at_ms":1800000000000}]"#
        );
        assert_eq!(reruns_from_json(Some(&json)), reruns);
        assert_eq!(reruns_from_json(None), Vec::new());
        assert_eq!(reruns_from_json(Some("[{\"handler\":1}]")), Vec::new());
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn the_hours_asked_for_start_on_the_hour_and_are_all_there() {
        let hours = empty_hours(3 * HOUR_MS + 1, 3);
        let starts: Vec<u64> = hours.iter().map(|hour| hour.hour_start_ms).collect();
        assert_eq!(starts, [3 * HOUR_MS, 4 * HOUR_MS, 5 * HOUR_MS]);
        assert!(
            hours
                .iter()
                .all(|hour| hour.received == 0 && hour.dead == 0)
        );
        assert!(empty_hours(HOUR_MS, 0).is_empty());
        assert!(empty_hours(0, 0).is_empty());
        let late = empty_hours(2 * HOUR_MS + 59_999, 2);
        let starts: Vec<u64> = late.iter().map(|hour| hour.hour_start_ms).collect();
        assert_eq!(starts, [2 * HOUR_MS, 3 * HOUR_MS]);
        // Past the last hour a clock can hold: only the hours that exist.
        assert_eq!(empty_hours(u64::MAX, 3).len(), 1);
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn a_row_lands_in_its_hour_and_an_hour_outside_lands_nowhere() {
        let mut hours = empty_hours(3 * HOUR_MS + 1, 3);
        assert_eq!(
            hours_span(&hours),
            Some((3 * HOUR_MS as i64, 6 * HOUR_MS as i64))
        );
        assert_eq!(
            hour_slot(&mut hours, 4).map(|hour| hour.hour_start_ms),
            Some(4 * HOUR_MS)
        );
        assert!(hour_slot(&mut hours, 2).is_none());
        assert!(hour_slot(&mut hours, 6).is_none());
        assert!(hour_slot(&mut hours, -1).is_none());
        assert_eq!(hours_span(&[]), None);
    }
}
