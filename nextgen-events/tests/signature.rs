//! The `NextGen-Signature` scheme from the outside: known-answer vectors, one test per error
//! variant, lenient header parsing, key rotation, tolerance edges, binary bodies, secret
//! hygiene of every error and `Debug` output, and sign/verify properties.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use nextgen_events::{
    HeaderProblem, Secret, SignatureError, SignatureHeader, Verifier, sign, verify,
};

const DEFAULT_TOLERANCE: Duration = Verifier::DEFAULT_TOLERANCE;
const MAX_HEADER_LEN: usize = SignatureHeader::MAX_LEN;
const MAX_SIGNATURES: usize = SignatureHeader::MAX_SIGNATURES;
use proptest::prelude::*;
use serde_json::Value;

/// A secret distinctive enough that finding it in an output cannot be a coincidence.
const SECRET: &str = "whsec_hyg13ne_S3cr3t_K3y";
/// A second, equally distinctive secret (rotation).
const OTHER_SECRET: &str = "whsec_r0tat3d_N3w_K3y_x9";
/// A secret that is not configured anywhere.
const FOREIGN_SECRET: &str = "whsec_f0r31gn_Unkn0wn_K3y";
/// "Now" in most tests.
const NOW: u64 = 1_713_745_200;
const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"charge.succeeded"}"#;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/signatures.json"
));

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The `v1` hex of `sign(body, secret, timestamp)`.
fn v1(body: &[u8], secret: &str, timestamp: u64) -> String {
    let header = sign(body, secret, timestamp);
    let prefix = format!("t={timestamp},v1=");
    assert!(
        header.starts_with(&prefix),
        "sign() returned {header:?}, expected it to start with {prefix:?}"
    );
    header[prefix.len()..].to_owned()
}

/// Strings that must never appear in an error or `Debug` output of `verifier`: each configured
/// secret (as configured, trimmed, and without its `whsec_` prefix), and the expected signature
/// (and its first 16 hex digits) for `body` with each secret, at `now` and at the header's
/// timestamp when it has one.
fn forbidden(verifier: &Verifier, body: &[u8], header: &str, now: u64) -> Vec<String> {
    let mut timestamps = vec![now];
    if let Ok(parsed) = SignatureHeader::parse(header) {
        timestamps.push(parsed.timestamp());
    }
    let mut out = Vec::new();
    for secret in verifier.secrets() {
        let secret = String::from_utf8(secret.expose().to_vec()).unwrap();
        for piece in [
            secret.as_str(),
            secret.trim(),
            secret.trim().trim_start_matches("whsec_"),
        ] {
            if piece.len() >= 6 {
                out.push(piece.to_owned());
            }
        }
        for &timestamp in &timestamps {
            let expected = v1(body, &secret, timestamp);
            out.push(expected[..16].to_owned());
            out.push(expected);
        }
    }
    out
}

fn assert_clean(what: &str, output: &str, forbidden: &[String]) {
    for needle in forbidden {
        assert!(
            !output.contains(needle.as_str()),
            "{what} leaks {needle:?}: {output}"
        );
    }
}

fn assert_error_clean(error: &SignatureError, forbidden: &[String]) {
    assert_clean("Display", &error.to_string(), forbidden);
    assert_clean("Debug", &format!("{error:?}"), forbidden);
    assert_clean("Debug (pretty)", &format!("{error:#?}"), forbidden);
}

/// `verifier.verify_at(..)`, checking that any error it returns leaks nothing.
fn check(verifier: &Verifier, body: &[u8], header: &str, now: u64) -> Result<u64, SignatureError> {
    let result = verifier.verify_at(body, header, now);
    if let Err(error) = &result {
        assert_error_clean(error, &forbidden(verifier, body, header, now));
    }
    result
}

/// `check` that must fail; returns the error.
fn check_err(verifier: &Verifier, body: &[u8], header: &str, now: u64) -> SignatureError {
    match check(verifier, body, header, now) {
        Ok(timestamp) => {
            panic!("header {header:?} verified (timestamp {timestamp}), expected an error")
        }
        Err(error) => error,
    }
}

fn verifier() -> Verifier {
    Verifier::new(SECRET)
}

/// The header problem of a `MalformedHeader` error, for `BODY` verified at `NOW`.
fn malformed(header: &str) -> HeaderProblem {
    match check_err(&verifier(), BODY, header, NOW) {
        SignatureError::MalformedHeader(problem) => problem,
        other => panic!("header {header:?}: expected MalformedHeader, got {other:?}"),
    }
}

fn assert_malformed_message(error: &SignatureError) {
    assert_eq!(error.code(), "signature_malformed");
    let message = error.to_string();
    assert!(message.contains("malformed"), "{message}");
    assert!(message.contains("NextGen-Signature"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Known-answer vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn every_known_answer_vector_signs_and_verifies() {
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty(), "signatures.json holds no vectors");

    let mut checked = 0;
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let secret = vector["secret"].as_str().unwrap();
        let timestamp = vector["timestamp"].as_u64().unwrap();
        let payload = vector["payload"].as_str().unwrap().as_bytes();
        let signature = vector["signature"].as_str().unwrap();
        let header = format!("t={timestamp},v1={signature}");

        assert_eq!(
            sign(payload, secret, timestamp),
            header,
            "vector {name}: sign() differs"
        );
        assert_eq!(
            Verifier::new(secret).verify_at(payload, &header, timestamp),
            Ok(timestamp),
            "vector {name}: verify_at() with the clock at the timestamp"
        );
        assert_eq!(
            Verifier::new(secret)
                .with_clock(move || timestamp)
                .verify(payload, &header),
            Ok(timestamp),
            "vector {name}: verify() with an injected clock"
        );
        checked += 1;
    }
    assert!(checked > 0);
    assert_eq!(checked, vectors.len());
}

#[test]
fn free_verify_uses_the_system_clock() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = sign(BODY, SECRET, now);
    assert_eq!(verify(BODY, &header, SECRET), Ok(now));

    let stale = sign(BODY, SECRET, now - 3600);
    let error = verify(BODY, &stale, SECRET).unwrap_err();
    assert_eq!(error.code(), "timestamp_outside_tolerance");
}

#[test]
fn sign_output_format() {
    let header = sign(BODY, SECRET, NOW);
    let signature = v1(BODY, SECRET, NOW);
    assert_eq!(signature.len(), 64);
    assert!(
        signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "not lowercase hex: {signature}"
    );
    let parsed = SignatureHeader::parse(&header).unwrap();
    assert_eq!(parsed.timestamp(), NOW);
    assert_eq!(parsed.signatures().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// One test per error variant
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_header_code_and_message() {
    let error = SignatureError::MissingHeader;
    assert_eq!(error.code(), "signature_missing");
    let message = error.to_string();
    assert!(message.contains("NextGen-Signature"), "{message}");
    assert!(message.contains("missing"), "{message}");
    assert_error_clean(&error, &forbidden(&verifier(), BODY, "", NOW));
}

#[test]
fn malformed_too_long() {
    let valid = sign(BODY, SECRET, NOW);
    // Exactly the limit is still read (padding with an ignored unknown scheme)...
    let pad = MAX_HEADER_LEN - valid.len() - ",x=".len();
    let at_limit = format!("{valid},x={}", "a".repeat(pad));
    assert_eq!(at_limit.len(), MAX_HEADER_LEN);
    assert_eq!(check(&verifier(), BODY, &at_limit, NOW), Ok(NOW));

    // ...one byte more is rejected before anything else.
    let too_long = format!("{at_limit}a");
    assert_eq!(
        malformed(&too_long),
        HeaderProblem::TooLong {
            len: MAX_HEADER_LEN + 1
        }
    );
    let error = check_err(&verifier(), BODY, &too_long, NOW);
    assert_malformed_message(&error);
    let message = error.to_string();
    assert!(
        message.contains(&(MAX_HEADER_LEN + 1).to_string()),
        "{message}"
    );
    assert!(message.contains(&MAX_HEADER_LEN.to_string()), "{message}");

    // Kilobytes of junk are rejected the same way.
    let junk = "x".repeat(64 * 1024);
    assert_eq!(malformed(&junk), HeaderProblem::TooLong { len: junk.len() });
}

#[test]
fn malformed_too_many_signatures() {
    let good = v1(BODY, SECRET, NOW);
    let bad = v1(BODY, FOREIGN_SECRET, NOW);

    // MAX_SIGNATURES entries are accepted, and the matching one may be the last.
    let mut entries = vec![format!("t={NOW}")];
    entries.extend((1..MAX_SIGNATURES).map(|_| format!("v1={bad}")));
    entries.push(format!("v1={good}"));
    let at_limit = entries.join(",");
    assert!(at_limit.len() <= MAX_HEADER_LEN);
    assert_eq!(check(&verifier(), BODY, &at_limit, NOW), Ok(NOW));

    // One more is rejected, even though one entry would match.
    let too_many = format!("{at_limit},v1={bad}");
    assert!(too_many.len() <= MAX_HEADER_LEN);
    assert_eq!(malformed(&too_many), HeaderProblem::TooManySignatures);
    let error = check_err(&verifier(), BODY, &too_many, NOW);
    assert_malformed_message(&error);
    assert!(
        error.to_string().contains(&MAX_SIGNATURES.to_string()),
        "{error}"
    );
}

#[test]
fn malformed_missing_equals() {
    let good = v1(BODY, SECRET, NOW);
    assert_eq!(
        malformed(&format!("t={NOW},v1{good}")),
        HeaderProblem::MissingEquals { element: 2 }
    );
    assert_eq!(
        malformed(&format!("garbage,t={NOW},v1={good}")),
        HeaderProblem::MissingEquals { element: 1 }
    );
    let error = check_err(&verifier(), BODY, &format!("t={NOW},v1={good},junk"), NOW);
    assert_eq!(
        error,
        SignatureError::MalformedHeader(HeaderProblem::MissingEquals { element: 3 })
    );
    assert_malformed_message(&error);
    assert!(error.to_string().contains("element 3"), "{error}");
}

#[test]
fn malformed_missing_timestamp() {
    let good = v1(BODY, SECRET, NOW);
    assert_eq!(
        malformed(&format!("v1={good}")),
        HeaderProblem::MissingTimestamp
    );
    assert_eq!(
        malformed(&format!("v0={good},v1={good},ts={NOW}")),
        HeaderProblem::MissingTimestamp
    );
    assert_eq!(malformed(""), HeaderProblem::MissingTimestamp);
    let error = check_err(&verifier(), BODY, &format!("v1={good}"), NOW);
    assert_malformed_message(&error);
    assert!(error.to_string().contains("`t=`"), "{error}");
}

#[test]
fn malformed_duplicate_timestamp() {
    let good = v1(BODY, SECRET, NOW);
    for header in [
        format!("t={NOW},t={NOW},v1={good}"),
        format!("t={NOW},v1={good},t={}", NOW + 1),
        format!("t=1,t={NOW},v1={good}"),
    ] {
        assert_eq!(
            malformed(&header),
            HeaderProblem::DuplicateTimestamp,
            "{header}"
        );
    }
    let error = check_err(
        &verifier(),
        BODY,
        &format!("t={NOW},t={NOW},v1={good}"),
        NOW,
    );
    assert_malformed_message(&error);
}

#[test]
fn malformed_invalid_timestamp() {
    let good = v1(BODY, SECRET, NOW);
    for t in [
        "abc",
        "-5",
        "+5",
        "",
        "99999999999999999999999",
        // u64::MAX + 1
        "18446744073709551616",
        "1.5",
        "1e9",
        "0x10",
    ] {
        let header = format!("t={t},v1={good}");
        assert_eq!(
            malformed(&header),
            HeaderProblem::InvalidTimestamp,
            "t={t:?}"
        );
        let error = check_err(&verifier(), BODY, &header, NOW);
        assert_malformed_message(&error);
        assert!(error.to_string().contains("`t`"), "{error}");
    }
}

#[test]
fn largest_timestamp_is_valid() {
    let header = sign(BODY, SECRET, u64::MAX);
    assert_eq!(check(&verifier(), BODY, &header, u64::MAX), Ok(u64::MAX));
    // Far from "now", it is rejected by the tolerance check, without overflow.
    let error = check_err(&verifier(), BODY, &header, 0);
    assert_eq!(error.code(), "timestamp_outside_tolerance");
}

#[test]
fn a_skew_beyond_i64_saturates_on_its_own_side() {
    // A skew that does not fit in an i64 is reported as the extreme of its own sign, so the
    // message still says whether the timestamp is in the past or in the future.
    let tolerance = DEFAULT_TOLERANCE.as_secs();
    let future = sign(BODY, SECRET, u64::MAX);
    assert_eq!(
        check_err(&verifier(), BODY, &future, 0),
        SignatureError::TimestampOutsideTolerance {
            timestamp: u64::MAX,
            skew: i64::MIN,
            tolerance,
        }
    );
    let message = check_err(&verifier(), BODY, &future, 0).to_string();
    assert!(message.contains(" s in the future"), "{message}");

    let past = sign(BODY, SECRET, 0);
    assert_eq!(
        check_err(&verifier(), BODY, &past, u64::MAX),
        SignatureError::TimestampOutsideTolerance {
            timestamp: 0,
            skew: i64::MAX,
            tolerance,
        }
    );
    let message = check_err(&verifier(), BODY, &past, u64::MAX).to_string();
    assert!(message.contains(" s in the past"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// The timestamp is MACed as the text the header sends, not as our formatting of the number
// ---------------------------------------------------------------------------------------------

/// The lowercase hex HMAC-SHA256 of `"<timestamp_text>.<body>"`, computed here with the `hmac`
/// crate directly (not through `sign`), so a test can sign any spelling of `t`.
fn mac_over_text(secret: &str, timestamp_text: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp_text.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn mac_over_text_agrees_with_sign_for_the_canonical_spelling() {
    assert_eq!(
        mac_over_text(SECRET, &NOW.to_string(), BODY),
        v1(BODY, SECRET, NOW)
    );
}

#[test]
fn leading_zeros_in_t_are_another_message_not_the_same_signature() {
    // `t=0<now>` parses to the same number, but the sender signed the text it sent: a
    // signature over the canonical `<now>` does not match, and one over `0<now>` does.
    let canonical = v1(BODY, SECRET, NOW);
    for zeros in ["0", "00", "0000000000"] {
        let text = format!("{zeros}{NOW}");
        assert_eq!(
            SignatureHeader::parse(&format!("t={text},v1={canonical}"))
                .unwrap()
                .timestamp(),
            NOW
        );

        let header = format!("t={text},v1={canonical}");
        assert_eq!(
            check_err(&verifier(), BODY, &header, NOW),
            SignatureError::NoMatch {
                secrets: 1,
                secret_has_whitespace: false,
            },
            "{header}: a signature over {NOW:?} verified against t={text:?}"
        );

        let as_sent = format!("t={text},v1={}", mac_over_text(SECRET, &text, BODY));
        assert_eq!(
            check(&verifier(), BODY, &as_sent, NOW),
            Ok(NOW),
            "{as_sent}: a signature over the text as sent must verify"
        );
        // ...and that signature does not verify under the canonical spelling either.
        let canonical_t = format!("t={NOW},v1={}", mac_over_text(SECRET, &text, BODY));
        assert_eq!(
            check_err(&verifier(), BODY, &canonical_t, NOW).code(),
            "signature_mismatch",
            "{canonical_t}"
        );
    }
    // `t=0` is canonical for zero; `t=00` is not.
    let zero = v1(BODY, SECRET, 0);
    assert_eq!(
        check(&verifier(), BODY, &format!("t=0,v1={zero}"), 0),
        Ok(0)
    );
    assert_eq!(
        check_err(&verifier(), BODY, &format!("t=00,v1={zero}"), 0).code(),
        "signature_mismatch"
    );
}

#[test]
fn signed_or_spaced_spellings_of_t() {
    let canonical = v1(BODY, SECRET, NOW);
    // A sign is not a spelling the parser accepts: malformed, whichever text it was MACed over.
    for text in [format!("+{NOW}"), format!("+0{NOW}"), format!("-{NOW}")] {
        for signature in [canonical.clone(), mac_over_text(SECRET, &text, BODY)] {
            let header = format!("t={text},v1={signature}");
            assert_eq!(
                malformed(&header),
                HeaderProblem::InvalidTimestamp,
                "{header}"
            );
        }
    }
    // Whitespace around the value is not part of it: trimmed, the text is the canonical one.
    let header = format!("t= {NOW} ,v1={canonical}");
    assert_eq!(check(&verifier(), BODY, &header, NOW), Ok(NOW));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_leading_zeros_in_t_do_not_verify_a_canonical_signature(
        body in body_strategy(0),
        secret in secret_strategy(),
        timestamp in any::<u64>(),
        zeros in 1_usize..=24,
    ) {
        let canonical = v1(&body, &secret, timestamp);
        let text = format!("{}{timestamp}", "0".repeat(zeros));
        let header = format!("t={text},v1={canonical}");
        // Even with every timestamp in tolerance, only the MAC decides.
        let verifier = Verifier::new(secret.as_str()).with_tolerance(Duration::from_secs(u64::MAX));
        prop_assert_eq!(SignatureHeader::parse(&header).unwrap().timestamp(), timestamp);
        let result = verifier.verify_at(&body, &header, timestamp);
        prop_assert!(
            matches!(result, Err(SignatureError::NoMatch { .. })),
            "{}: {:?}", header, result
        );
        // The signature over the text as sent verifies, as the same timestamp.
        let as_sent = format!("t={text},v1={}", mac_over_text(&secret, &text, &body));
        prop_assert_eq!(verifier.verify_at(&body, &as_sent, timestamp), Ok(timestamp));
    }
}

#[test]
fn malformed_invalid_hex() {
    let good = v1(BODY, SECRET, NOW);
    let not_hex = format!("zz{}", &good[2..]);
    assert_eq!(
        malformed(&format!("t={NOW},v1={not_hex}")),
        HeaderProblem::InvalidHex { element: 2 }
    );
    assert_eq!(
        malformed(&format!("v1={good},t={NOW},v1=not-hex")),
        HeaderProblem::InvalidHex { element: 3 }
    );
    // A `0x` prefix is not part of the scheme, with or without the 64 digits after it.
    for prefixed in [format!("0x{good}"), format!("0x{}", &good[2..])] {
        assert_eq!(
            malformed(&format!("t={NOW},v1={prefixed}")),
            HeaderProblem::InvalidHex { element: 2 },
            "{prefixed}"
        );
    }
    // Non-ASCII is malformed too, without a panic on a char boundary.
    let accented = format!("é{}", &good[2..]);
    assert_eq!(
        malformed(&format!("t={NOW},v1={accented}")),
        HeaderProblem::NotAscii
    );
    let error = check_err(&verifier(), BODY, &format!("t={NOW},v1={not_hex}"), NOW);
    assert_malformed_message(&error);
    let message = error.to_string();
    assert!(message.contains("element 2"), "{message}");
    assert!(message.contains("hexadecimal"), "{message}");
}

#[test]
fn malformed_wrong_length() {
    let good = v1(BODY, SECRET, NOW);
    for (value, digits) in [
        (good[..63].to_owned(), 63),
        (format!("{good}0"), 65),
        (good[..32].to_owned(), 32),
        (format!("{good}{good}"), 128),
        (String::new(), 0),
    ] {
        assert_eq!(
            malformed(&format!("t={NOW},v1={value}")),
            HeaderProblem::WrongLength { element: 2, digits },
            "{digits} digits"
        );
    }
    let error = check_err(
        &verifier(),
        BODY,
        &format!("t={NOW},v1={}", &good[..63]),
        NOW,
    );
    assert_malformed_message(&error);
    let message = error.to_string();
    assert!(message.contains("63"), "{message}");
    assert!(message.contains("64"), "{message}");
}

#[test]
fn no_v1_signature() {
    let good = v1(BODY, SECRET, NOW);
    for header in [
        format!("t={NOW},v0={good}"),
        format!("t={NOW}"),
        format!("t={NOW},foo=bar,v2={good}"),
        format!("t={NOW},V1={good}"),
    ] {
        let error = check_err(&verifier(), BODY, &header, NOW);
        assert_eq!(error, SignatureError::NoV1Signature, "{header}");
        assert_eq!(error.code(), "signature_no_v1");
        assert!(error.to_string().contains("v1"), "{error}");
    }
}

#[test]
fn timestamp_outside_tolerance_in_the_past() {
    let header = sign(BODY, SECRET, NOW - 301);
    let error = check_err(&verifier(), BODY, &header, NOW);
    assert_eq!(
        error,
        SignatureError::TimestampOutsideTolerance {
            timestamp: NOW - 301,
            skew: 301,
            tolerance: 300,
        }
    );
    assert_eq!(error.code(), "timestamp_outside_tolerance");
    let message = error.to_string();
    assert!(message.contains("301 s"), "{message}");
    assert!(message.contains("past"), "{message}");
    assert!(!message.contains("future"), "{message}");
    assert!(message.contains("300"), "{message}");
}

#[test]
fn timestamp_outside_tolerance_in_the_future() {
    let header = sign(BODY, SECRET, NOW + 4000);
    let error = check_err(&verifier(), BODY, &header, NOW);
    assert_eq!(
        error,
        SignatureError::TimestampOutsideTolerance {
            timestamp: NOW + 4000,
            skew: -4000,
            tolerance: 300,
        }
    );
    let message = error.to_string();
    assert!(message.contains("4000 s"), "{message}");
    assert!(message.contains("future"), "{message}");
    assert!(!message.contains("past"), "{message}");
}

#[test]
fn no_match_hints_at_reserialization() {
    let header = sign(BODY, FOREIGN_SECRET, NOW);
    let error = check_err(&verifier(), BODY, &header, NOW);
    assert_eq!(
        error,
        SignatureError::NoMatch {
            secrets: 1,
            secret_has_whitespace: false,
        }
    );
    assert_eq!(error.code(), "signature_mismatch");
    let message = error.to_string();
    assert!(message.contains("re-serialized"), "{message}");
    assert!(message.contains("raw"), "{message}");
    assert!(!message.contains("whitespace"), "{message}");

    // A re-serialized body (pretty-printed) does not match the original's signature.
    let value: Value = serde_json::from_slice(BODY).unwrap();
    let reserialized = serde_json::to_vec_pretty(&value).unwrap();
    let header = sign(BODY, SECRET, NOW);
    let error = check_err(&verifier(), &reserialized, &header, NOW);
    assert_eq!(error.code(), "signature_mismatch");
}

#[test]
fn no_match_is_reported_before_the_timestamp() {
    // A forged header with a stale timestamp is a mismatch, not a clock problem.
    let header = sign(BODY, FOREIGN_SECRET, NOW - 100_000);
    let error = check_err(&verifier(), BODY, &header, NOW);
    assert_eq!(error.code(), "signature_mismatch");
}

#[test]
fn no_match_mentions_whitespace_around_the_secret() {
    for configured in [
        format!("{SECRET} "),
        format!("{SECRET}\n"),
        format!(" {SECRET}"),
        format!("\t{SECRET}\r\n"),
    ] {
        // The sender signed with the secret without the stray whitespace.
        let header = sign(BODY, SECRET, NOW);
        let verifier = Verifier::new(configured.as_str());
        let error = check_err(&verifier, BODY, &header, NOW);
        assert_eq!(
            error,
            SignatureError::NoMatch {
                secrets: 1,
                secret_has_whitespace: true,
            },
            "{configured:?}"
        );
        let message = error.to_string();
        assert!(message.contains("whitespace"), "{message}");
        // The secret is used byte for byte: signing with it as configured verifies.
        let header = sign(BODY, &configured, NOW);
        assert_eq!(check(&verifier, BODY, &header, NOW), Ok(NOW));
    }

    // With rotation, one whitespace-damaged secret among several is still pointed out.
    let verifier = Verifier::new(OTHER_SECRET).with_secret(format!("{SECRET} "));
    let error = check_err(&verifier, BODY, &sign(BODY, FOREIGN_SECRET, NOW), NOW);
    assert_eq!(
        error,
        SignatureError::NoMatch {
            secrets: 2,
            secret_has_whitespace: true,
        }
    );
    let message = error.to_string();
    assert!(message.contains("secrets"), "{message}");
    assert!(message.contains("whitespace"), "{message}");
}

#[test]
fn error_codes_are_distinct() {
    let good = v1(BODY, SECRET, NOW);
    let errors = [
        SignatureError::MissingHeader,
        check_err(&verifier(), BODY, &format!("v1={good}"), NOW),
        check_err(&verifier(), BODY, &format!("t={NOW},v0={good}"), NOW),
        check_err(&verifier(), BODY, &sign(BODY, SECRET, NOW - 1000), NOW),
        check_err(&verifier(), BODY, &sign(BODY, FOREIGN_SECRET, NOW), NOW),
    ];
    let codes: HashSet<&str> = errors.iter().map(SignatureError::code).collect();
    assert_eq!(codes.len(), errors.len(), "{codes:?}");
    // All malformed problems share one code, distinct from the others.
    assert_eq!(errors[1].code(), "signature_malformed");
    let messages: HashSet<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), errors.len());
}

// ---------------------------------------------------------------------------------------------
// Header leniency
// ---------------------------------------------------------------------------------------------

#[test]
fn elements_in_any_order() {
    let good = v1(BODY, SECRET, NOW);
    let bad = v1(BODY, FOREIGN_SECRET, NOW);
    for header in [
        format!("v1={good},t={NOW}"),
        format!("v1={bad},t={NOW},v1={good}"),
        format!("v0=abc,v1={good},foo=bar,t={NOW}"),
    ] {
        assert_eq!(check(&verifier(), BODY, &header, NOW), Ok(NOW), "{header}");
    }
}

/// The whitespace allowed around elements, keys and values is RFC 9110's `OWS`: spaces and
/// horizontal tabs (a tab-separated header verifies), nothing else.
#[test]
fn whitespace_around_elements_is_tolerated() {
    let good = v1(BODY, SECRET, NOW);
    for header in [
        format!(" t={NOW}, v1={good} "),
        format!("t={NOW} ,\tv1={good}"),
        format!("t = {NOW} , v1 = {good}"),
        format!("  v1={good}  ,  t={NOW}  "),
        format!("t={NOW},,v1={good},"),
        format!("\tt={NOW}\t,\tv1={good}\t"),
        format!("t\t=\t{NOW}\t,\t \tv1\t=\t{good}"),
    ] {
        assert_eq!(
            check(&verifier(), BODY, &header, NOW),
            Ok(NOW),
            "{header:?}"
        );
    }
}

/// Other ASCII whitespace (vertical tab, form feed, CR, LF) is not trimmed: an element whose
/// key starts with one is an unknown key, ignored as the reference SDKs ignore it, not a second
/// `t` (the `header` fuzz target's crash: it trimmed Unicode whitespace, the parser ASCII
/// whitespace, and they disagreed on `"\x0b t=abc"`).
#[test]
fn other_whitespace_is_part_of_the_key_or_value() {
    let good = v1(BODY, SECRET, NOW);
    for space in ["\x0b", "\x0c", "\r", "\n"] {
        // Beside a real `t`, a `t` behind a vertical tab is another key: ignored, no duplicate.
        let header = format!("{space} t=abc,t={NOW},v1={good}");
        let parsed = SignatureHeader::parse(&header).unwrap();
        assert_eq!(parsed.timestamp(), NOW, "{header:?}");
        assert_eq!(parsed.signatures().len(), 1, "{header:?}");
        assert_eq!(
            check(&verifier(), BODY, &header, NOW),
            Ok(NOW),
            "{header:?}"
        );
        // Alone, it leaves the header without a timestamp...
        let header = format!("{space}t={NOW},v1={good}");
        assert_eq!(
            malformed(&header),
            HeaderProblem::MissingTimestamp,
            "{header:?}"
        );
        // ...and after a value it is part of the value.
        let header = format!("t={NOW}{space},v1={good}");
        assert_eq!(
            malformed(&header),
            HeaderProblem::InvalidTimestamp,
            "{header:?}"
        );
        let header = format!("t={NOW},v1={good}{space}");
        assert_eq!(
            malformed(&header),
            HeaderProblem::InvalidHex { element: 2 },
            "{header:?}"
        );
    }
}

#[test]
fn unknown_schemes_are_ignored() {
    let good = v1(BODY, SECRET, NOW);
    for header in [
        format!("t={NOW},v0={good},v1={good}"),
        format!("t={NOW},v1={good},foo=bar"),
        format!("foo=bar,t={NOW},v0=not-hex-at-all,v1={good},v2=,x=1=2"),
    ] {
        assert_eq!(check(&verifier(), BODY, &header, NOW), Ok(NOW), "{header}");
    }
    // A `v0` holding the right signature does not count.
    let error = check_err(
        &verifier(),
        BODY,
        &format!("t={NOW},v0={good},v1={}", "0".repeat(64)),
        NOW,
    );
    assert_eq!(error.code(), "signature_mismatch");
}

#[test]
fn one_matching_v1_among_several_in_any_position() {
    let good = v1(BODY, SECRET, NOW);
    let foreign = v1(BODY, FOREIGN_SECRET, NOW);
    let zeros = "0".repeat(64);
    let cases = [
        format!("t={NOW},v1={good},v1={foreign},v1={zeros}"),
        format!("t={NOW},v1={foreign},v1={good},v1={zeros}"),
        format!("t={NOW},v1={foreign},v1={zeros},v1={good}"),
    ];
    for header in &cases {
        assert_eq!(check(&verifier(), BODY, header, NOW), Ok(NOW), "{header}");
        assert_eq!(
            SignatureHeader::parse(header).unwrap().signatures().len(),
            3
        );
    }
    let none = format!("t={NOW},v1={foreign},v1={zeros}");
    assert_eq!(
        check_err(&verifier(), BODY, &none, NOW).code(),
        "signature_mismatch"
    );
}

#[test]
fn a_matching_signature_sent_more_than_once_still_verifies() {
    // A sender that signs once per active secret repeats its signature when a rotation's old
    // and new secrets are the same value; any matching entry makes the delivery genuine, however
    // many others match too.
    let good = v1(BODY, SECRET, NOW);
    let foreign = v1(BODY, FOREIGN_SECRET, NOW);
    for header in [
        format!("t={NOW},v1={good},v1={good}"),
        format!("t={NOW},v1={good},v1={foreign},v1={good},v1={good}"),
    ] {
        assert_eq!(check(&verifier(), BODY, &header, NOW), Ok(NOW), "{header}");
    }
}

#[test]
fn parsed_header_keeps_signatures_in_order() {
    let first = v1(BODY, SECRET, NOW);
    let second = v1(BODY, OTHER_SECRET, NOW);
    let header = format!("v1={first}, v0=ff, t={NOW}, v1={second}");
    let parsed = SignatureHeader::parse(&header).unwrap();
    assert_eq!(parsed.timestamp(), NOW);
    let hexes: Vec<String> = parsed.signatures().iter().map(hex_encode).collect();
    assert_eq!(hexes, [first, second]);
    // Parsed once, verified through verify_parsed.
    assert_eq!(verifier().verify_parsed(BODY, &parsed, NOW), Ok(NOW));
}

fn hex_encode(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rotation_accepts_every_configured_secret() {
    let verifier = Verifier::new(SECRET).with_secret(OTHER_SECRET);
    assert_eq!(verifier.secrets().len(), 2);
    assert_eq!(
        check(&verifier, BODY, &sign(BODY, SECRET, NOW), NOW),
        Ok(NOW)
    );
    assert_eq!(
        check(&verifier, BODY, &sign(BODY, OTHER_SECRET, NOW), NOW),
        Ok(NOW)
    );
    let error = check_err(&verifier, BODY, &sign(BODY, FOREIGN_SECRET, NOW), NOW);
    assert_eq!(
        error,
        SignatureError::NoMatch {
            secrets: 2,
            secret_has_whitespace: false,
        }
    );

    // The sender signs with both secrets during a rotation; a receiver that knows only the new
    // one accepts, whichever position its signature is in.
    let old = v1(BODY, SECRET, NOW);
    let new = v1(BODY, OTHER_SECRET, NOW);
    let only_new = Verifier::new(OTHER_SECRET);
    for header in [
        format!("t={NOW},v1={old},v1={new}"),
        format!("t={NOW},v1={new},v1={old}"),
    ] {
        assert_eq!(check(&only_new, BODY, &header, NOW), Ok(NOW), "{header}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerance
// ---------------------------------------------------------------------------------------------

#[test]
fn default_tolerance_edges_both_directions() {
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
    assert_eq!(verifier().tolerance(), DEFAULT_TOLERANCE);
    let tolerance = DEFAULT_TOLERANCE.as_secs();

    for timestamp in [NOW - tolerance, NOW, NOW + tolerance] {
        let header = sign(BODY, SECRET, timestamp);
        assert_eq!(
            check(&verifier(), BODY, &header, NOW),
            Ok(timestamp),
            "timestamp {timestamp}"
        );
    }
    for (timestamp, skew) in [(NOW - tolerance - 1, 301), (NOW + tolerance + 1, -301)] {
        let header = sign(BODY, SECRET, timestamp);
        assert_eq!(
            check_err(&verifier(), BODY, &header, NOW),
            SignatureError::TimestampOutsideTolerance {
                timestamp,
                skew,
                tolerance,
            }
        );
    }
}

#[test]
fn custom_tolerance_edges_both_directions() {
    let verifier = verifier().with_tolerance(Duration::from_secs(10));
    assert_eq!(verifier.tolerance(), Duration::from_secs(10));

    for timestamp in [NOW - 10, NOW + 10] {
        let header = sign(BODY, SECRET, timestamp);
        assert_eq!(check(&verifier, BODY, &header, NOW), Ok(timestamp));
    }
    for (timestamp, skew) in [(NOW - 11, 11), (NOW + 11, -11)] {
        let header = sign(BODY, SECRET, timestamp);
        let error = check_err(&verifier, BODY, &header, NOW);
        assert_eq!(
            error,
            SignatureError::TimestampOutsideTolerance {
                timestamp,
                skew,
                tolerance: 10,
            }
        );
        let message = error.to_string();
        assert!(message.contains("11 s"), "{message}");
        assert!(message.contains("10 s"), "{message}");
    }

    // A larger tolerance accepts what the default refuses.
    let lenient = Verifier::new(SECRET).with_tolerance(Duration::from_secs(3600));
    let header = sign(BODY, SECRET, NOW - 3600);
    assert_eq!(check(&lenient, BODY, &header, NOW), Ok(NOW - 3600));
    assert!(check(&lenient, BODY, &sign(BODY, SECRET, NOW + 3601), NOW).is_err());
}

#[test]
fn zero_tolerance_accepts_only_the_exact_second() {
    let verifier = verifier().with_tolerance(Duration::ZERO);
    let header = sign(BODY, SECRET, NOW);
    assert_eq!(check(&verifier, BODY, &header, NOW), Ok(NOW));
    assert_eq!(
        check_err(&verifier, BODY, &header, NOW + 1).code(),
        "timestamp_outside_tolerance"
    );
    assert_eq!(
        check_err(&verifier, BODY, &header, NOW - 1).code(),
        "timestamp_outside_tolerance"
    );
}

#[test]
fn injected_clock_drives_verify() {
    let header = sign(BODY, SECRET, NOW);
    let on_time = verifier().with_clock(|| NOW + 300);
    assert_eq!(on_time.now(), NOW + 300);
    assert_eq!(on_time.verify(BODY, &header), Ok(NOW));

    let late = verifier().with_clock(|| NOW + 301);
    let error = late.verify(BODY, &header).unwrap_err();
    assert_eq!(
        error,
        SignatureError::TimestampOutsideTolerance {
            timestamp: NOW,
            skew: 301,
            tolerance: 300,
        }
    );
    // verify_at ignores the clock: a queued event is checked against its arrival time.
    assert_eq!(late.verify_at(BODY, &header, NOW + 5), Ok(NOW));
}

// ---------------------------------------------------------------------------------------------
// Binary bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn non_utf8_body_is_signed_byte_exactly() {
    let secret = "whsec_b1nary_K3y";
    let body = [0xff_u8, 0xfe, 0x00, 0x80];
    // 0xff and 0xfe never occur in UTF-8; 0x80 is a lone continuation byte.

    let header = sign(&body, secret, NOW);
    // Computed independently: Python's hmac.new(b"whsec_b1nary_K3y",
    // b"1713745200." + bytes([0xff, 0xfe, 0x00, 0x80]), hashlib.sha256).hexdigest()
    assert_eq!(
        header,
        "t=1713745200,v1=dd183d65192d2dcf8a28467e836e31774c237358f7f8b2d07ce1c6cf164bba80"
    );
    let verifier = Verifier::new(secret);
    assert_eq!(check(&verifier, &body, &header, NOW), Ok(NOW));

    for index in 0..body.len() {
        let mut changed = body;
        changed[index] ^= 0x01;
        let error = check_err(&verifier, &changed, &header, NOW);
        assert_eq!(error.code(), "signature_mismatch", "byte {index}");
    }
    // Truncated and extended bodies fail too.
    assert!(check(&verifier, &body[..3], &header, NOW).is_err());
    assert!(check(&verifier, &[0xff, 0xfe, 0x00, 0x80, 0x00], &header, NOW).is_err());
}

// ---------------------------------------------------------------------------------------------
// Secret hygiene
// ---------------------------------------------------------------------------------------------

#[test]
fn debug_of_verifier_and_secret_hides_secrets() {
    let whitespace_secret = format!("{OTHER_SECRET} ");
    let no_prefix = "n0_pr3fix_S3cr3t_value";
    let verifier = Verifier::new(SECRET)
        .with_secret(whitespace_secret.as_str())
        .with_secret(no_prefix)
        .with_tolerance(Duration::from_secs(42))
        .with_clock(|| NOW);
    let forbidden = forbidden(&verifier, BODY, &sign(BODY, SECRET, NOW), NOW);
    assert!(forbidden.iter().any(|f| f == no_prefix));

    let debug = format!("{verifier:?}");
    assert_clean("Verifier Debug", &debug, &forbidden);
    assert_clean(
        "Verifier Debug (pretty)",
        &format!("{verifier:#?}"),
        &forbidden,
    );
    assert!(debug.contains("Verifier"), "{debug}");
    assert!(debug.contains("42"), "tolerance shown: {debug}");

    for secret in [SECRET, whitespace_secret.as_str(), no_prefix] {
        let wrapped = Secret::new(secret);
        assert_eq!(wrapped.expose(), secret.as_bytes());
        assert_clean("Secret Debug", &format!("{wrapped:?}"), &forbidden);
        assert_clean(
            "Secret Debug (pretty)",
            &format!("{wrapped:#?}"),
            &forbidden,
        );
        assert_clean(
            "Secret Debug via From<&str>",
            &format!("{:?}", Secret::from(secret)),
            &forbidden,
        );
        assert_clean(
            "Secret Debug via From<String>",
            &format!("{:?}", Secret::from(secret.to_owned())),
            &forbidden,
        );
    }
}

#[test]
fn debug_of_a_secret_names_only_its_kind() {
    // What a log line shows of a configured secret: that it is one, and whether it has the
    // `whsec_` prefix NextGen's secrets have (a quick check that the right value was set).
    for secret in [SECRET, OTHER_SECRET, "whsec_"] {
        assert_eq!(format!("{:?}", Secret::new(secret)), "Secret(\"whsec_…\")");
    }
    for secret in [
        "n0_pr3fix_S3cr3t_value",
        " whsec_leading_space",
        "WHSEC_upper",
        "",
    ] {
        assert_eq!(format!("{:?}", Secret::new(secret)), "Secret(\"…\")");
    }
}

#[test]
fn debug_of_a_parsed_header_shows_its_timestamp_and_count_not_its_signatures() {
    let first = v1(BODY, SECRET, NOW);
    let second = v1(BODY, OTHER_SECRET, NOW);
    let header = format!("t={NOW},v1={first},v1={second}");
    let parsed = SignatureHeader::parse(&header).unwrap();
    let debug = format!("{parsed:?}");
    assert_eq!(
        debug,
        format!("SignatureHeader {{ timestamp: {NOW}, signatures: 2 }}")
    );
    assert_clean(
        "SignatureHeader Debug (pretty)",
        &format!("{parsed:#?}"),
        &[first[..16].to_owned(), second[..16].to_owned()],
    );
}

#[test]
fn every_error_of_a_rotating_verifier_is_clean() {
    // The `check` helper already asserts hygiene on every error in this file; this test adds
    // a verifier with several secrets and every failure class against it.
    let verifier = Verifier::new(SECRET)
        .with_secret(format!("{OTHER_SECRET}\n"))
        .with_tolerance(Duration::from_secs(5));
    let good = v1(BODY, SECRET, NOW);
    let headers = [
        format!("t={NOW},v1={}", &good[..40]),
        format!("t={NOW},v0={good}"),
        sign(BODY, SECRET, NOW - 6),
        sign(BODY, SECRET, NOW + 6),
        sign(BODY, FOREIGN_SECRET, NOW),
        sign(b"other body", SECRET, NOW),
    ];
    let mut codes = HashSet::new();
    for header in &headers {
        codes.insert(check_err(&verifier, BODY, header, NOW).code());
    }
    assert_eq!(codes.len(), 4, "{codes:?}");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Secrets a configuration accepts: not empty and not only whitespace (those are refused,
/// `SignatureError::BlankSecret`, see `tests/tests/hardening.rs`).
fn secret_strategy() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("a secret that is not blank", |s| !s.trim().is_empty())
}

fn body_strategy(min: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), min..=2048)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn prop_sign_then_verify_round_trips(
        body in body_strategy(0),
        secret in secret_strategy(),
        timestamp in any::<u64>(),
    ) {
        let header = sign(&body, &secret, timestamp);
        let prefix = format!("t={timestamp},v1=");
        prop_assert!(header.starts_with(&prefix), "{}", header);
        let verifier = Verifier::new(secret.as_str());
        prop_assert_eq!(verifier.verify_at(&body, &header, timestamp), Ok(timestamp));
        prop_assert_eq!(
            verifier.clone().with_clock(move || timestamp).verify(&body, &header),
            Ok(timestamp)
        );
    }

    #[test]
    fn prop_flipping_a_body_byte_fails(
        body in body_strategy(1),
        secret in secret_strategy(),
        timestamp in any::<u64>(),
        index in any::<prop::sample::Index>(),
        mask in 1_u8..=255,
    ) {
        let header = sign(&body, &secret, timestamp);
        let mut changed = body.clone();
        changed[index.index(body.len())] ^= mask;
        let result = Verifier::new(secret.as_str()).verify_at(&changed, &header, timestamp);
        prop_assert!(
            matches!(result, Err(SignatureError::NoMatch { .. })),
            "{:?}", result
        );
    }

    #[test]
    fn prop_changing_the_header_timestamp_fails(
        body in body_strategy(0),
        secret in secret_strategy(),
        timestamp in any::<u64>(),
        other in any::<u64>(),
    ) {
        prop_assume!(timestamp != other);
        let signature = v1(&body, &secret, timestamp);
        let header = format!("t={other},v1={signature}");
        let verifier = Verifier::new(secret.as_str()).with_tolerance(Duration::from_secs(u64::MAX));
        let result = verifier.verify_at(&body, &header, timestamp);
        prop_assert!(
            matches!(result, Err(SignatureError::NoMatch { .. })),
            "{:?}", result
        );
        // The original header still verifies under that tolerance, from either side.
        let original = format!("t={timestamp},v1={signature}");
        prop_assert_eq!(verifier.verify_at(&body, &original, other), Ok(timestamp));
    }

    #[test]
    fn prop_flipping_a_signature_hex_digit_fails(
        body in body_strategy(0),
        secret in secret_strategy(),
        timestamp in any::<u64>(),
        position in 0_usize..64,
        replacement in 0_usize..15,
    ) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let signature = v1(&body, &secret, timestamp);
        let mut bytes = signature.into_bytes();
        let original = DIGITS.iter().position(|&d| d == bytes[position]).unwrap();
        // Any of the 15 other lowercase hex digits.
        let new = (original + 1 + replacement) % 16;
        prop_assert_ne!(new, original);
        bytes[position] = DIGITS[new];
        let tampered = String::from_utf8(bytes).unwrap();
        let header = format!("t={timestamp},v1={tampered}");
        let result = Verifier::new(secret.as_str()).verify_at(&body, &header, timestamp);
        prop_assert!(
            matches!(result, Err(SignatureError::NoMatch { .. })),
            "{:?}", result
        );
    }
}

#[test]
fn a_header_with_non_ascii_characters_is_malformed() {
    let good = format!("t={NOW},v1={}", v1(BODY, SECRET, NOW));
    // Unicode whitespace is not trimmed into something valid: a header is ASCII.
    for header in [
        format!("\u{3000}{good}"),
        format!("t={NOW},\u{a0}v1={}", v1(BODY, SECRET, NOW)),
        format!("{good},note=café"),
    ] {
        assert_eq!(malformed(&header), HeaderProblem::NotAscii, "{header:?}");
    }
}

/// Two secrets are equal exactly when their bytes are: whitespace counts, as the sender keys
/// its HMAC with it.
#[test]
fn secrets_are_equal_when_their_bytes_are() {
    assert_eq!(Secret::new("whsec_a"), Secret::new("whsec_a"));
    assert_ne!(Secret::new("whsec_a"), Secret::new("whsec_b"));
    assert_ne!(Secret::new("whsec_a"), Secret::new("whsec_a "));
    assert_ne!(Secret::new("whsec_a"), Secret::new("whsec_"));
}
