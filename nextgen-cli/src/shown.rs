//! One escaping for everything the CLI prints: what came from outside (a delivery, a
//! handler's error, an endpoint's answer, a store's error) reaches the terminal only through
//! here, so it cannot move the cursor, rewrite the screen or reorder text.

use std::borrow::Cow;

/// `text` for a terminal: control characters (escape sequences, carriage returns, bells...)
/// and bidirectional overrides are written as Rust escapes (`\u{1b}`, `\n`), so what a
/// delivery or a handler's error holds cannot rewrite the screen or hide text.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    clean_but(text, &[])
}

/// [`clean`] for a body, which keeps its line breaks and tabs.
pub(crate) fn clean_body(text: &str) -> Cow<'_, str> {
    clean_but(text, &['\n', '\t'])
}

/// [`clean`], keeping the characters of `kept` as they are.
fn clean_but<'a>(text: &'a str, kept: &[char]) -> Cow<'a, str> {
    let unsafe_char = |c: char| {
        !kept.contains(&c)
            && (c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_reordering_marks_are_escaped() {
        assert!(matches!(clean("evt_1 café"), Cow::Borrowed(_)));
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\u{202e}y\u{200f}"), "x\\u{202e}y\\u{200f}");
        assert_eq!(clean("l1\nl2\r"), "l1\\nl2\\r");
        assert_eq!(clean_body("l1\n\tl2\u{7}"), "l1\n\tl2\\u{7}");
    }
}
