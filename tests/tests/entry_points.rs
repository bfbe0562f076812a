//! Every way into an endpoint through one table of cases: the actix and axum routes, their
//! `VerifiedEvent` extractors with `handle`, `Endpoint::receive`, and `Endpoint::verify` then
//! `Endpoint::handle` (a queue of one's own). Each case (a genuine delivery, a forged one, one
//! without a header, one whose handler fails, and the same in inbox mode) gets the same answer
//! and the same effect whichever way it came in.

#![allow(clippy::unwrap_used)]

mod support;

use actix_web::{HttpRequest, HttpResponse, web};
use nextgen_events::inbox::InboxOperator;
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_events::{Endpoint, Registry, WebhookConfig, WebhookError, sign};
use nextgen_tests::services::TempFile;
use support::{SECRET, TestServer, now, post, ran, runs};

const HANDLER: &str = "entry.book";

/// Fails for an event whose id says so, so the sender retries it.
#[nextgen_event("charge.succeeded", name = "entry.book")]
async fn book(event: Event<Charge>) -> Result<(), String> {
    ran(&event.id, HANDLER);
    if event.id.ends_with("_fails") {
        return Err("the ledger is down".to_owned());
    }
    Ok(())
}

/// This file's handler only (the tests' library crate registers others).
fn config() -> WebhookConfig {
    WebhookConfig::new(SECRET).with_registry(Registry::from_handlers(
        Registry::global()
            .iter()
            .filter(|handler| handler.name() == HANDLER),
    ))
}

#[derive(Debug, Clone, Copy)]
enum Way {
    ActixRoute,
    ActixExtractor,
    #[cfg(feature = "axum")]
    AxumRoute,
    #[cfg(feature = "axum")]
    AxumExtractor,
    Receive,
    VerifyThenHandle,
}

const WAYS: &[Way] = &[
    Way::ActixRoute,
    Way::ActixExtractor,
    #[cfg(feature = "axum")]
    Way::AxumRoute,
    #[cfg(feature = "axum")]
    Way::AxumExtractor,
    Way::Receive,
    Way::VerifyThenHandle,
];

async fn actix_own_route(
    event: nextgen_events::actix::VerifiedEvent,
    request: HttpRequest,
) -> Result<HttpResponse, WebhookError> {
    event.handle(&request).await?;
    Ok(nextgen_events::actix::received())
}

#[cfg(feature = "axum")]
async fn axum_own_route(
    event: nextgen_events::axum::VerifiedEvent,
) -> Result<axum::response::Response, WebhookError> {
    event.handle().await?;
    Ok(nextgen_events::axum::received())
}

/// One way in, ready to take deliveries.
enum Door {
    Http(TestServer, &'static str),
    Direct(Endpoint, Way),
}

fn open(way: Way, endpoint: Endpoint) -> Door {
    match way {
        Way::ActixRoute => Door::Http(
            TestServer::start_with(move |service| {
                service.configure(nextgen_events::actix::webhooks("/in", endpoint.clone()));
            }),
            "/in",
        ),
        Way::ActixExtractor => Door::Http(
            TestServer::start_with(move |service| {
                service
                    .app_data(web::Data::new(endpoint.clone()))
                    .route("/own", web::post().to(actix_own_route));
            }),
            "/own",
        ),
        #[cfg(feature = "axum")]
        Way::AxumRoute => Door::Http(
            TestServer::start_axum(nextgen_events::axum::webhooks("/in", endpoint)),
            "/in",
        ),
        #[cfg(feature = "axum")]
        Way::AxumExtractor => Door::Http(
            TestServer::start_axum(
                axum::Router::new()
                    .route("/own", axum::routing::post(axum_own_route))
                    .layer(axum::Extension(endpoint)),
            ),
            "/own",
        ),
        Way::Receive | Way::VerifyThenHandle => Door::Direct(endpoint, way),
    }
}

/// The answer a delivery gets: its status and error code (`""` for 200).
async fn deliver(door: &Door, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let answered = match door {
        Door::Http(server, path) => {
            let answer = post(&server.url(path), body.to_vec(), signature).await;
            let code = if answer.status == 200 {
                assert_eq!(answer.body, serde_json::json!({ "received": true }));
                String::new()
            } else {
                answer.code().to_owned()
            };
            return (answer.status, code);
        }
        Door::Direct(endpoint, Way::Receive) => endpoint
            .receive(body, signature, &Context::new())
            .await
            .map(drop),
        Door::Direct(endpoint, _) => match endpoint.verify(body.to_vec(), signature) {
            Ok(delivery) => {
                // Through a queue of one's own.
                let queued = serde_json::to_string(&delivery).unwrap();
                let delivery = serde_json::from_str(&queued).unwrap();
                endpoint.handle(&delivery, &Context::new()).await.map(drop)
            }
            Err(error) => Err(error),
        },
    };
    match answered {
        Ok(()) => (200, String::new()),
        Err(error) => (error.status(), error.code().to_owned()),
    }
}

fn signed(id: &str, secret: &str) -> (Vec<u8>, String) {
    let mut event = nextgen_events::testing::sample("charge.succeeded").unwrap();
    event["id"] = id.into();
    let body = nextgen_events::testing::sample_body(&event);
    let signature = sign(&body, secret, now());
    (body, signature)
}

#[actix_rt::test]
async fn every_way_in_answers_each_case_alike_inline() {
    for &way in WAYS {
        let door = open(way, Endpoint::new(config()).unwrap());
        let id = |case: &str| format!("evt_entry_{way:?}_{case}");

        // (case, body and signature, answer, runs of the handler)
        let (genuine, genuine_signature) = signed(&id("ok"), SECRET);
        let answer = deliver(&door, &genuine, Some(&genuine_signature)).await;
        assert_eq!(answer, (200, String::new()), "{way:?}: genuine");
        assert_eq!(runs(&id("ok"), HANDLER), 1, "{way:?}");
        // Redelivered: acknowledged, not run again.
        let answer = deliver(&door, &genuine, Some(&genuine_signature)).await;
        assert_eq!(answer, (200, String::new()), "{way:?}: redelivery");
        assert_eq!(
            runs(&id("ok"), HANDLER),
            1,
            "{way:?}: redelivery ran it again"
        );

        let (forged, forged_signature) = signed(&id("forged"), "whsec_someone_else");
        let answer = deliver(&door, &forged, Some(&forged_signature)).await;
        assert_eq!(answer, (400, "signature_mismatch".to_owned()), "{way:?}");
        assert_eq!(runs(&id("forged"), HANDLER), 0, "{way:?}: forged ran");

        let (unsigned, _) = signed(&id("unsigned"), SECRET);
        let answer = deliver(&door, &unsigned, None).await;
        assert_eq!(answer, (400, "signature_missing".to_owned()), "{way:?}");
        assert_eq!(runs(&id("unsigned"), HANDLER), 0, "{way:?}: unsigned ran");

        let (failing, failing_signature) = signed(&id("fails"), SECRET);
        let answer = deliver(&door, &failing, Some(&failing_signature)).await;
        assert_eq!(answer, (500, "handler_failed".to_owned()), "{way:?}");
        // A failure is retried: the next delivery runs the handler again.
        let answer = deliver(&door, &failing, Some(&failing_signature)).await;
        assert_eq!(answer, (500, "handler_failed".to_owned()), "{way:?}");
        assert_eq!(runs(&id("fails"), HANDLER), 2, "{way:?}");
    }
}

#[actix_rt::test]
async fn every_way_in_keeps_deliveries_in_the_inbox_in_inbox_mode() {
    for &way in WAYS {
        let file = TempFile::new("entry_points");
        let inbox = SqliteInbox::open(&file.0).unwrap();
        // No workers: what each way in did is left in the inbox to be seen.
        let endpoint = Endpoint::new(config().with_inbox(inbox.clone()).with_inbox_workers(0));
        let door = open(way, endpoint.unwrap());
        let id = format!("evt_entry_inbox_{way:?}");

        let (genuine, signature) = signed(&id, SECRET);
        let answer = deliver(&door, &genuine, Some(&signature)).await;
        assert_eq!(answer, (200, String::new()), "{way:?}: kept");
        let answer = deliver(&door, &genuine, Some(&signature)).await;
        assert_eq!(answer, (200, String::new()), "{way:?}: kept once");
        let (forged, forged_signature) = signed(&format!("{id}_forged"), "whsec_someone_else");
        let answer = deliver(&door, &forged, Some(&forged_signature)).await;
        assert_eq!(answer, (400, "signature_mismatch".to_owned()), "{way:?}");

        // Kept once, byte for byte, and not run in the request.
        let kept = inbox
            .show(&id, true)
            .await
            .unwrap()
            .expect("kept in the inbox");
        assert_eq!(kept.body.as_deref().map(str::as_bytes), Some(&genuine[..]));
        let stats = inbox.stats().await.unwrap();
        assert_eq!((stats.pending, stats.handled), (1, 0), "{way:?}: {stats:?}");
        assert_eq!(runs(&id, HANDLER), 0, "{way:?}: ran in the request");
    }
}
