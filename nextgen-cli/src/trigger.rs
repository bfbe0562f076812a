//! `nextgen trigger`: sends a signed sample NextGen event to a webhook endpoint, the way a
//! payments CLI's "trigger" command does.
//!
//! ```text
//! nextgen trigger charge.succeeded
//! nextgen trigger refund.created --url http://127.0.0.1:9000/webhook
//! nextgen trigger --data event.json --id evt_replay_1
//! nextgen trigger charge.succeeded --set data.object.amount=500
//! nextgen trigger --all
//! nextgen trigger --list
//! ```
//!
//! The body is signed at the current time with `nextgen_events::sign`, with the secret from
//! `--secret`, else `NEXTGEN_WEBHOOK_SECRET` (the first one, when it lists several), else the
//! test secret the example server uses by default.
//!
//! Exit status: 0 when the endpoint answered 2xx; 1 when it answered otherwise or could not be
//! reached; 2 for a usage error (unknown event type, unreadable or invalid `--data` file).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Failure;
use crate::shown::clean_body;
use nextgen_events::catalog::EVENT_TYPES;
use nextgen_events::testing::{sample, sample_body};
use nextgen_events::{Event, UntypedEvent};
use nextgen_events::{SignatureHeader, WebhookConfig, sign};
use serde_json::Value;

/// The environment variable the secret comes from.
const SECRET_ENV: &str = WebhookConfig::SECRET_ENV;

const SERVER_COMMAND: &str = "cargo run -p nextgen-examples --bin server";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the example server listens by default.
const DEFAULT_WEBHOOK_URL: &str = "http://127.0.0.1:8080/webhook";

/// The secret the example server verifies with when `NEXTGEN_WEBHOOK_SECRET` is not set. For
/// local testing only.
const TEST_SECRET: &str = "whsec_test_secret";

/// Send a signed sample NextGen event to a webhook endpoint.
#[derive(Debug, clap::Parser)]
#[command(name = "trigger")]
pub(crate) struct Args {
    /// The event type to send, such as `charge.succeeded` (`--list` shows them all). Optional
    /// with `--data`, where the file's type is sent.
    #[arg(value_name = "EVENT_TYPE", required_unless_present_any = ["list", "data", "all"])]
    event_type: Option<String>,

    /// Send a sample of every event type of the catalog, one after another; fails if any
    /// answer is not 2xx.
    #[arg(long, conflicts_with_all = ["event_type", "data", "id"])]
    all: bool,

    /// Set a field of the event before it is sent: a dotted path from the envelope's top
    /// (`data.object.amount=500`, `data.object.metadata.order_id="6735"`); the value is JSON,
    /// or taken as a string when it is not. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,

    /// The webhook endpoint (plain http).
    #[arg(long, value_name = "URL", default_value = DEFAULT_WEBHOOK_URL)]
    url: String,

    /// The endpoint's signing secret [default: the example server's test secret].
    #[arg(long, value_name = "SECRET", env = SECRET_ENV, hide_env_values = true)]
    secret: Option<String>,

    /// Send this JSON event envelope instead of a sample, byte for byte as read.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,

    /// The event id to send instead of a fresh `evt_...` (same id twice: a redelivery).
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// List the catalog's event types and their payload types, then exit.
    #[arg(long)]
    list: bool,

    /// Write signed deliveries to FILE instead of sending: one a line, the `NextGen-Signature`
    /// value, a tab, the compact JSON body (what the load scripts replay with wrk, whose Lua
    /// has no HMAC). Each has its own event id.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["all", "data", "id"])]
    write: Option<PathBuf>,

    /// How many deliveries `--write` writes.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "write")]
    count: usize,
}

pub(crate) fn main(args: &Args) -> ExitCode {
    if args.list {
        list();
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn list() {
    print!("{}", catalog_table(""));
}

/// The catalog's event types and payload types, one a line, aligned, with a heading.
fn catalog_table(indent: &str) -> String {
    let width = EVENT_TYPES
        .iter()
        .map(|entry| entry.name().len())
        .max()
        .unwrap_or(0)
        .max("EVENT TYPE".len());
    let mut table = format!("{indent}{:width$}  PAYLOAD\n", "EVENT TYPE");
    for entry in EVENT_TYPES {
        table.push_str(&format!(
            "{indent}{:width$}  {}\n",
            entry.name(),
            entry.payload()
        ));
    }
    table
}

fn run(args: &Args) -> Result<(), Failure> {
    let secret = secret(args)?;
    let settings = args
        .set
        .iter()
        .map(|setting| parse_setting(setting))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.write {
        return write_deliveries(path, args, &secret, &settings);
    }
    let url = check_url(&args.url)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|error| Failure::failed(format!("could not set up the HTTP client: {error}")))?;
    if args.all {
        return send_all(&client, &url, &secret, &settings);
    }
    let (event_type, event_id, body) = match &args.data {
        Some(path) => from_file(path, args, &settings)?,
        None => from_sample(args, &settings)?,
    };
    send(&client, &url, &secret, &event_type, &event_id, body)
}

/// The current time in seconds since the Unix epoch, what signatures carry.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `--write`: `--count` signed samples of the event type, each with a fresh event id.
fn write_deliveries(
    path: &Path,
    args: &Args,
    secret: &str,
    settings: &[(Vec<String>, Value)],
) -> Result<(), Failure> {
    let event_type = args.event_type.as_deref().unwrap_or_default();
    let timestamp = unix_now();
    let mut lines = String::new();
    for _ in 0..args.count {
        let mut event = sample(event_type).ok_or_else(|| unknown_event_type(event_type))?;
        apply(&mut event, settings)?;
        let body = sample_body(&event);
        lines.push_str(&sign(&body, secret, timestamp));
        lines.push('\t');
        lines.push_str(&String::from_utf8_lossy(&body));
        lines.push('\n');
    }
    std::fs::write(path, lines).map_err(|error| {
        Failure::failed(format!("could not write `{}`: {error}", path.display()))
    })?;
    println!(
        "wrote {} signed {event_type} deliveries to {}",
        args.count,
        path.display()
    );
    Ok(())
}

/// Every catalog type in turn; a failure does not stop the others.
fn send_all(
    client: &reqwest::blocking::Client,
    url: &reqwest::Url,
    secret: &str,
    settings: &[(Vec<String>, Value)],
) -> Result<(), Failure> {
    let mut failed = Vec::new();
    for entry in EVENT_TYPES {
        let mut event = sample(entry.name()).ok_or_else(|| unknown_event_type(entry.name()))?;
        apply(&mut event, settings)?;
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        let body = sample_body(&event);
        if let Err(failure) = send(client, url, secret, entry.name(), &id, body) {
            eprintln!("error: {}: {}", entry.name(), clean_body(&failure.message));
            failed.push(entry.name());
        }
    }
    match failed.as_slice() {
        [] => {
            println!("all {} event types answered 2xx", EVENT_TYPES.len());
            Ok(())
        }
        failed => Err(Failure::failed(format!(
            "{} of {} event types were not answered 2xx: {}",
            failed.len(),
            EVENT_TYPES.len(),
            failed.join(", ")
        ))),
    }
}

fn send(
    client: &reqwest::blocking::Client,
    url: &reqwest::Url,
    secret: &str,
    event_type: &str,
    event_id: &str,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let timestamp = unix_now();
    let signature = sign(&body, secret, timestamp);
    println!("Sending {event_type} ({event_id}) to {url}");
    let response = client
        .post(url.clone())
        .header(SignatureHeader::NAME, signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .map_err(|error| request_failure(url, &error))?;

    let status = response.status();
    let text = response
        .text()
        .unwrap_or_else(|error| format!("(the response body could not be read: {error})"));
    println!("{status}");
    // The endpoint's answer is outside text: escaped, so it cannot drive the terminal.
    println!("{}", clean_body(&text));
    if status.is_success() {
        return Ok(());
    }
    let mut message = format!("the endpoint answered {status}");
    if let Some(hint) = hint(&text) {
        message.push_str(": ");
        message.push_str(hint);
    }
    Err(Failure::failed(message))
}

/// `PATH=VALUE` as a path and a JSON value (a string when VALUE is not JSON).
fn parse_setting(setting: &str) -> Result<(Vec<String>, Value), Failure> {
    let (path, value) = setting.split_once('=').ok_or_else(|| {
        Failure::usage(format!(
            "--set `{setting}`: write PATH=VALUE, such as `data.object.amount=500`"
        ))
    })?;
    let path: Vec<String> = path.trim().split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(Failure::usage(format!(
            "--set `{setting}`: the path has an empty part; write dotted field names, such as `data.object.amount`"
        )));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((path, value))
}

/// Applies `--set`s: each path must exist in the event, so a typo is an error, not a new
/// field the server ignores.
fn apply(event: &mut Value, settings: &[(Vec<String>, Value)]) -> Result<(), Failure> {
    for (path, value) in settings {
        let mut at = &mut *event;
        for (depth, part) in path.iter().enumerate() {
            let here = path[..depth].join(".");
            let shown = if here.is_empty() {
                "the envelope".to_owned()
            } else {
                format!("`{here}`")
            };
            at = match at {
                Value::Object(fields) => {
                    let known = fields.keys().cloned().collect::<Vec<_>>().join(", ");
                    fields.get_mut(part).ok_or_else(|| {
                        Failure::usage(format!(
                            "--set {}: {shown} has no field `{part}`; its fields: {known}",
                            path.join(".")
                        ))
                    })?
                }
                Value::Array(items) => {
                    let length = items.len();
                    part.parse::<usize>()
                        .ok()
                        .and_then(|index| items.get_mut(index))
                        .ok_or_else(|| {
                            Failure::usage(format!(
                                "--set {}: {shown} is a list of {length}; `{part}` is not an index in it",
                                path.join(".")
                            ))
                        })?
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "--set {}: {shown} is a single value, not an object with fields",
                        path.join(".")
                    )));
                }
            };
        }
        *at = value.clone();
    }
    Ok(())
}

/// The endpoint URL, parsed; only plain http (this tool is built without TLS).
fn check_url(url: &str) -> Result<reqwest::Url, Failure> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| Failure::usage(format!("`{url}` is not a valid URL: {error}")))?;
    match parsed.scheme() {
        "http" => Ok(parsed),
        "https" => Err(Failure::usage(format!(
            "`{url}`: this tool sends plain http only (it is built without TLS); use an http:// URL, e.g. {DEFAULT_WEBHOOK_URL}"
        ))),
        scheme => Err(Failure::usage(format!(
            "`{url}`: unsupported scheme `{scheme}`; use an http:// URL, e.g. {DEFAULT_WEBHOOK_URL}"
        ))),
    }
}

/// The secret to sign with: `--secret` or the environment (the first of a comma-separated
/// rotation list, as the server reads it), else the test secret.
fn secret(args: &Args) -> Result<String, Failure> {
    let Some(given) = &args.secret else {
        return Ok(TEST_SECRET.to_owned());
    };
    // The library's reading of the list, so that the first secret is the one the server has.
    nextgen_events::Secret::split_list(given)
        .next()
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::usage(format!(
                "the secret (from --secret or {SECRET_ENV}) is empty: pass the endpoint's `whsec_...` secret"
            ))
        })
}

/// A fresh sample of a catalog event type, with `--id` and `--set` applied.
fn from_sample(
    args: &Args,
    settings: &[(Vec<String>, Value)],
) -> Result<(String, String, Vec<u8>), Failure> {
    let Some(event_type) = &args.event_type else {
        return Err(Failure::usage(
            "name an event type to send, such as `charge.succeeded` (see --list)",
        ));
    };
    let mut event = sample(event_type).ok_or_else(|| unknown_event_type(event_type))?;
    if let Some(id) = &args.id {
        event["id"] = Value::String(checked_id(id)?);
    }
    apply(&mut event, settings)?;
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    Ok((event_type.clone(), id, sample_body(&event)))
}

/// The `--data` file: sent as read, or re-serialized with `--id` and `--set` applied.
fn from_file(
    path: &Path,
    args: &Args,
    settings: &[(Vec<String>, Value)],
) -> Result<(String, String, Vec<u8>), Failure> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|error| Failure::usage(format!("could not read --data {shown}: {error}")))?;
    let event: UntypedEvent = Event::from_slice(&bytes)
        .map_err(|error| Failure::usage(format!("--data {shown}: {error}")))?;
    if let Some(expected) = args.event_type.as_ref().filter(|t| **t != event.event_type) {
        return Err(Failure::usage(format!(
            "--data {shown} holds a `{}` event, not `{expected}`: leave the event type out to send the file as it is",
            event.event_type
        )));
    }
    if args.id.is_none() && settings.is_empty() {
        return Ok((event.event_type, event.id, bytes));
    }
    let mut json: Value = serde_json::from_slice(&bytes)
        .map_err(|error| Failure::usage(format!("--data {shown}: {error}")))?;
    if let Some(id) = &args.id {
        json["id"] = Value::String(checked_id(id)?);
    }
    apply(&mut json, settings)?;
    let id = json["id"].as_str().unwrap_or_default().to_owned();
    let body = serde_json::to_vec_pretty(&json)
        .map_err(|error| Failure::usage(format!("--data {shown}: {error}")))?;
    Ok((event.event_type, id, body))
}

fn checked_id(id: &str) -> Result<String, Failure> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Failure::usage(
            "--id is empty: pass an event id such as `evt_test_1`",
        ));
    }
    Ok(id.to_owned())
}

fn unknown_event_type(event_type: &str) -> Failure {
    let mut message = format!("`{event_type}` is not an event type of the catalog");
    if let Some(closest) = nextgen_events::catalog::suggest(event_type) {
        message.push_str(&format!("; did you mean `{closest}`?"));
    }
    message.push_str("\nThe catalog's event types:\n");
    message.push_str(&catalog_table("  "));
    // A type outside the catalog can still be sent from a file: the server acknowledges it.
    message.push_str("To send another type, write the event to a file and pass --data FILE.");
    Failure::usage(message)
}

fn request_failure(url: &reqwest::Url, error: &reqwest::Error) -> Failure {
    let cause = root_cause(error);
    if error.is_connect() {
        Failure::failed(format!(
            "could not connect to {url} ({cause}): the server is not running at {url}; start it with `{SERVER_COMMAND}`, or pass the right --url"
        ))
    } else if error.is_timeout() {
        Failure::failed(format!(
            "{url} did not answer within {} s",
            TIMEOUT.as_secs()
        ))
    } else {
        Failure::failed(format!("the request to {url} failed: {error} ({cause})"))
    }
}

/// The innermost error, which says what actually went wrong ("Connection refused", ...).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// What to do about an error answer, from its `error.code`.
fn hint(body: &str) -> Option<&'static str> {
    let answer: Value = serde_json::from_str(body).ok()?;
    let code = answer["error"]["code"].as_str()?;
    Some(match code {
        "signature_mismatch" => {
            "the signature did not match: sign with the server's secret (--secret, or NEXTGEN_WEBHOOK_SECRET)"
        }
        "timestamp_outside_tolerance" => {
            "the signature's timestamp was rejected: check this machine's and the server's clocks"
        }
        "handler_failed" => {
            "a handler failed: see the server's log; NextGen would deliver the event again"
        }
        "payload_mismatch" => "the event's data.object does not fit the event type's payload type",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn args(line: &[&str]) -> Args {
        match Args::try_parse_from(std::iter::once("trigger").chain(line.iter().copied())) {
            Ok(args) => args,
            Err(error) => panic!("{line:?}: {error}"),
        }
    }

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
        assert!(Args::try_parse_from(["trigger"]).is_err());
        assert!(args(&["--list"]).list);
        assert_eq!(args(&["--data", "e.json"]).event_type, None);
        let parsed = args(&["charge.failed", "--id", "evt_1"]);
        assert_eq!(parsed.url, DEFAULT_WEBHOOK_URL);
        assert_eq!(parsed.id.as_deref(), Some("evt_1"));
    }

    #[test]
    fn secret_takes_the_first_of_a_rotation_list() {
        let mut parsed = args(&["charge.failed"]);
        parsed.secret = Some(" whsec_new , whsec_old".into());
        assert_eq!(secret(&parsed).ok().as_deref(), Some("whsec_new"));
        parsed.secret = Some(" , ".into());
        assert!(secret(&parsed).is_err());
        parsed.secret = None;
        assert_eq!(secret(&parsed).ok().as_deref(), Some(TEST_SECRET));
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(check_url("http://127.0.0.1:8080/webhook").is_ok());
        assert!(check_url("https://example.com/webhook").is_err());
        assert!(check_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn sample_with_id_is_signed_as_sent() {
        let parsed = args(&["refund.created", "--id", "evt_fixed"]);
        let Ok((event_type, id, body)) = from_sample(&parsed, &[]) else {
            panic!("no sample");
        };
        assert_eq!(
            (event_type.as_str(), id.as_str()),
            ("refund.created", "evt_fixed")
        );
        let header = sign(&body, TEST_SECRET, 1_713_745_200);
        let verifier = nextgen_events::Verifier::new(TEST_SECRET);
        assert!(verifier.verify_at(&body, &header, 1_713_745_200).is_ok());
        let unknown = args(&["refund.craeted"]);
        let Err(failure) = from_sample(&unknown, &[]) else {
            panic!("unknown type accepted");
        };
        assert_eq!(failure.status, 2);
        assert!(failure.message.contains("did you mean `refund.created`?"));
    }

    #[test]
    fn settings_parse_json_values_or_strings() {
        let parsed = |setting| {
            parse_setting(setting)
                .ok()
                .map(|(path, value)| (path.join("/"), value))
        };
        assert_eq!(
            parsed("data.object.amount=500"),
            Some(("data/object/amount".to_owned(), Value::from(500)))
        );
        assert_eq!(
            parsed("data.object.currency=eur"),
            Some(("data/object/currency".to_owned(), Value::from("eur")))
        );
        assert_eq!(
            parsed("data.object.metadata={\"a\":\"b\"}").map(|(_, value)| value),
            Some(serde_json::json!({"a": "b"}))
        );
        assert!(parse_setting("data..amount=1").is_err());
    }

    #[test]
    fn hints_name_the_fix() {
        let body = r#"{"error":{"code":"signature_mismatch","message":"...","type":"invalid_request_error"}}"#;
        assert!(hint(body).is_some_and(|hint| hint.contains("--secret")));
        assert_eq!(hint("not json"), None);
    }
}
