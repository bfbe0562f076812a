//! A payments service on axum that receives NextGen webhooks: a typed handler and one line of
//! setup.

use axum::{Extension, Router};
use nextgen_events::WebhookConfig;
use nextgen_events::axum::webhooks;
use nextgen_events::prelude::*;

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
    let config = WebhookConfig::from_env()?;
    let app = Router::new()
        .merge(webhooks("/webhook", config)) // the one line
        .layer(Extension(Shop { name: "main" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
