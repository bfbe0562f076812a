//! How values read on the page: times as times, outside text with its control characters
//! shown rather than obeyed.

use std::borrow::Cow;

/// `text` from a delivery or a handler's error as the page shows it: control characters and
/// the marks that reorder text written as escapes (`\u{1b}`), so they can neither break the
/// page's text nor hide part of it. maud escapes the markup itself.
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    crate::text::escaped(text)
}

/// An id for a form's field, exactly as stored, so that the form sends it back unchanged:
/// markup escaped as maud does, and control characters as numeric references (`&#x1b;`),
/// which a browser reads back into the same character, rather than raw in the page.
pub(crate) struct Exact<'a>(pub(crate) &'a str);

impl maud::Render for Exact<'_> {
    fn render_to(&self, buffer: &mut String) {
        for c in self.0.chars() {
            match c {
                '&' => buffer.push_str("&amp;"),
                '<' => buffer.push_str("&lt;"),
                '>' => buffer.push_str("&gt;"),
                '"' => buffer.push_str("&quot;"),
                '\'' => buffer.push_str("&#x27;"),
                c if c.is_control() => {
                    buffer.push_str(&format!("&#x{:x};", u32::from(c)));
                }
                c => buffer.push(c),
            }
        }
    }
}

/// A body as the page shows it: pretty-printed when it is JSON, with its line breaks kept.
pub(crate) fn body(raw: &str) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok());
    let text = pretty.as_deref().unwrap_or(raw);
    text.lines()
        .map(|line| shown(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Unix time in milliseconds as a UTC date and time.
pub(crate) fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms after 1970"),
            |at| at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// How long ago `then_ms` was at `now_ms`, roughly ("4 min ago").
pub(crate) fn ago(then_ms: u64, now_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(then_ms) / 1000;
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h {} min ago", seconds / 3600, seconds % 3600 / 60),
        86_400..172_800 => "1 day ago".to_owned(),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// A UTC date and time as a form's `datetime-local` field sends it (`2026-12-07T10:30`, a
/// `:ss` too), in Unix milliseconds.
pub(crate) fn parse_since(text: &str) -> Result<u64, String> {
    let civil: jiff::civil::DateTime = text.trim().parse().map_err(|error| {
        format!(
            "`{}` is not a date and time such as 2026-12-07T10:30 ({error})",
            shown(text)
        )
    })?;
    let at = civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|error| format!("`{}` cannot be placed in UTC ({error})", shown(text)))?;
    u64::try_from(at.timestamp().as_millisecond())
        .map_err(|_| format!("`{}` is before 1970", shown(text)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_read_as_times_and_a_since_field_reads_back() {
        assert_eq!(time(1_796_583_893_000), "2026-12-06 19:04:53 UTC");
        assert_eq!(parse_since("2026-12-06T19:04:53"), Ok(1_796_583_893_000));
        assert_eq!(parse_since("2026-12-06T19:04"), Ok(1_796_583_840_000));
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .contains("2026-12-07T10:30")
        );
        assert_eq!(ago(0, 90_000), "1 min ago");
        assert_eq!(ago(0, 3_600_000 * 25), "1 day ago");
        assert_eq!(ago(0, 3_600_000 * 50), "2 days ago");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed_and_json_is_pretty() {
        assert_eq!(shown("evt_\u{1b}[31m"), "evt_\\u{1b}[31m");
        assert_eq!(body(r#"{"id":"evt_1"}"#), "{\n  \"id\": \"evt_1\"\n}");
        assert_eq!(body("not json\u{7}"), "not json\\u{7}");
        let exact = maud::html! { input value=(Exact("a\u{1b}<\"&")); }.into_string();
        assert_eq!(exact, "<input value=\"a&#x1b;&lt;&quot;&amp;\">");
    }
}
