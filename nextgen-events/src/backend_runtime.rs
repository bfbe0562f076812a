//! The runtime networked backends' connections live on: a thread of their own, which no stop
//! blocks.
//!
//! A network client (redis-rs's `ConnectionManager`, a database pool) spawns its connection's
//! driver task, and every reconnection, on the tokio runtime current when it connects. Left to
//! the app's runtime, a stop that blocks that runtime's thread while the inbox workers finish
//! (an endpoint dropped there without `shutdown`) would starve the driver, and the workers'
//! last writes, the done markers of handlers that finished, would time out. So a backend
//! connects and runs every command with this runtime current: what it spawns runs here, and
//! the callers only wait on channels. Every networked backend shares the one thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// The backends' thread's runtime; `None` when it could not be started (then the caller's runtime
/// serves, as before).
static BACKEND_RUNTIME: LazyLock<Option<Handle>> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .inspect_err(|error| {
            tracing::error!(%error, "could not build the backend connections' runtime: they run on the app's");
        })
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("nextgen-backends".to_owned())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .inspect_err(|error| {
            tracing::error!(%error, "could not start the backend connections' thread: they run on the app's");
        })
        .ok()?;
    Some(handle)
});

/// `future`, polled with the backends' runtime current, so that what it spawns runs there.
pub(crate) fn on_backend_runtime<F: Future>(future: F) -> OnBackendRuntime<F> {
    OnBackendRuntime {
        future,
        handle: BACKEND_RUNTIME.as_ref(),
    }
}

/// Spawns `future` on the backends' runtime (on the caller's when it could not be started): a
/// task that must outlive any one caller, such as a listener or a batch writer.
#[cfg(feature = "postgres")]
pub(crate) fn spawn_on_backend_runtime<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match BACKEND_RUNTIME.as_ref() {
        Some(handle) => handle.spawn(future),
        None => tokio::spawn(future),
    }
}

pin_project_lite::pin_project! {
    /// See [`on_backend_runtime`].
    pub(crate) struct OnBackendRuntime<F> {
        #[pin]
        future: F,
        handle: Option<&'static Handle>,
    }
}

impl<F: Future> Future for OnBackendRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = this.handle.map(Handle::enter);
        this.future.poll(cx)
    }
}
