//! Two endpoints in one app, each with its own secret and its own handlers
//! (`WebhookConfig::with_registry`): a delivery reaches only its endpoint's handlers, over real
//! HTTP, on actix and (with `--features axum`) on axum.

#![allow(clippy::unwrap_used)]

mod support;

use nextgen_events::prelude::*;
use nextgen_events::{Registry, WebhookConfig, sign};
use support::{post, ran, runs};

#[nextgen_event("charge.succeeded", name = "account_a.book")]
async fn book_for_a(event: Event<Charge>) {
    ran(&event.id, "account_a.book");
}

#[nextgen_event("charge.succeeded", name = "account_b.book")]
async fn book_for_b(event: Event<Charge>) {
    ran(&event.id, "account_b.book");
}

const SECRET_A: &str = "whsec_account_a";
const SECRET_B: &str = "whsec_account_b";

/// The endpoint of one account: its secret, and only the handlers named after it.
fn endpoint(account: &str, secret: &str) -> WebhookConfig {
    let prefix = format!("{account}.");
    WebhookConfig::new(secret).with_registry(Registry::from_handlers(
        Registry::global()
            .iter()
            .filter(|handler| handler.name().starts_with(&prefix)),
    ))
}

fn signed(id: &str, secret: &str) -> (Vec<u8>, String) {
    let mut event = nextgen_events::testing::sample("charge.succeeded").unwrap();
    event["id"] = id.into();
    let body = nextgen_events::testing::sample_body(&event);
    let signature = sign(&body, secret, support::now());
    (body, signature)
}

/// Each account's delivery on its own path runs its handler only; one signed for the other
/// account is refused without running anything.
async fn each_delivery_reaches_only_its_endpoint(base: &str, label: &str) {
    let id_a = format!("evt_two_{label}_a");
    let (body, signature) = signed(&id_a, SECRET_A);
    let answer = post(&format!("{base}/a"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(runs(&id_a, "account_a.book"), 1);
    assert_eq!(runs(&id_a, "account_b.book"), 0);

    let id_b = format!("evt_two_{label}_b");
    let (body, signature) = signed(&id_b, SECRET_B);
    let answer = post(&format!("{base}/b"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(runs(&id_b, "account_b.book"), 1);
    assert_eq!(runs(&id_b, "account_a.book"), 0);

    // B's delivery sent to A's endpoint: A's secret does not verify it.
    let id_crossed = format!("evt_two_{label}_crossed");
    let (body, signature) = signed(&id_crossed, SECRET_B);
    let answer = post(&format!("{base}/a"), body, Some(&signature)).await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.code(), "signature_mismatch");
    assert_eq!(
        runs(&id_crossed, "account_a.book") + runs(&id_crossed, "account_b.book"),
        0
    );
}

#[test]
fn two_endpoints_in_one_actix_app() {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (a, b) = (
                endpoint("account_a", SECRET_A),
                endpoint("account_b", SECRET_B),
            );
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .configure(nextgen_events::actix::webhooks("/a", a.clone()))
                    .configure(nextgen_events::actix::webhooks("/b", b.clone()))
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            sender.send(server.addrs()[0].port()).unwrap();
            server.run().await.unwrap();
        });
    });
    let base = format!("http://127.0.0.1:{}", receiver.recv().unwrap());
    actix_web::rt::System::new().block_on(each_delivery_reaches_only_its_endpoint(&base, "actix"));
}

#[cfg(feature = "axum")]
#[test]
fn two_endpoints_in_one_axum_app() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = axum::Router::new()
            .merge(nextgen_events::axum::webhooks(
                "/a",
                endpoint("account_a", SECRET_A),
            ))
            .merge(nextgen_events::axum::webhooks(
                "/b",
                endpoint("account_b", SECRET_B),
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        each_delivery_reaches_only_its_endpoint(&base, "axum").await;
    });
}
