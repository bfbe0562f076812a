//! The example server, run for real: what it says at start-up, what it refuses to start with,
//! which routes it serves, and its metrics after a delivery.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{Server, deliver};

#[test]
fn the_server_says_which_event_types_to_subscribe_to() {
    let server = Server::start(&[]);
    // Logged once, when the endpoint is built at start-up, before the server listens.
    let hint = server
        .startup
        .iter()
        .find(|line| line.contains("subscribe this endpoint to"))
        .unwrap_or_else(|| panic!("no subscription hint in:\n{}", server.startup.join("\n")));
    // The example has a `*` audit handler and four typed ones.
    assert!(hint.contains("every event type"), "{hint}");
    assert!(
        hint.contains("charge.succeeded, charge.refunded, customer.created, refund.created"),
        "{hint}"
    );
}

#[test]
fn the_server_refuses_the_test_secret_on_a_public_address() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .env("HOST", "0.0.0.0")
        .env("PORT", "0")
        .env_remove("NEXTGEN_WEBHOOK_SECRET")
        .env_remove("NEXTGEN_REDIS_URL");
    // With a deadline: a server that starts anyway would run forever, and the test must fail
    // saying so rather than hang (`.output()` waits for the process to end).
    let stderr = exit_within(command)
        .unwrap_or_else(|| panic!("the server started on 0.0.0.0 with the test secret"));
    assert!(
        stderr.contains("refusing to listen on `0.0.0.0` with the built-in test secret"),
        "{stderr}"
    );
    assert!(stderr.contains("NEXTGEN_WEBHOOK_SECRET"), "{stderr}");
}

/// The server's stderr once it exited within 15 s; `None` (and it is killed) when it kept
/// running.
fn exit_within(mut command: Command) -> Option<String> {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            assert!(!output.status.success());
            return Some(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn the_server_refuses_the_test_secret_in_a_list_on_a_public_address() {
    for secrets in [
        "whsec_test_secret,",
        "whsec_real,whsec_test_secret",
        " whsec_test_secret , ",
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .env("HOST", "0.0.0.0")
            .env("PORT", "0")
            .env("NEXTGEN_WEBHOOK_SECRET", secrets)
            .env_remove("NEXTGEN_REDIS_URL")
            .env_remove("NEXTGEN_STORE_SQLITE")
            .env_remove("NEXTGEN_INBOX_SQLITE")
            .env_remove("NEXTGEN_INBOX_REDIS");
        let stderr = exit_within(command)
            .unwrap_or_else(|| panic!("{secrets:?}: the server listened on 0.0.0.0"));
        assert!(
            stderr.contains("refusing to listen on `0.0.0.0` with the built-in test secret"),
            "{secrets:?}: {stderr}"
        );
    }
}

#[test]
fn the_server_serves_the_benchmark_routes_only_when_asked() {
    let get = |url: &str| reqwest::blocking::get(url).unwrap().status().as_u16();
    let post = |url: &str| {
        reqwest::blocking::Client::new()
            .post(url)
            .body("{}")
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let server = Server::start(&[("NEXTGEN_WEBHOOK_SECRET", "whsec_custom_secret")]);
    let base = server.url.trim_end_matches("/webhook").to_owned();
    assert_eq!(get(&format!("{base}/ledger")), 404);
    assert_eq!(post(&format!("{base}/echo")), 404);
    assert_eq!(post(&format!("{base}/floor")), 404);
    assert_eq!(get(&format!("{base}/healthz")), 200);
    // The start-up hint names no secret: the trigger reads the variable itself.
    let hint = server.wait_for("-- trigger charge.succeeded");
    assert!(!hint.contains("--secret"), "{hint}");
    drop(server);

    let server = Server::start(&[("NEXTGEN_BENCH_ROUTES", "1")]);
    let base = server.url.trim_end_matches("/webhook").to_owned();
    assert_eq!(get(&format!("{base}/ledger")), 200);
    assert_eq!(post(&format!("{base}/echo")), 200);
    assert_eq!(post(&format!("{base}/floor")), 400);
}

#[test]
fn the_server_exposes_the_metrics_when_asked() {
    let server = Server::start(&[("NEXTGEN_METRICS", "1")]);
    deliver(&server.url, "evt_server_metrics");
    server.wait_for("charge ch_1J2k3L4m5N6o succeeded: 2000 usd");
    let metrics_url = server.url.replace("/webhook", "/metrics");
    let text = reqwest::blocking::get(&metrics_url)
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains(
            r#"nextgen_webhook_deliveries_total{event_type="charge.succeeded",outcome="handled"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("nextgen_webhook_handler_duration_seconds"),
        "{text}"
    );
}
