//! Shared by the end-to-end tests: a real server (actix-web's, or axum's) on a free loopback
//! port, and the raw-socket helpers for requests reqwest will not make.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use nextgen_events::actix::webhooks;
use nextgen_events::{Endpoint, WebhookConfig};

/// The secret every end-to-end test signs with.
pub const SECRET: &str = "whsec_e2e_secret";

/// Which HTTP integration a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Actix,
    #[cfg(feature = "axum")]
    Axum,
}

impl Framework {
    /// `id` made unique to this framework, for tests that run once per framework in one
    /// binary (what handlers saw is recorded per event id).
    pub fn id(self, id: &str) -> String {
        format!("{id}_{self:?}")
    }

    /// Starts the webhook endpoint at `/webhook` with `config` on this framework's server.
    pub fn start(self, config: WebhookConfig) -> TestServer {
        match self {
            Framework::Actix => TestServer::start(config, |_| {}),
            #[cfg(feature = "axum")]
            Framework::Axum => TestServer::start_axum(
                axum::Router::new()
                    .merge(nextgen_events::axum::webhooks("/webhook", endpoint(config))),
            ),
        }
    }
}

/// The endpoint of `config`, which the test expects to be valid.
pub fn endpoint(config: WebhookConfig) -> Endpoint {
    Endpoint::new(config).expect("the test's configuration is valid")
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: Stop,
}

enum Stop {
    Actix(ServerHandle),
    #[cfg(feature = "axum")]
    Axum(Option<tokio::sync::oneshot::Sender<()>>),
}

impl TestServer {
    /// Starts the webhook endpoint at `/webhook` with `config`, plus any app data `data` adds.
    pub fn start(
        config: WebhookConfig,
        data: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    ) -> TestServer {
        // One endpoint, as an app holds it: one set of inbox workers, one set of claim locks.
        let endpoint = endpoint(config);
        TestServer::start_with(move |service| {
            data(service);
            webhooks("/webhook", endpoint.clone())(service);
        })
    }

    /// Serves the routes and app data `app` adds, with actix-web.
    pub fn start_with(
        app: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    ) -> TestServer {
        let server = HttpServer::new(move || App::new().configure(app.clone()))
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind a loopback port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        TestServer {
            addr,
            handle: Stop::Actix(handle),
        }
    }

    /// Serves `app` with axum on the current runtime.
    #[cfg(feature = "axum")]
    pub fn start_axum(app: axum::Router) -> TestServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bound address");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        actix_rt::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = served.await {
                eprintln!("the axum test server failed: {error}");
            }
        });
        TestServer {
            addr,
            handle: Stop::Axum(Some(stop)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.handle {
            // Not awaited: the test's runtime stops right after, taking the server with it.
            Stop::Actix(handle) => drop(handle.stop(false)),
            #[cfg(feature = "axum")]
            Stop::Axum(stop) => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
        }
    }
}

/// A response's status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// The `error.message` of an error answer.
    pub fn message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no error message>")
    }
}

/// POSTs `body` to `url` with an optional `NextGen-Signature` header.
pub async fn post(url: &str, body: impl Into<Vec<u8>>, signature: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.into());
    if let Some(signature) = signature {
        request = request.header("NextGen-Signature", signature);
    }
    answer(request.send().await.expect("the server answers")).await
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a readable body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer { status, body }
}

/// The current time in Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// Which handler ran for which event id, in order: `ran` records, `runs` counts.
static RUNS: Mutex<Vec<(String, &'static str)>> = Mutex::new(Vec::new());

/// Records that `handler` ran for `event_id`.
pub fn ran(event_id: &str, handler: &'static str) {
    RUNS.lock()
        .expect("RUNS")
        .push((event_id.to_owned(), handler));
}

/// How many times `handler` ran for `event_id`.
pub fn runs(event_id: &str, handler: &str) -> usize {
    RUNS.lock()
        .expect("RUNS")
        .iter()
        .filter(|(id, name)| id == event_id && *name == handler)
        .count()
}

/// A signed delivery of `event_type` (a catalog type: the shared sample) with id `id`:
/// `(body, NextGen-Signature)`.
pub fn delivery(id: &str, event_type: &str) -> (Vec<u8>, String) {
    let mut event = nextgen_events::testing::sample(event_type).expect("a catalog type");
    event["id"] = serde_json::Value::String(id.to_owned());
    let body = nextgen_events::testing::sample_body(&event);
    let signature = nextgen_events::sign(&body, SECRET, now());
    (body, signature)
}

/// Sends raw bytes and returns the connection, for requests reqwest will not make.
pub fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    stream
}

/// Reads an HTTP response's status line and headers (and whatever of the body came along).
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    while !received.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).expect("read the answer");
        assert!(
            read > 0,
            "the connection closed before an answer: {received:?}"
        );
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

pub fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A `charge.succeeded` delivery `id` signed with `secret`, as an inbox keeps it, received at
/// `received_at_ms`: for tests that write an inbox directly.
pub fn charge_entry(
    id: &str,
    received_at_ms: u64,
    secret: &str,
) -> nextgen_events::inbox::InboxEntry {
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": "charge.succeeded",
        "data": { "object": { "id": "ch_1", "amount": 100, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string();
    nextgen_events::inbox::InboxEntry {
        event_id: id.to_owned(),
        event_type: "charge.succeeded".to_owned(),
        signature: Some(nextgen_events::sign(body.as_bytes(), secret, 1_713_745_200)),
        body: body.into_bytes(),
        signed_at: 1_713_745_200,
        received_at_ms,
    }
}

/// The fastest of five runs of `read`, and what it gave: for the measurements (`--ignored`).
pub async fn fastest_of_five<T, F: std::future::Future<Output = T>>(
    read: impl Fn() -> F,
) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let value = read().await;
        best = best.min(started.elapsed());
        out = Some(value);
    }
    (best, out.expect("five runs"))
}
