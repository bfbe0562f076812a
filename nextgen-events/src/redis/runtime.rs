//! The runtime Redis connections live on: a thread of their own, which no stop blocks.
//!
//! A `ConnectionManager` spawns its connection's driver task, and every reconnection, on the
//! tokio runtime current when it connects. Left to the app's runtime, a graceful stop that
//! blocks that runtime's thread while the inbox workers finish (the last configuration is
//! dropped there) would starve the driver, and the workers' last writes, the done markers of
//! handlers that finished, would time out. So connecting and every command run with this
//! runtime current: what they spawn runs here, and the callers only wait on channels.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// The Redis thread's runtime; `None` when it could not be started (then the caller's runtime
/// serves, as before).
static REDIS_RUNTIME: LazyLock<Option<Handle>> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .inspect_err(|error| {
            tracing::error!(%error, "could not build the Redis connections' runtime: they run on the app's");
        })
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("nextgen-redis".to_owned())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .inspect_err(|error| {
            tracing::error!(%error, "could not start the Redis connections' thread: they run on the app's");
        })
        .ok()?;
    Some(handle)
});

/// `future`, polled with the Redis runtime current, so that what it spawns runs there.
pub(super) fn on_redis_runtime<F: Future>(future: F) -> OnRedisRuntime<F> {
    OnRedisRuntime {
        future,
        handle: REDIS_RUNTIME.as_ref(),
    }
}

pin_project_lite::pin_project! {
    /// See [`on_redis_runtime`].
    pub(super) struct OnRedisRuntime<F> {
        #[pin]
        future: F,
        handle: Option<&'static Handle>,
    }
}

impl<F: Future> Future for OnRedisRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = this.handle.map(Handle::enter);
        this.future.poll(cx)
    }
}
