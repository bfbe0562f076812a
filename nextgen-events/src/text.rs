//! Outside text made safe for log fields and stored reasons.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` could change what a terminal or a log viewer shows beyond itself: control
/// characters (ESC starts terminal escape sequences, CR and LF forge lines) and the Unicode
/// marks that reorder text (U+202E makes a line read backwards).
fn unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` as a log field may carry it: a backslash and every character that could forge or
/// hide log output written as a `\u{..}` escape, the rest as it is. Borrowed when nothing
/// needed escaping (the usual case), so a log line costs no allocation for it.
pub(crate) fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || unsafe_to_show(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(Escaped(text).to_string())
}

/// `text` escaped as [`escaped`] does, when (and only when) it is formatted: for log fields,
/// whose values are built whether or not a subscriber takes the line, so a delivery that is
/// not logged pays nothing for the escaping.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if unsafe_to_show(c) {
                for escape in c.escape_unicode() {
                    fmt::Write::write_char(f, escape)?;
                }
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Bytes that should have been UTF-8 text, shown escaped and cut to `max` characters (an
/// ellipsis says it was cut), for an error that names a field's stored value.
#[cfg(feature = "redis")]
pub(crate) fn escaped_bytes(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut shown: String = escaped(&text).chars().take(max).collect();
    if escaped(&text).chars().count() > max {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(escaped("evt_1 café"), Cow::Borrowed("evt_1 café")));
        assert_eq!(escaped("evt\u{1b}[2J"), "evt\\u{1b}[2J");
        assert_eq!(escaped("evt\u{202e}gpj.exe"), "evt\\u{202e}gpj.exe");
        assert_eq!(escaped("a\nb\rc"), "a\\u{a}b\\u{d}c");
        // A backslash is doubled, so an escape in the input cannot pass for one of ours.
        assert_eq!(escaped("a\\u{1b}"), "a\\\\u{1b}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn bytes_are_shown_lossily_escaped_and_cut() {
        assert_eq!(escaped_bytes(b"abc", 10), "abc");
        assert_eq!(escaped_bytes(b"abcdef", 3), "abc…");
        assert_eq!(escaped_bytes(b"\xff\x1b", 20), "\u{fffd}\\u{1b}");
    }
}
