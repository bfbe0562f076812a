//! The webhook benchmark's ratios, measured so that a noisy machine cannot skew them: our path
//! and the floor (`baseline`: one HMAC-SHA256 and one typed parse) take turns in chunks of a
//! few milliseconds, each pair of chunks timed back to back, so a slow spell of the machine
//! slows both sides of a pair alike. It prints, for each row of `webhook`, the ratio of the
//! totals and the median and quartiles of the per-pair ratios.
//!
//! `cargo bench -p nextgen-events --bench ratio` (about 40 s; `RATIO_SECONDS` per row, default 10)

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use nextgen_events::sign;
use nextgen_events::{Context, Endpoint, WebhookConfig};

mod common;

use common::{ROUND, SECRET, T, baseline, charge_event, new_delivery, take};

/// The time each side gets per pair of chunks.
const CHUNK: Duration = Duration::from_millis(4);

/// `ours` and `floor` in alternating chunks of the same deliveries for `seconds`: the ratio of
/// their totals, and the quartiles of the chunk pairs' ratios.
fn compare(
    label: &str,
    seconds: f64,
    mut deliveries: impl FnMut() -> Vec<(Vec<u8>, String)>,
    ours: &dyn Fn(&[u8], &str),
    floor: &dyn Fn(&[u8], &str),
) {
    let timed = |run: &dyn Fn(&[u8], &str), batch: &[(Vec<u8>, String)]| {
        let started = Instant::now();
        for (body, header) in batch {
            run(black_box(body), black_box(header));
        }
        started.elapsed()
    };
    // Warm both up, and size the chunks.
    let warm = deliveries();
    let per_batch = timed(floor, &warm) + timed(ours, &warm);
    let batches = (CHUNK.as_secs_f64() / (per_batch.as_secs_f64() / 2.0))
        .ceil()
        .max(1.0) as usize;
    let (mut ours_total, mut floor_total) = (Duration::ZERO, Duration::ZERO);
    let mut pairs = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        let (mut o, mut f) = (Duration::ZERO, Duration::ZERO);
        for index in 0..batches {
            // Made untimed just before both sides take it, so it is in the cache for both.
            let batch = deliveries();
            // Which side goes first alternates, so neither always follows the other.
            if index % 2 == 0 {
                o += timed(ours, &batch);
                f += timed(floor, &batch);
            } else {
                f += timed(floor, &batch);
                o += timed(ours, &batch);
            }
        }
        ours_total += o;
        floor_total += f;
        pairs.push(o.as_secs_f64() / f.as_secs_f64());
    }
    pairs.sort_by(f64::total_cmp);
    let quartile = |q: usize| pairs[(pairs.len() - 1) * q / 4];
    println!(
        "{label:<22} {:.3}x the floor (pairs: median {:.3}, quartiles {:.3}-{:.3}, {} pairs)",
        ours_total.as_secs_f64() / floor_total.as_secs_f64(),
        quartile(2),
        quartile(1),
        quartile(3),
        pairs.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is not ours to read.
    let seconds: f64 = std::env::var("RATIO_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10.0);
    let context = Context::new();
    let plain = Endpoint::new(
        WebhookConfig::new(SECRET)
            .without_idempotency()
            .with_clock(|| T),
    )
    .unwrap();
    let floor = |body: &[u8], header: &str| {
        black_box(baseline(body, header));
    };
    for (label, size) in [("nextgen/1KiB", 1024), ("nextgen/64KiB", 64 * 1024)] {
        let body = charge_event("evt_3MtwBwLkdIwHu7ix28a3tqPa", size);
        let header = sign(&body, SECRET, T);
        // The same delivery each time, as in `webhook`, a few copies per batch (16 KiB).
        let copies = (16 * 1024 / size).max(1);
        let same = || vec![(body.clone(), header.clone()); copies];
        let ours = |body: &[u8], header: &str| {
            black_box(take(&plain, body, header, &context));
        };
        compare(label, seconds, same, &ours, &floor);
    }

    let deduplicating = Endpoint::new(WebhookConfig::new(SECRET).with_clock(|| T)).unwrap();
    let mut next_id = 0u64;
    // A round of new events each time: the floor reads the same bodies.
    let fresh = || (0..ROUND).map(|_| new_delivery(&mut next_id)).collect();
    let ours = |body: &[u8], header: &str| {
        black_box(take(&deduplicating, body, header, &context));
    };
    compare("nextgen_dedup/1KiB", seconds, fresh, &ours, &floor);
}
