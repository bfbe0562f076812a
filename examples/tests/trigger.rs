//! The README's promise, run for real: the `server` binary receives what the `trigger` binary
//! sends, and the handler's log line shows it.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use support::Server;

fn trigger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trigger"))
        .args(args)
        .env_remove("NEXTGEN_WEBHOOK_SECRET")
        .output()
        .unwrap()
}

#[test]
fn trigger_reaches_the_servers_handler() {
    let server = Server::start(&[]);
    let output = trigger(&["charge.succeeded", "--url", &server.url]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("200"), "{stdout}");
    assert!(stdout.contains(r#""received":true"#), "{stdout}");
    server.wait_for("charge ch_1J2k3L4m5N6o succeeded: 2000 usd");
}

#[test]
fn the_server_says_which_event_types_to_subscribe_to() {
    let server = Server::start(&[]);
    // Logged once, when the app's workers mount the route.
    let hint = server.wait_for("subscribe this endpoint to");
    // The example has a `*` audit handler and four typed ones.
    assert!(hint.contains("every event type"), "{hint}");
    assert!(
        hint.contains("charge.succeeded, charge.refunded, customer.created, refund.created"),
        "{hint}"
    );
}

#[test]
fn trigger_fails_on_a_wrong_secret_and_on_a_refused_connection() {
    let server = Server::start(&[]);
    let output = trigger(&[
        "customer.created",
        "--url",
        &server.url,
        "--secret",
        "whsec_wrong",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("signature_mismatch"));

    let url = server.url.clone();
    drop(server);
    let output = trigger(&["customer.created", "--url", &url]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cargo run -p nextgen-examples --bin server"),
        "{stderr}"
    );
}

#[test]
fn the_server_refuses_the_test_secret_on_a_public_address() {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("HOST", "0.0.0.0")
        .env("PORT", "0")
        .env_remove("NEXTGEN_WEBHOOK_SECRET")
        .env_remove("NEXTGEN_REDIS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success(), "the server started");
    let stderr = String::from_utf8_lossy(&output.stderr);
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
    let hint = server.wait_for("--bin trigger -- charge.succeeded");
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
    let output = trigger(&["charge.succeeded", "--url", &server.url]);
    assert!(output.status.success());
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

#[test]
fn set_changes_a_field_and_refuses_a_path_that_does_not_exist() {
    let server = Server::start(&[]);
    let output = trigger(&[
        "charge.succeeded",
        "--url",
        &server.url,
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
    server.wait_for("charge ch_1J2k3L4m5N6o succeeded: 500 eur");

    let output = trigger(&[
        "charge.succeeded",
        "--url",
        &server.url,
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
    let output = trigger(&["charge.succeeded", "--url", &server.url, "--set", "amount"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PATH=VALUE"));
}

#[test]
fn all_sends_every_event_type_and_fails_if_one_is_refused() {
    let server = Server::start(&[]);
    let output = trigger(&["--all", "--url", &server.url]);
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
    // A field the payload types cannot read: every typed event is refused (500), so --all fails.
    let output = trigger(&["--all", "--url", &server.url, "--set", "data.object.id=5"]);
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
