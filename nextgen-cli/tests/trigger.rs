//! `nextgen trigger`, run for real: it signs a sample, sends it over HTTP to a real webhook
//! route (actix, in this test process), and the route verifies it and runs the handler.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::sync::Mutex;

use nextgen_events::prelude::*;

/// What the `charge.succeeded` handler saw: `(event id, amount, currency)`.
static CHARGES: Mutex<Vec<(String, i64, String)>> = Mutex::new(Vec::new());

#[nextgen_event("charge.succeeded")]
async fn on_charge(event: Event<Charge>) {
    let charge = &event.data.object;
    CHARGES
        .lock()
        .unwrap()
        .push((event.id.clone(), charge.amount, charge.currency.clone()));
}

/// Every other type is acknowledged, as a `*` handler does.
#[nextgen_event("*")]
async fn everything(event: Event<Box<serde_json::value::RawValue>>) {
    let _ = event;
}

/// The secret `trigger` signs with by default: the example server's test secret.
const TEST_SECRET: &str = "whsec_test_secret";

/// A webhook route on a free loopback port, verifying with `secret`; its URL.
fn serve(secret: &'static str) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(nextgen_events::actix::webhooks(
                    "/webhook",
                    nextgen_events::WebhookConfig::new(secret),
                ))
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            sender.send(server.addrs()[0].port()).unwrap();
            server.run().await.unwrap();
        });
    });
    format!("http://127.0.0.1:{}/webhook", receiver.recv().unwrap())
}

fn trigger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nextgen"))
        .arg("trigger")
        .args(args)
        .env_remove("NEXTGEN_WEBHOOK_SECRET")
        .output()
        .unwrap()
}

fn charges_with_id(id: &str) -> Vec<(i64, String)> {
    CHARGES
        .lock()
        .unwrap()
        .iter()
        .filter(|(seen, _, _)| seen == id)
        .map(|(_, amount, currency)| (*amount, currency.clone()))
        .collect()
}

#[test]
fn trigger_reaches_the_handler_through_a_verified_route() {
    let url = serve(TEST_SECRET);
    let output = trigger(&[
        "charge.succeeded",
        "--url",
        &url,
        "--id",
        "evt_trigger_reaches",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("200"), "{stdout}");
    assert!(stdout.contains(r#""received":true"#), "{stdout}");
    assert_eq!(
        charges_with_id("evt_trigger_reaches"),
        [(2000, "usd".to_owned())]
    );
}

#[test]
fn trigger_fails_on_a_wrong_secret_and_on_a_refused_connection() {
    let url = serve(TEST_SECRET);
    let output = trigger(&["customer.created", "--url", &url, "--secret", "whsec_wrong"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("signature_mismatch"));

    // Nothing listens on this port: the error says how to start the example server.
    let closed = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = trigger(&[
        "customer.created",
        "--url",
        &format!("http://127.0.0.1:{closed}/webhook"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cargo run -p nextgen-examples --bin server"),
        "{stderr}"
    );
}

#[test]
fn set_changes_a_field_and_refuses_a_path_that_does_not_exist() {
    let url = serve(TEST_SECRET);
    let output = trigger(&[
        "charge.succeeded",
        "--url",
        &url,
        "--id",
        "evt_trigger_set",
        "--set",
        "data.object.amount=500",
        "--set",
        "data.object.currency=eur",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        charges_with_id("evt_trigger_set"),
        [(500, "eur".to_owned())]
    );

    let output = trigger(&[
        "charge.succeeded",
        "--url",
        &url,
        "--set",
        "data.object.amont=5",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`data.object` has no field `amont`"),
        "{stderr}"
    );
    assert!(stderr.contains("amount"), "{stderr}");
    let output = trigger(&["charge.succeeded", "--url", &url, "--set", "amount"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PATH=VALUE"));
}

#[test]
fn all_sends_every_event_type_and_fails_if_one_is_refused() {
    let url = serve(TEST_SECRET);
    let output = trigger(&["--all", "--url", &url]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("all 18 event types answered 2xx"),
        "{stdout}"
    );
    // A field the typed handler's payload cannot read: its event is refused (500), so --all
    // fails.
    let output = trigger(&["--all", "--url", &url, "--set", "data.object.id=5"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("of 18 event types were not answered 2xx")
    );
}

#[test]
fn write_signs_distinct_deliveries_for_the_load_scripts() {
    let file = std::env::temp_dir().join(format!("nextgen-write-{}.tsv", std::process::id()));
    let path = file.to_str().unwrap();
    let output = trigger(&[
        "charge.succeeded",
        "--write",
        path,
        "--count",
        "5",
        "--set",
        "data.object.amount=777",
        "--secret",
        "whsec_write_test",
    ]);
    assert!(output.status.success(), "{output:?}");
    let written = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let mut ids = std::collections::HashSet::new();
    for line in written.lines() {
        let (signature, body) = line.split_once('\t').unwrap();
        nextgen_events::verify(body.as_bytes(), signature, "whsec_write_test").unwrap();
        let event: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "charge.succeeded");
        assert_eq!(event["data"]["object"]["amount"], 777);
        // NextGen's field order: `type` before `data`.
        assert!(body.find("\"type\"").unwrap() < body.find("\"data\"").unwrap());
        ids.insert(event["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 5, "{written}");

    let output = trigger(&["charge.succeded", "--write", path]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("did you mean `charge.succeeded`?"),
        "{stderr}"
    );
    assert!(!file.exists(), "a refused type wrote a file");
}

/// An endpoint on a free loopback port that answers one request with `answer` (status 500,
/// the body as given); its URL.
fn answer_once(answer: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Read the request to its end (headers, then Content-Length bytes of body), so the
        // client is not cut off while it sends.
        let mut request = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            let read = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|length| length.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if read == 0 {
                break;
            }
        }
        let head = format!(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            answer.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(answer).unwrap();
    });
    format!("http://127.0.0.1:{port}/webhook")
}

/// What an endpoint answers is outside text: its terminal escapes (clear the screen, a title
/// change, a bell) and reordering marks reach the terminal escaped, as `nextgen inbox` prints.
#[test]
fn the_endpoints_answer_is_printed_escaped() {
    let url = answer_once("\x1b[2J\x1b]0;owned\x07{\"error\":\"down\u{202e}\"}".as_bytes());
    let output = trigger(&["charge.succeeded", "--url", &url]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(!stdout.contains('\u{202e}'), "{stdout:?}");
    assert!(
        stdout.contains("\\u{1b}[2J\\u{1b}]0;owned\\u{7}"),
        "{stdout}"
    );
    assert!(stdout.contains("down\\u{202e}"), "{stdout}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}
