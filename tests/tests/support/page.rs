//! An inbox with an entry in every state and an inbox page over it, for the page's tests over
//! HTTP and in a browser.

// Each test binary that includes this file uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpRequest;
use nextgen_events::admin::PageAccess;
use nextgen_events::inbox::{Finish, HandlerFailure, Inbox, InboxOperator};
use nextgen_events::sqlite::SqliteInbox;
use nextgen_tests::services::TempFile;

use crate::support::TestServer;

/// The access rule of the tests' app: the `x-user` header names who asks; `admin` may act,
/// `viewer` may look, anyone else (or no one) is denied.
pub fn access(request: &HttpRequest) -> PageAccess {
    match request
        .headers()
        .get("x-user")
        .and_then(|user| user.to_str().ok())
    {
        Some("admin") => PageAccess::full("admin"),
        Some("viewer") => PageAccess::read_only("viewer"),
        _ => PageAccess::Deny,
    }
}

/// The id of the dead letter whose id and error hold markup and an escape sequence.
pub const HOSTILE_ID: &str = "evt_<script>alert(1)</script>\u{1b}[31m";
/// The error it died with.
pub const HOSTILE_ERROR: &str = "<script>alert('x')</script> upstream said \u{1b}[2J";

/// A SQLite inbox holding `pending` pending entries, one retrying (`evt_retrying`), two dead
/// letters (`evt_dead` and [`HOSTILE_ID`]) and one handled (`evt_handled`), received a minute
/// apart on an injected clock.
pub struct FilledInbox {
    pub inbox: SqliteInbox,
    pub clock: Arc<AtomicU64>,
    step_ms: u64,
    _file: TempFile,
}

/// The clock's start: 2026-12-07 10:00:00 UTC.
pub const START_MS: u64 = 1_796_637_600_000;

impl FilledInbox {
    pub async fn new(pending: usize) -> Self {
        Self::new_at(START_MS, 60_000, pending).await
    }

    /// [`new`](Self::new), its clock starting at `start_ms`, the entries `step_ms` apart.
    pub async fn new_at(start_ms: u64, step_ms: u64, pending: usize) -> Self {
        let file = TempFile::new("inbox-page");
        let clock = Arc::new(AtomicU64::new(start_ms));
        let reader = Arc::clone(&clock);
        let inbox = SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst))
            .expect("a fresh inbox file");
        let filled = FilledInbox {
            inbox,
            clock,
            step_ms,
            _file: file,
        };
        // Taken in the order received: the first four are finished as they are taken.
        for id in ["evt_handled", "evt_retrying", "evt_dead", HOSTILE_ID] {
            filled.append(id).await;
        }
        let lease = Duration::from_secs(60);
        for _ in 0..4 {
            let taken = filled
                .inbox
                .take(lease)
                .await
                .unwrap()
                .expect("a due entry");
            let id = taken.entry.event_id.clone();
            let finish = match id.as_str() {
                "evt_handled" => Finish::Handled,
                "evt_retrying" => Finish::Retry {
                    at_ms: filled.now() + 3_600_000,
                    errors: failure("book_charge", "the ledger answered 503"),
                },
                "evt_dead" => Finish::Dead {
                    errors: failure("book_charge", "the ledger answered 503"),
                },
                _ => Finish::Dead {
                    errors: failure("notify_<b>ops</b>", HOSTILE_ERROR),
                },
            };
            assert!(filled.inbox.finish(&id, taken.token, finish).await.unwrap());
        }
        for n in 0..pending {
            filled.append(&format!("evt_pending_{n:03}")).await;
        }
        filled
    }

    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Appends a charge.succeeded delivery, a step (a minute, by default) after the one before.
    pub async fn append(&self, id: &str) {
        let now = self.clock.fetch_add(self.step_ms, Ordering::SeqCst) + self.step_ms;
        self.inbox
            .append(crate::support::charge_entry(
                id,
                now,
                crate::support::SECRET,
            ))
            .await
            .unwrap();
    }

    /// Appends a charge.succeeded delivery received at the clock's time, without moving it:
    /// for filling an inbox in bulk, many at once.
    pub async fn append_unordered(&self, id: String) {
        let entry = crate::support::charge_entry(&id, self.now(), crate::support::SECRET);
        self.inbox.append(entry).await.unwrap();
    }

    pub fn operator(&self) -> Arc<dyn InboxOperator> {
        Arc::new(self.inbox.clone())
    }

    /// The page at `/ops/inbox` over this inbox, with [`access`], on an actix server.
    pub fn serve(&self) -> TestServer {
        self.serve_with(access)
    }

    /// The page at `/ops/inbox` over this inbox, each request decided by `access`, on an actix
    /// server: for a client that cannot send the `x-user` header [`access`] reads (a browser).
    pub fn serve_with<A>(&self, access: A) -> TestServer
    where
        A: Fn(&HttpRequest) -> PageAccess + Send + Sync + Clone + 'static,
    {
        let operator = self.operator();
        TestServer::start_with(move |service| {
            nextgen_events::actix::inbox_page("/ops/inbox", Arc::clone(&operator), access.clone())(
                service,
            );
        })
    }
}

fn failure(handler: &str, error: &str) -> Vec<HandlerFailure> {
    vec![HandlerFailure {
        handler: handler.to_owned(),
        error: error.to_owned(),
    }]
}
