//! A payments service on axum that receives NextGen webhooks: a typed handler and one line of
//! setup.

use std::time::Duration;

use axum::{Extension, Router};
use nextgen_events::axum::webhooks;
use nextgen_events::prelude::*;
use nextgen_events::{Endpoint, WebhookConfig};

/// The app's own state, given to handlers by an `Extension` layer.
#[derive(Clone)]
struct Shop {
    name: &'static str,
}

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge, Extension(shop): Extension<Shop>) {
    tracing::info!(charge = %charge.id, amount = charge.amount, shop = shop.name, "paid");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // NEXTGEN_WEBHOOK_SECRET=whsec_...  (comma-separated during a secret rotation)
    let endpoint = Endpoint::new(WebhookConfig::from_env()?)?;
    let app = Router::new()
        .merge(webhooks("/webhook", endpoint.clone())) // the one line
        .layer(Extension(Shop { name: "main" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await?;
    // Handlers still running finish and record their outcome before the process exits.
    endpoint.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a container runtime sends) where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
