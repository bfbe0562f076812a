//! The inbox's listener: `LISTEN` on the inbox's channel, waking this process's idle workers
//! when another process commits deliveries; reconnecting, and waking them to look again, after
//! its connection is lost.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use crate::backend_runtime::spawn_on_backend_runtime;
use crate::inbox::{Arrivals, ArrivalsWatch};

/// The longest wait between two attempts to connect the listener.
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on `channel` until the returned watch is dropped.
pub(crate) fn watch(pool: PgPool, channel: String, arrivals: Arrivals) -> ArrivalsWatch {
    let task = spawn_on_backend_runtime(listen(pool, channel, arrivals));
    ArrivalsWatch::new(AbortOnDrop(task))
}

/// Ends the listener's task when the workers stop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn listen(pool: PgPool, channel: String, arrivals: Arrivals) {
    let mut backoff = Duration::from_millis(100);
    // Said once per outage, not at every attempt.
    let mut said = false;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listening.await {
            Ok(mut listener) => {
                if said {
                    tracing::info!(%channel, "the PostgreSQL inbox's listener is back");
                }
                backoff = Duration::from_millis(100);
                // What was committed while nobody listened is looked for now.
                arrivals.arrived();
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => arrivals.arrived(),
                        // The connection was lost (the next call reconnects): notifications
                        // may have been missed, so the workers look.
                        Ok(None) => {
                            tracing::warn!(%channel, "the PostgreSQL inbox's listener lost its connection; reconnecting");
                            arrivals.arrived();
                        }
                        Err(error) => {
                            tracing::warn!(%channel, %error, "the PostgreSQL inbox's listener failed; the workers poll until it is back");
                            said = true;
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                if !said {
                    tracing::warn!(%channel, %error, "the PostgreSQL inbox's listener cannot connect; the workers poll until it can");
                    said = true;
                }
            }
        }
        arrivals.arrived();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MOST_BACKOFF);
    }
}
