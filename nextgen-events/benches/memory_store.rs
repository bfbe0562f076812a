//! The in-memory idempotency store under several workers: one claim and one completion per
//! delivery, every delivery a new event id (so the store is full and evicting, as after the
//! first 100,000 deliveries of a real process), from 1, 2 and 4 threads at once.
//!
//! `cargo bench -p nextgen-events --bench memory_store`
//!
//! Criterion's time is wall time per delivery across all threads: with no contention, 2
//! threads on 2 cores would halve it; what they do not halve is the store's lock.

#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore};

const LEASE: Duration = Duration::from_secs(60);

/// Claims and completes `deliveries` new event ids of `worker`.
fn deliver(store: &MemoryStore, worker: usize, next: &AtomicU64, deliveries: u64) {
    let mut event_id = String::with_capacity(32);
    for _ in 0..deliveries {
        event_id.clear();
        let n = next.fetch_add(1, Ordering::Relaxed);
        write!(event_id, "evt_{worker}_{n:020}").unwrap();
        let Some(Ok(Claim::Claimed(token))) =
            store.claim(&event_id, "on_charge", LEASE).now_or_never()
        else {
            panic!("a new event id was not claimed");
        };
        let completed = store.complete(&event_id, "on_charge", token).now_or_never();
        assert_eq!(completed, Some(Ok(true)));
    }
}

fn memory_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    group.throughput(Throughput::Elements(1));
    for workers in [1, 2, 4] {
        let store = MemoryStore::default();
        let next = AtomicU64::new(0);
        // Filled first, so every measured claim finds the store full.
        deliver(&store, 0, &next, 110_000);
        group.bench_function(BenchmarkId::new("claim_complete", workers), |b| {
            b.iter_custom(|iterations| {
                let per_worker = iterations.div_ceil(workers as u64);
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for worker in 0..workers {
                        let (store, next) = (&store, &next);
                        scope.spawn(move || deliver(store, worker, next, per_worker));
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, memory_store);
criterion_main!(benches);
