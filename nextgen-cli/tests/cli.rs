//! The `nextgen` binary as a user runs it: `sign`, then `verify`, with their exit statuses.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use nextgen_tests::services::TempFile;

fn nextgen(args: &[&str], secret_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nextgen"));
    command.args(args).env_remove("NEXTGEN_WEBHOOK_SECRET");
    if let Some(secret) = secret_env {
        command.env("NEXTGEN_WEBHOOK_SECRET", secret);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The body in a file of its own, removed when the test ends, pass or fail.
fn body_file(body: &str) -> TempFile {
    let file = TempFile::new("cli-body");
    std::fs::write(&file.0, body).unwrap();
    file
}

#[test]
fn sign_then_verify_round_trips_and_a_wrong_secret_exits_1_with_the_reason() {
    let file = body_file(r#"{"id":"evt_cli","type":"charge.succeeded"}"#);
    let body = file.0.to_str().unwrap();
    let signed = nextgen(
        &[
            "sign",
            "--body",
            body,
            "--secret",
            "whsec_cli",
            "--timestamp",
            "1713745200",
        ],
        None,
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let header = String::from_utf8(signed.stdout).unwrap().trim().to_owned();
    assert!(header.starts_with("t=1713745200,v1="), "{header}");

    let verified = nextgen(
        &[
            "verify",
            "--body",
            body,
            "--header",
            &header,
            "--now",
            "1713745260",
        ],
        Some("whsec_old,whsec_cli"),
    );
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(
        text(&verified).contains("secret 2 of 2"),
        "{}",
        text(&verified)
    );

    let wrong = nextgen(
        &[
            "verify",
            "--body",
            body,
            "--header",
            &header,
            "--now",
            "1713745260",
            "--secret",
            "whsec_other",
        ],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("the secret did not sign this body"),
        "{}",
        text(&wrong)
    );
}

#[test]
fn no_secret_is_a_usage_error() {
    let body = body_file("{}");
    let output = nextgen(
        &[
            "verify",
            "--body",
            body.0.to_str().unwrap(),
            "--header",
            "t=1,v1=00",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("NEXTGEN_WEBHOOK_SECRET"),
        "{}",
        text(&output)
    );
}

/// `NEXTGEN_WEBHOOK_SECRET` as the server reads it (`WebhookConfig::from_env`): a rotation list
/// written with spaces after the commas verifies with either secret, and `sign` signs with the
/// first one, not with its space.
#[test]
fn the_secret_list_is_read_as_the_server_reads_it() {
    let file = body_file(r#"{"id":"evt_cli_list","type":"charge.succeeded"}"#);
    let body = file.0.to_str().unwrap();
    let list = " whsec_new , whsec_old ";
    let signed = nextgen(
        &["sign", "--body", body, "--timestamp", "1713745200"],
        Some(list),
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let header = String::from_utf8(signed.stdout).unwrap().trim().to_owned();
    assert_eq!(
        header,
        nextgen_events::sign(
            br#"{"id":"evt_cli_list","type":"charge.succeeded"}"#,
            "whsec_new",
            1_713_745_200
        )
    );
    let old = nextgen_events::sign(
        br#"{"id":"evt_cli_list","type":"charge.succeeded"}"#,
        "whsec_old",
        1_713_745_200,
    );
    let verified = nextgen(
        &[
            "verify",
            "--body",
            body,
            "--header",
            &old,
            "--now",
            "1713745260",
        ],
        Some(list),
    );
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(
        text(&verified).contains("secret 2 of 2"),
        "{}",
        text(&verified)
    );
}

/// A header copied with something multi-byte where the header's name would end is no
/// header, and says so: it used to panic slicing inside the character.
#[test]
fn a_header_cut_inside_a_character_is_refused_not_a_panic() {
    let file = body_file("{}");
    for header in ["NextGen-Signatur€x", "…", "t=1713745200,v1=ab…"] {
        let output = nextgen(
            &[
                "verify",
                "--body",
                file.0.to_str().unwrap(),
                "--header",
                header,
                "--secret",
                "whsec_a",
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(1), "{header}: {}", text(&output));
        assert!(!text(&output).contains("panicked"), "{}", text(&output));
    }
}
