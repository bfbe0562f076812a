//! The `latest_only` watermark order: Rust's `Ord` for `Watermark` (by `created`, then by
//! event id, bytewise) and every in-process store agree on which event is the newest.
//!
//! Each input is a sequence of up to 12 events of one object (`created`, event id, and whether to
//! advance the watermark even when the event is not newer). For each event, on a `MemoryStore`
//! and on a `SqliteStore` (a file in `/dev/shm`, or the temp directory), as dispatch does:
//! - `claim_object` claims the object and answers the newest watermark kept, which must be the
//!   greatest of the advanced watermarks under `Watermark`'s `Ord`;
//! - a newer event advances the watermark (`advance_object`), a stale one releases the claim
//!   (`release_object`); with the third field set, a stale one is advanced anyway, which the
//!   store must refuse to move backwards (its "only forward" check, written in SQL for SQLite).
//!
//! Redis compares in a Lua script on a server, so it is covered by a test of `tests/` with
//! the same edge cases (`tests/tests/redis.rs`) rather than here.
//!
//! Input layout: per event, 1 byte of flags (bit 0: advance anyway; bits 1-2: how `created` is
//! made: a small offset from a base, or 8 raw bytes), the `created` bytes, 1 length byte
//! (`% 6`) and that many bytes of event id, read as lossy UTF-8.

#![no_main]

#[path = "common/scratch.rs"]
mod scratch;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nextgen_events::idempotency::{MemoryStore, ObjectClaim, ObjectClaims, OwnerToken, Watermark};
use nextgen_events::sqlite::{Durability, SqliteStore};

const HANDLER: &str = "fuzz::latest_only";
const LEASE: Duration = Duration::from_secs(60);
const BASE: i64 = 1_713_745_200;
const MAX_STEPS: usize = 12;

struct Stores {
    runtime: tokio::runtime::Runtime,
    stores: Vec<(&'static str, Box<dyn ObjectClaims>)>,
}

thread_local! {
    static STORES: RefCell<Stores> = RefCell::new(Stores::new());
}

impl Stores {
    fn new() -> Self {
        let path = scratch::sqlite_path("watermark");
        let sqlite = SqliteStore::open_with(&path, Durability::Normal)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|error| panic!("no runtime: {error}"));
        Stores {
            runtime,
            stores: vec![
                (
                    "memory",
                    Box::new(MemoryStore::new(Duration::from_secs(3600), 1_000_000)),
                ),
                ("sqlite", Box::new(sqlite)),
            ],
        }
    }
}

struct Step {
    created: i64,
    event_id: String,
    advance_anyway: bool,
}

fn steps(mut data: &[u8]) -> Vec<Step> {
    let mut steps = Vec::new();
    while let Some((&flags, rest)) = data.split_first() {
        data = rest;
        let created = match (flags >> 1) & 3 {
            // Eight raw bytes: any i64, the extremes and the far-from-f64-exact ones included.
            3 => {
                let Some((bytes, rest)) = data.split_first_chunk::<8>() else {
                    break;
                };
                data = rest;
                i64::from_le_bytes(*bytes)
            }
            // Near 2^53, where a double no longer holds every integer.
            2 => {
                let Some((&offset, rest)) = data.split_first() else {
                    break;
                };
                data = rest;
                (1_i64 << 53) + i64::from(offset % 8) - 4
            }
            // The same second, or a few seconds apart: the event id decides often.
            _ => {
                let Some((&offset, rest)) = data.split_first() else {
                    break;
                };
                data = rest;
                BASE + i64::from(offset % 4)
            }
        };
        let Some((&len, rest)) = data.split_first() else {
            break;
        };
        let len = usize::from(len % 6).min(rest.len());
        let (id, rest) = rest.split_at(len);
        data = rest;
        steps.push(Step {
            created,
            event_id: String::from_utf8_lossy(id).into_owned(),
            advance_anyway: flags & 1 != 0,
        });
        // A dozen events order an object well enough; each is a few SQLite transactions.
        if steps.len() == MAX_STEPS {
            break;
        }
    }
    steps
}

/// A fresh object per input, so that inputs do not see each other's watermarks.
fn object_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("obj_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Claims an object no one holds: its token and the watermark the store keeps.
async fn claim_free_object(
    name: &str,
    store: &dyn ObjectClaims,
    object: &str,
) -> (OwnerToken, Option<Watermark>) {
    match store.claim_object(object, HANDLER, LEASE).await {
        Ok(ObjectClaim::Claimed { token, newest }) => (token, newest),
        Ok(ObjectClaim::InProgress) => {
            panic!("{name}: the object is claimed, though every claim was ended")
        }
        Err(error) => panic!("{name}: claim_object: {error}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let steps = steps(data);
    if steps.is_empty() {
        return;
    }
    let object = object_id();
    STORES.with_borrow(|Stores { runtime, stores }| {
        runtime.block_on(async {
            for (name, store) in stores {
                let mut newest: Option<Watermark> = None;
                for step in &steps {
                    let event = Watermark::new(step.created, step.event_id.as_str());
                    let (token, kept) = claim_free_object(name, store.as_ref(), &object).await;
                    assert_eq!(
                        kept, newest,
                        "{name}: the store keeps another watermark than Rust's order says"
                    );
                    let is_newer = newest.as_ref().is_none_or(|newest| event > *newest);
                    let ended = if is_newer || step.advance_anyway {
                        let ended = store
                            .advance_object(&object, HANDLER, token, &event)
                            .await
                            .unwrap_or_else(|error| panic!("{name}: advance_object: {error}"));
                        if is_newer {
                            newest = Some(event);
                        }
                        ended
                    } else {
                        store
                            .release_object(&object, HANDLER, token)
                            .await
                            .unwrap_or_else(|error| panic!("{name}: release_object: {error}"))
                    };
                    assert!(ended, "{name}: the claim just taken was not held");
                }
                // What the last claim answers, after the last step.
                let (token, kept) = claim_free_object(name, store.as_ref(), &object).await;
                assert_eq!(kept, newest, "{name}: the final watermark differs");
                let released = store
                    .release_object(&object, HANDLER, token)
                    .await
                    .unwrap_or_else(|error| panic!("{name}: release_object: {error}"));
                assert!(released, "{name}: the last claim was not held");
            }
        });
    });
});
