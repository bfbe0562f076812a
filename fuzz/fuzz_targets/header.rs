//! `SignatureHeader::parse` (and `Verifier::verify_at` over it) on arbitrary text.
//!
//! Never panics; when a header parses, it holds what the scheme says it holds:
//! - at most `MAX_HEADER_LEN` bytes, at least one and at most `MAX_SIGNATURES` `v1` entries,
//!   exactly as many as the header has `v1=` elements;
//! - exactly one `t=` element, whose digits are the timestamp (elements, keys and values are
//!   trimmed of spaces and tabs only, RFC 9110's `OWS`, as the parser trims them);
//! - a canonical re-encoding (`t=<ts>,v1=<hex>,...`) parses to the same timestamp and signatures.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nextgen_events::{HeaderProblem, SignatureError, SignatureHeader, Verifier, sign};

const MAX_HEADER_LEN: usize = SignatureHeader::MAX_LEN;
const MAX_SIGNATURES: usize = SignatureHeader::MAX_SIGNATURES;

const SECRET: &str = "whsec_fuzz_secret";
const NOW: u64 = 1_713_745_200;
const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"charge.succeeded"}"#;

fuzz_target!(|header: &str| {
    let parsed = SignatureHeader::parse(header);

    // Whatever the outcome, the error renders and has a stable code.
    if let Err(error) = &parsed {
        let message = error.to_string();
        assert!(!message.is_empty());
        assert!(!error.code().is_empty());
        assert!(
            !message.contains(SECRET),
            "an error message holds the secret"
        );
    }

    if header.len() > MAX_HEADER_LEN {
        assert_eq!(
            parsed,
            Err(SignatureError::MalformedHeader(HeaderProblem::TooLong {
                len: header.len()
            })),
            "a header over MAX_HEADER_LEN must be rejected as too long, before anything else"
        );
    }

    if let Ok(parsed) = &parsed {
        check_parsed(header, parsed);
    }

    // Verification never panics either, and never accepts a header that does not parse.
    let verifier = Verifier::new(SECRET).with_clock(|| NOW);
    let verified = verifier.verify(BODY, header);
    match (&parsed, &verified) {
        (Err(parse_error), Err(verify_error)) => assert_eq!(parse_error, verify_error),
        (Err(parse_error), Ok(_)) => {
            panic!("verify accepted a header that does not parse: {parse_error}")
        }
        (Ok(parsed), Ok(timestamp)) => {
            assert_eq!(*timestamp, parsed.timestamp());
            assert!(
                timestamp.abs_diff(NOW) <= 300,
                "accepted outside the tolerance"
            );
        }
        (Ok(_), Err(error)) => assert!(matches!(
            error,
            SignatureError::NoMatch { .. } | SignatureError::TimestampOutsideTolerance { .. }
        )),
    }

    // The same header with a genuine signature appended verifies, whatever else it holds
    // (secret rotation: every `v1` is tried), when it has room for one more `v1`.
    if let Ok(parsed) = &parsed {
        if parsed.signatures().len() < MAX_SIGNATURES {
            let genuine = sign(BODY, SECRET, parsed.timestamp());
            let tag = genuine.split_once(",v1=").map(|(_, tag)| tag).unwrap_or("");
            // Only when `t` was written canonically: the MAC covers the digits as sent.
            let canonical_t = header_timestamp_text(header) == Some(parsed.timestamp().to_string());
            let extended = format!("{header},v1={tag}");
            if canonical_t && extended.len() <= MAX_HEADER_LEN {
                let at = Verifier::new(SECRET).with_clock(move || NOW);
                let result = at.verify_at(BODY, &extended, parsed.timestamp());
                assert_eq!(
                    result,
                    Ok(parsed.timestamp()),
                    "a genuine v1 among other entries was not accepted (rotation): {extended:?}"
                );
            }
        }
    }
});

fn check_parsed(header: &str, parsed: &SignatureHeader<'_>) {
    assert!(header.len() <= MAX_HEADER_LEN);
    let signatures = parsed.signatures();
    assert!(!signatures.is_empty(), "parsed without any v1 signature");
    assert!(
        signatures.len() <= MAX_SIGNATURES,
        "{} signatures, more than MAX_SIGNATURES",
        signatures.len()
    );

    // An independent reading of the elements.
    let elements: Vec<(&str, &str)> = header
        .split(',')
        .map(trim_ows)
        .filter(|element| !element.is_empty())
        .map(|element| {
            let (key, value) = element
                .split_once('=')
                .unwrap_or_else(|| panic!("parsed although element {element:?} has no `=`"));
            (trim_ows(key), trim_ows(value))
        })
        .collect();
    let v1: Vec<&str> = elements
        .iter()
        .filter(|(key, _)| *key == "v1")
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(v1.len(), signatures.len(), "v1 entries lost or invented");
    for (text, decoded) in v1.iter().zip(signatures) {
        assert_eq!(
            text.len(),
            64,
            "accepted a v1 that is not 64 hex digits: {text:?}"
        );
        assert_eq!(
            text.to_ascii_lowercase(),
            hex(decoded),
            "v1 decoded to other bytes"
        );
    }
    let t: Vec<&str> = elements
        .iter()
        .filter(|(key, _)| *key == "t")
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(t.len(), 1, "parsed with {} `t` elements", t.len());
    assert!(
        t[0].bytes().all(|b| b.is_ascii_digit()),
        "accepted t={:?}",
        t[0]
    );
    assert_eq!(t[0].parse::<u64>().ok(), Some(parsed.timestamp()));

    // The canonical form of what was parsed parses to the same thing.
    let mut canonical = format!("t={}", parsed.timestamp());
    for signature in signatures {
        canonical.push_str(",v1=");
        canonical.push_str(&hex(signature));
    }
    let again = SignatureHeader::parse(&canonical)
        .unwrap_or_else(|error| panic!("canonical form {canonical:?} does not parse: {error}"));
    assert_eq!(again.timestamp(), parsed.timestamp());
    assert_eq!(again.signatures(), signatures);
}

/// The text of the header's (single) `t` element, trimmed.
fn header_timestamp_text(header: &str) -> Option<String> {
    header
        .split(',')
        .filter_map(|element| trim_ows(element).split_once('='))
        .find(|(key, _)| trim_ows(key) == "t")
        .map(|(_, value)| trim_ows(value).to_owned())
}

/// The whitespace the header allows around elements, keys and values: RFC 9110's `OWS`, space
/// and horizontal tab only (not `str::trim`'s Unicode whitespace, which takes a vertical tab).
fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
