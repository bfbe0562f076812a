//! `nextgen verify`: verifies a delivery as the endpoint would, and when it does not verify,
//! finds out why: the answer to "why does my signature not verify?".

use std::path::{Path, PathBuf};
use std::time::Duration;

use nextgen_events::{Secret, SignatureError, SignatureHeader, Verifier, WebhookConfig};

use crate::Failure;
use crate::shown::clean;

/// Verify a delivery, and say exactly why it does not verify.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The body, byte for byte as received (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// The `NextGen-Signature` header's value, as received.
    #[arg(long, value_name = "VALUE")]
    header: String,
    /// A secret to try; repeat it for several [default: `NEXTGEN_WEBHOOK_SECRET`, split at
    /// commas].
    #[arg(long = "secret", value_name = "SECRET")]
    secrets: Vec<String>,
    /// How far the timestamp may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Verifier::DEFAULT_TOLERANCE.as_secs())]
    tolerance: u64,
    /// Verify as if it were this time (seconds since the Unix epoch), e.g. the delivery's
    /// arrival [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let body = read_body(&args.body)?;
    let secrets = secrets(&args.secrets)?;
    let now = args.now.unwrap_or_else(unix_now);
    let diagnosis = diagnose(&body, &args.header, &secrets, args.tolerance, now);
    for note in &diagnosis.notes {
        println!("note: {}", clean(note));
    }
    match diagnosis.verified {
        Some(verified) => {
            println!("{}", verified.describe(secrets.len(), now));
            Ok(())
        }
        None => {
            println!("does not verify:");
            for reason in &diagnosis.reasons {
                println!("- {}", clean(reason));
            }
            Err(Failure::failed(
                "the delivery does not verify (reasons above)",
            ))
        }
    }
}

/// What `verify` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// Verified as given (after removing what was copied with the header).
    pub(crate) verified: Option<Verified>,
    /// Why it does not verify, most likely first.
    pub(crate) reasons: Vec<String>,
    /// Slips that did not stop it verifying.
    pub(crate) notes: Vec<String>,
}

/// A delivery that verified.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    /// Which secret signed it, from 0.
    pub(crate) secret: usize,
    /// The verified timestamp.
    pub(crate) timestamp: u64,
}

impl Verified {
    fn describe(&self, secrets: usize, now: u64) -> String {
        let which = if secrets > 1 {
            format!("secret {} of {secrets}", self.secret + 1)
        } else {
            "the secret".to_owned()
        };
        format!(
            "verified: signed with {which} at {} ({})",
            rfc3339(self.timestamp),
            age(self.timestamp, now)
        )
    }
}

/// Verifies `body` against `header` with each of `secrets`, and explains a failure.
pub(crate) fn diagnose(
    body: &[u8],
    header: &str,
    secrets: &[String],
    tolerance: u64,
    now: u64,
) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    let header = clean_header(header, &mut diagnosis.notes);
    let parsed = match SignatureHeader::parse(&header) {
        Ok(parsed) => parsed,
        Err(error) => {
            diagnosis
                .reasons
                .push(format!("the header cannot be read: {error}"));
            return diagnosis;
        }
    };
    for (index, secret) in secrets.iter().enumerate() {
        let verifier = Verifier::new(secret.as_str())
            .with_tolerance(Duration::from_secs(tolerance))
            .with_clock(move || now);
        match verifier.verify_parsed(body, &parsed, now) {
            Ok(timestamp) => {
                diagnosis.verified = Some(Verified {
                    secret: index,
                    timestamp,
                });
                return diagnosis;
            }
            Err(SignatureError::TimestampOutsideTolerance { timestamp, .. }) => {
                let beyond = now.abs_diff(timestamp).saturating_sub(tolerance);
                let causes = if timestamp > now {
                    // Ahead of now: no replay makes a timestamp from the future.
                    "a clock that is off (the sender's, or this machine's), or a --now earlier than the delivery's arrival"
                } else {
                    "a replayed delivery, a clock that is off (this machine's or the sender's), or a delivery verified long after it arrived (verify at its arrival time with --now, as the inbox does)"
                };
                diagnosis.reasons.push(format!(
                    "{} signed it, but its timestamp {} is {}, {} beyond the tolerance of {}: {causes}",
                    which(index, secrets.len()),
                    rfc3339(timestamp),
                    age(timestamp, now),
                    duration_text(beyond),
                    duration_text(tolerance),
                ));
                return diagnosis;
            }
            Err(_) => {}
        }
    }
    explain_mismatch(body, &parsed, secrets, &mut diagnosis.reasons);
    diagnosis
}

/// The header's value without what is often copied along with it: surrounding whitespace,
/// the header's name, quotes.
fn clean_header(header: &str, notes: &mut Vec<String>) -> String {
    let mut value = header.trim();
    let name = "nextgen-signature:";
    // `get`, not indexing: the cut may fall inside a character of a header copied with
    // something else (`…`), which is no header name and must not panic.
    if let Some(rest) = value
        .get(..name.len())
        .filter(|start| start.eq_ignore_ascii_case(name))
        .and_then(|_| value.get(name.len()..))
    {
        value = rest.trim();
        notes.push("the header was given with its name `NextGen-Signature:`; only its value is signed, so the name was left out".to_owned());
    }
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            value = inner.trim();
            notes.push(format!(
                "the header was copied with its quotes ({quote}...{quote}); they are not part of it, so they were left out (in code, pass the header's value without them)"
            ));
        }
    }
    value.to_owned()
}

/// Why no secret signed `body`: tries the slips that break signatures most often, and says
/// one only when it verified.
fn explain_mismatch(
    body: &[u8],
    header: &SignatureHeader<'_>,
    secrets: &[String],
    reasons: &mut Vec<String>,
) {
    let count = secrets.len();
    for (index, secret) in secrets.iter().enumerate() {
        let trimmed = secret.trim();
        if trimmed != secret && signs(body, trimmed, header) {
            reasons.push(format!(
                "{} has whitespace around it: without it, it signed this body; every byte of a secret is part of the key, so remove the whitespace where the secret is configured",
                which(index, count)
            ));
            return;
        }
    }
    let variants = body_variants(body);
    for variant in &variants {
        for (index, secret) in secrets.iter().enumerate() {
            let trimmed = secret.trim();
            let (as_given, without_whitespace) = (
                signs(&variant.body, secret, header),
                trimmed != secret && signs(&variant.body, trimmed, header),
            );
            if as_given || without_whitespace {
                reasons.push(format!(
                    "{}: that way {}{} signed it. Verify the raw request body exactly as received, before any JSON parsing or re-serializing",
                    variant.found,
                    which(index, count),
                    if as_given { "" } else { " without the whitespace around it" },
                ));
                return;
            }
        }
    }
    if let Some(rewritten) = rewritten_with_sorted_keys(body) {
        reasons.push(rewritten);
        return;
    }
    let none = if count == 1 {
        "the secret did not sign this body".to_owned()
    } else {
        format!("none of the {count} secrets signed this body")
    };
    let tried = match variants.as_slice() {
        [] => String::new(),
        variants => format!(
            " as it is, nor {}",
            variants
                .iter()
                .map(|variant| variant.tried)
                .collect::<Vec<_>>()
                .join(", nor ")
        ),
    };
    reasons.push(format!(
        "{none}{tried}: check that the secret is this endpoint's (every endpoint has its own, and test mode's differ from live mode's), and that the body file holds the raw request body"
    ));
}

/// The body as it may have been before a tool changed it.
struct Variant {
    /// The bytes.
    body: Vec<u8>,
    /// What happened to the body, said when this form verified.
    found: &'static str,
    /// The form, as the list of what was tried in vain names it ("nor ...").
    tried: &'static str,
}

/// The body as it may have been before a tool changed it, with what the change was.
fn body_variants(body: &[u8]) -> Vec<Variant> {
    let mut variants = Vec::new();
    let trimmed = body.trim_ascii_end();
    if trimmed.len() < body.len() {
        variants.push(Variant {
            body: trimmed.to_vec(),
            found: "the file ends with whitespace or a newline the sender did not sign (an editor, `echo` or a shell heredoc added it)",
            tried: "without the whitespace at its end",
        });
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        let compact = compact_in_order(body);
        if compact != trimmed && compact != body {
            variants.push(Variant {
                body: compact,
                found: "the body was re-serialized with other spacing (pretty-printed, say): it verifies compacted with its keys in their order",
                tried: "compacted with its keys in their order",
            });
        }
        let sorted = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| serde_json::to_vec(&value).ok());
        if let Some(sorted) = sorted
            && sorted != body
            && !variants.iter().any(|variant| variant.body == sorted)
        {
            variants.push(Variant {
                body: sorted,
                found: "the body was re-serialized with its keys sorted (a parsed and re-written JSON object): it verifies compacted with sorted keys",
                tried: "compacted with its keys sorted",
            });
        }
    }
    variants
}

/// Why no secret can be checked against `body`, when it is a JSON object that was parsed and
/// written again with its keys sorted at every level (what `serde_json::Value` writes): NextGen
/// sends its own order (`id` first), which such a body has lost, so its signature cannot be
/// checked at all and the secret is not to blame. `None` for any other body.
fn rewritten_with_sorted_keys(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    // NextGen writes `id` first; sorted, an event starts with `api_version`, `created` or
    // `data`. A body with `id` first may simply be short, not re-written.
    let id_moved =
        object.contains_key("id") && object.keys().next().map(String::as_str) != Some("id");
    let sorted = serde_json::to_vec(&value).ok()?;
    (id_moved && compact_in_order(body) == sorted).then(|| {
        "the body's keys are sorted at every level, which NextGen never sends (its events start with `id`): the body was parsed and written again (`serde_json::Value` sorts keys) before it was saved, and the order it was signed in is lost, so no secret can verify it and the secret cannot be checked with it. Save the raw request body as received, before any JSON parsing, and verify that".to_owned()
    })
}

/// `body` (valid JSON) without the whitespace between its tokens; keys stay in their order.
fn compact_in_order(body: &[u8]) -> Vec<u8> {
    let mut compact = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            compact.push(byte);
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            compact.push(byte);
        }
    }
    compact
}

/// Whether `secret` signed `body` at the header's timestamp, whatever the time now.
fn signs(body: &[u8], secret: &str, header: &SignatureHeader<'_>) -> bool {
    let expected = nextgen_events::sign(body, secret, header.timestamp());
    SignatureHeader::parse(&expected).is_ok_and(|expected| {
        expected
            .signatures()
            .iter()
            .any(|signature| header.signatures().contains(signature))
    })
}

fn which(index: usize, count: usize) -> String {
    if count > 1 {
        format!("secret {} of {count}", index + 1)
    } else {
        "the secret".to_owned()
    }
}

fn rfc3339(timestamp: u64) -> String {
    i64::try_from(timestamp)
        .ok()
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .map_or_else(|| format!("Unix time {timestamp}"), |at| at.to_string())
}

pub(crate) fn age(timestamp: u64, now: u64) -> String {
    match timestamp.cmp(&now) {
        std::cmp::Ordering::Less => format!("{} ago", duration_text(now - timestamp)),
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Greater => {
            format!("{} in the future", duration_text(timestamp - now))
        }
    }
}

/// `seconds` as a person reads a duration: its two largest units, `3 years 22 days`,
/// `5 min 3 s`, `2 h`, `0 s`.
fn duration_text(seconds: u64) -> String {
    const UNITS: [(u64, &str, &str); 5] = [
        (365 * 24 * 60 * 60, "year", "years"),
        (24 * 60 * 60, "day", "days"),
        (60 * 60, "h", "h"),
        (60, "min", "min"),
        (1, "s", "s"),
    ];
    let Some(first) = UNITS.iter().position(|(size, _, _)| seconds >= *size) else {
        return "0 s".to_owned();
    };
    let mut left = seconds;
    let mut parts = Vec::with_capacity(2);
    for (size, one, many) in &UNITS[first..(first + 2).min(UNITS.len())] {
        let count = left / size;
        left %= size;
        if count > 0 {
            parts.push(format!("{count} {}", if count == 1 { one } else { many }));
        }
    }
    parts.join(" ")
}

/// The body file's bytes; `-` reads standard input.
pub(crate) fn read_body(path: &Path) -> Result<Vec<u8>, Failure> {
    let read = if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).map(|_| body)
    } else {
        std::fs::read(path)
    };
    read.map_err(|error| {
        Failure::usage(format!(
            "cannot read the body `{}`: {error}",
            path.display()
        ))
    })
}

/// The secrets given (`--secret`, used byte for byte, as `WebhookConfig::new` uses a secret,
/// so that whitespace around one can be reported), else those of `NEXTGEN_WEBHOOK_SECRET`,
/// read as the library reads it ([`Secret::split_list`]: split at commas, trimmed), so that a
/// list that verifies in the server verifies here.
pub(crate) fn secrets(given: &[String]) -> Result<Vec<String>, Failure> {
    let secrets: Vec<String> = if given.is_empty() {
        let list = match std::env::var(WebhookConfig::SECRET_ENV) {
            Ok(list) => list,
            Err(std::env::VarError::NotPresent) => String::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::usage(format!(
                    "{} is not valid UTF-8: set it to the signing secret (`whsec_...`), or several separated by commas",
                    WebhookConfig::SECRET_ENV
                )));
            }
        };
        Secret::split_list(&list).map(str::to_owned).collect()
    } else {
        given.to_vec()
    };
    if secrets.is_empty() || secrets.iter().all(|secret| secret.trim().is_empty()) {
        return Err(Failure::usage(format!(
            "no secret: pass --secret whsec_... (repeat it for several), or set {}",
            WebhookConfig::SECRET_ENV
        )));
    }
    Ok(secrets)
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: u64 = 1_713_745_500;
    const SIGNED_AT: u64 = 1_713_745_200;
    const BODY: &[u8] =
        br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"b":1,"a":"x y"}}}"#;

    fn header(secret: &str) -> String {
        nextgen_events::sign(BODY, secret, SIGNED_AT)
    }

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|secret| (*secret).to_owned()).collect()
    }

    fn reasons(diagnosis: &Diagnosis) -> String {
        assert!(diagnosis.verified.is_none(), "{diagnosis:?}");
        diagnosis.reasons.join("\n")
    }

    #[test]
    fn a_genuine_delivery_verifies_and_names_the_secret_of_several() {
        let diagnosis = diagnose(
            BODY,
            &header("whsec_new"),
            &secrets(&["whsec_old", "whsec_new"]),
            300,
            NOW,
        );
        assert_eq!(
            diagnosis.verified,
            Some(Verified {
                secret: 1,
                timestamp: SIGNED_AT
            })
        );
        let line = diagnosis.verified.unwrap().describe(2, NOW);
        assert!(line.contains("secret 2 of 2"), "{line}");
        assert!(line.contains("2024-04-22T00:20:00Z"), "{line}");
        assert!(line.contains("5 min ago"), "{line}");
    }

    #[test]
    fn a_wrong_secret_says_none_signed_it() {
        let text = reasons(&diagnose(
            BODY,
            &header("whsec_other"),
            &secrets(&["whsec_a", "whsec_b"]),
            300,
            NOW,
        ));
        assert!(
            text.contains("none of the 2 secrets signed this body"),
            "{text}"
        );
        assert!(text.contains("this endpoint's"), "{text}");
    }

    #[test]
    fn a_stale_timestamp_says_by_how_much() {
        let text = reasons(&diagnose(
            BODY,
            &header("whsec_a"),
            &secrets(&["whsec_a"]),
            60,
            NOW,
        ));
        assert!(text.contains("the secret signed it"), "{text}");
        assert!(
            text.contains("5 min ago, 4 min beyond the tolerance of 1 min"),
            "{text}"
        );
    }

    #[test]
    fn a_future_timestamp_says_so() {
        let early = NOW - 1_000;
        let text = reasons(&diagnose(
            BODY,
            &header("whsec_a"),
            &secrets(&["whsec_a"]),
            300,
            early,
        ));
        assert!(
            text.contains("11 min 40 s in the future, 6 min 40 s beyond"),
            "{text}"
        );
        // A timestamp ahead of now is no replay: clocks, or --now.
        assert!(!text.contains("replay"), "{text}");
        assert!(text.contains("clock"), "{text}");
    }

    #[test]
    fn a_pretty_printed_body_verifies_compacted_in_order() {
        let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        // Pretty-printing a parsed Value sorts the keys too; spacing alone keeps their order.
        let spaced = String::from_utf8(BODY.to_vec())
            .unwrap()
            .replace(',', ", ")
            .replace(":{", ": {");
        let text = reasons(&diagnose(
            spaced.as_bytes(),
            &header("whsec_a"),
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(
            text.contains("compacted with its keys in their order"),
            "{text}"
        );
        assert!(!text.contains("\"x y\""), "no body in the reasons: {text}");
        let text = reasons(&diagnose(
            &pretty,
            &nextgen_events::sign(&serde_json::to_vec(&value).unwrap(), "whsec_a", SIGNED_AT),
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(
            text.contains("keys in their order") || text.contains("sorted keys"),
            "{text}"
        );
    }

    #[test]
    fn a_body_re_written_with_sorted_keys_says_so() {
        let sorted_body =
            br#"{"data":{"object":{"a":"x y","b":1}},"id":"evt_1","type":"charge.succeeded"}"#;
        let signed_sorted = nextgen_events::sign(sorted_body, "whsec_a", SIGNED_AT);
        // The file holds the original order; the sender signed the sorted form.
        let text = reasons(&diagnose(
            BODY,
            &signed_sorted,
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(text.contains("keys sorted"), "{text}");
    }

    #[test]
    fn a_trailing_newline_in_the_file_says_so() {
        let mut body = BODY.to_vec();
        body.push(b'\n');
        let text = reasons(&diagnose(
            &body,
            &header("whsec_a"),
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(text.contains("ends with whitespace or a newline"), "{text}");
    }

    #[test]
    fn a_secret_with_whitespace_around_it_says_so() {
        let text = reasons(&diagnose(
            BODY,
            &header("whsec_a"),
            &secrets(&["whsec_b", " whsec_a\n"]),
            300,
            NOW,
        ));
        assert!(
            text.contains("secret 2 of 2 has whitespace around it"),
            "{text}"
        );
    }

    #[test]
    fn a_header_copied_with_quotes_or_its_name_still_verifies_with_a_note() {
        for copied in [
            format!("\"{}\"", header("whsec_a")),
            format!("'{}'", header("whsec_a")),
            format!("NextGen-Signature: {}", header("whsec_a")),
        ] {
            let diagnosis = diagnose(BODY, &copied, &secrets(&["whsec_a"]), 300, NOW);
            assert!(diagnosis.verified.is_some(), "{copied}: {diagnosis:?}");
            assert_eq!(diagnosis.notes.len(), 1, "{diagnosis:?}");
        }
    }

    #[test]
    fn an_unreadable_header_says_what_is_wrong() {
        let text = reasons(&diagnose(
            BODY,
            "t=abc,v1=zz",
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(text.contains("cannot be read"), "{text}");
    }

    #[test]
    fn compacting_keeps_strings_intact() {
        let body = br#"{ "a" : "x \" y" ,  "b" : [ 1 , 2 ] }"#;
        assert_eq!(compact_in_order(body), br#"{"a":"x \" y","b":[1,2]}"#);
    }

    #[test]
    fn durations_read_as_durations() {
        assert_eq!(duration_text(96_583_844), "3 years 22 days");
        assert_eq!(duration_text(303), "5 min 3 s");
        assert_eq!(duration_text(3_600), "1 h");
        assert_eq!(duration_text(86_400 + 7_200 + 5), "1 day 2 h");
        assert_eq!(duration_text(59), "59 s");
        assert_eq!(duration_text(0), "0 s");
        assert_eq!(duration_text(u64::MAX), "584942417355 years 26 days");
        assert_eq!(age(NOW - 96_583_844, NOW), "3 years 22 days ago");
        assert_eq!(age(NOW + 303, NOW), "5 min 3 s in the future");
    }

    #[test]
    fn a_wrong_secret_on_an_untouched_body_lists_what_was_tried_as_tried() {
        let text = reasons(&diagnose(
            BODY,
            &header("whsec_other"),
            &secrets(&["whsec_a"]),
            300,
            NOW,
        ));
        assert!(
            text.starts_with(
                "the secret did not sign this body as it is, nor compacted with its keys sorted:"
            ),
            "{text}"
        );
        // Nothing in it says that anything verified.
        assert!(!text.contains("verifies"), "{text}");
        assert!(!text.contains("that way"), "{text}");
    }

    #[test]
    fn a_body_saved_with_sorted_keys_is_named_not_blamed_on_the_secret() {
        // The sender signed its own order; the file holds what `serde_json::Value` wrote.
        let original = br#"{"id":"evt_1","object":"event","type":"charge.succeeded","data":{"object":{"id":"ch_1","amount":5}}}"#;
        let value: serde_json::Value = serde_json::from_slice(original).unwrap();
        let signed = nextgen_events::sign(original, "whsec_a", SIGNED_AT);
        for saved in [
            serde_json::to_vec(&value).unwrap(),
            serde_json::to_vec_pretty(&value).unwrap(),
        ] {
            let text = reasons(&diagnose(&saved, &signed, &secrets(&["whsec_a"]), 300, NOW));
            assert!(text.contains("keys are sorted at every level"), "{text}");
            assert!(text.contains("raw request body"), "{text}");
            assert!(!text.contains("did not sign"), "{text}");
        }
        // A body in NextGen's order is not taken for one, nor a short one with `id` first
        // whose keys happen to be in order.
        assert_eq!(rewritten_with_sorted_keys(original), None);
        assert_eq!(
            rewritten_with_sorted_keys(br#"{"id":"evt_1","type":"x"}"#),
            None
        );
    }

    #[test]
    fn a_header_cut_inside_a_character_does_not_panic() {
        for header in ["NextGen-Signatur€x", "…", "\"…\"", "'é"] {
            let text = reasons(&diagnose(BODY, header, &secrets(&["whsec_a"]), 300, NOW));
            assert!(text.contains("cannot be read"), "{header}: {text}");
        }
    }

    #[test]
    fn a_variant_verified_only_by_a_trimmed_secret_says_both() {
        let mut body = BODY.to_vec();
        body.push(b'\n');
        let text = reasons(&diagnose(
            &body,
            &header("whsec_a"),
            &secrets(&[" whsec_a"]),
            300,
            NOW,
        ));
        assert!(text.contains("ends with whitespace"), "{text}");
        assert!(
            text.contains("the secret without the whitespace around it signed it"),
            "{text}"
        );
    }
}
