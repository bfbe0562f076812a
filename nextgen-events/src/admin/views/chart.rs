//! The last 24 hours as an SVG bar chart, drawn on the server: received, handled, retried and
//! dead per hour, each bar with its figure as a tooltip.

use maud::{Markup, html};

use crate::inbox::HourCounts;

const WIDTH: u64 = 960;
const HEIGHT: u64 = 220;
const LEFT: u64 = 40;
const BOTTOM: u64 = 24;
const TOP: u64 = 10;

/// The series, in the order they stand in each hour's group, with their colours.
const SERIES: [(&str, &str); 4] = [
    ("received", "#6172f3"),
    ("handled", "#32d583"),
    ("retried", "#fdb022"),
    ("dead", "#f04438"),
];

fn figure(hour: &HourCounts, series: usize) -> u64 {
    match series {
        0 => hour.received,
        1 => hour.handled,
        2 => hour.retried,
        _ => hour.dead,
    }
}

/// The chart of `hours` (oldest first).
pub(crate) fn hourly(hours: &[HourCounts]) -> Markup {
    let highest = hours
        .iter()
        .flat_map(|hour| (0..SERIES.len()).map(move |series| figure(hour, series)))
        .max()
        .unwrap_or(0)
        .max(1);
    let slots = u64::try_from(hours.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / slots;
    let bar = (slot.saturating_sub(4) / 4).max(1);
    let plot = HEIGHT - BOTTOM - TOP;
    let scaled = |value: u64| value.saturating_mul(plot) / highest;
    html! {
        svg #chart width=(WIDTH) height=(HEIGHT) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            role="img" aria-label="deliveries per hour, the last 24 hours" {
            line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#c5cad3" {}
            text x="2" y=(TOP + 10) { (highest) }
            text x="2" y=(HEIGHT - BOTTOM) { "0" }
            @for (index, hour) in hours.iter().enumerate() {
                @let x0 = LEFT + u64::try_from(index).unwrap_or(0) * slot + 2;
                @for (series, (name, colour)) in SERIES.iter().enumerate() {
                    @let value = figure(hour, series);
                    @let height = scaled(value);
                    rect x=(x0 + u64::try_from(series).unwrap_or(0) * bar)
                        y=(HEIGHT - BOTTOM - height) width=(bar) height=(height) fill=(colour) {
                        title { (value) " " (name) ", " (super::text::time(hour.hour_start_ms)) }
                    }
                }
                @if index % 3 == 0 {
                    text x=(x0) y=(HEIGHT - 6) { (hour_of_day(hour.hour_start_ms)) }
                }
            }
        }
        p.legend {
            @for (name, _) in SERIES {
                span { span class={ "sw " (name) } {} (name) }
            }
            span.note { "per hour, UTC" }
        }
    }
}

/// `HH:00` of an hour's start.
fn hour_of_day(hour_start_ms: u64) -> String {
    format!("{:02}:00", hour_start_ms / 3_600_000 % 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hour_has_a_bar_per_series_scaled_to_the_highest() {
        let hours = [
            HourCounts {
                hour_start_ms: 0,
                received: 10,
                handled: 5,
                retried: 0,
                dead: 0,
            },
            HourCounts {
                hour_start_ms: 3_600_000,
                received: 0,
                handled: 0,
                retried: 2,
                dead: 1,
            },
        ];
        let svg = hourly(&hours).into_string();
        assert_eq!(svg.matches("<rect").count(), 8, "{svg}");
        assert!(
            svg.contains("10 received, 1970-01-01 00:00:00 UTC"),
            "{svg}"
        );
        assert!(svg.contains("1 dead, 1970-01-01 01:00:00 UTC"), "{svg}");
        assert!(
            svg.contains(&format!("height=\"{}\"", HEIGHT - BOTTOM - TOP)),
            "{svg}"
        );
    }
}
