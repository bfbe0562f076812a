//! The `NextGen-Signature` scheme: parse the header, verify a delivery, sign a payload.
//!
//! Every delivery carries `NextGen-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where
//! each `v1` is the lowercase hex HMAC-SHA256 of `"<t>.<raw body>"` keyed with the endpoint
//! secret's UTF-8 bytes (the `whsec_` prefix included). A delivery is genuine when any `v1`
//! matches any configured secret and `t` is within the tolerance of the current time.
//!
//! ```
//! use nextgen_events::{sign, Verifier};
//!
//! let body = br#"{"id":"evt_1","object":"event","type":"charge.succeeded"}"#;
//! let header = sign(body, "whsec_test_secret", 1_713_745_200);
//!
//! let verifier = Verifier::new("whsec_test_secret");
//! let timestamp = verifier.verify_at(body, &header, 1_713_745_260)?;
//! assert_eq!(timestamp, 1_713_745_200);
//! # Ok::<(), nextgen_events::SignatureError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The name of the HTTP header that carries the signature.
pub(crate) const HEADER: &str = "NextGen-Signature";

/// How far a delivery's timestamp may be from the current time, in either direction, by default.
pub(crate) const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The longest header accepted, in bytes: room for a timestamp and [`SignatureHeader::MAX_SIGNATURES`] entries.
pub(crate) const MAX_HEADER_LEN: usize = 4096;

/// The most `v1` entries accepted in one header. A sender signs once per active secret, so a
/// handful is normal; hundreds are an attack on our CPU and are rejected before any HMAC runs.
pub(crate) const MAX_SIGNATURES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The length of one HMAC-SHA256 signature, in bytes (64 hex digits).
const SIGNATURE_LEN: usize = 32;

/// An endpoint secret (`whsec_...`), kept exactly as configured.
///
/// Its `Debug` output is redacted, and it has no `Display`: a secret never reaches a log line.
///
/// ```
/// use nextgen_events::Secret;
///
/// let secret = Secret::new("whsec_test_secret");
/// assert_eq!(format!("{secret:?}"), "Secret(\"whsec_…\")");
/// ```
#[derive(Clone)]
pub struct Secret {
    text: String,
    /// The HMAC with the key already absorbed, cloned for each MAC: the two key blocks are
    /// hashed once per secret rather than once per delivery.
    keyed: HmacSha256,
}

/// Two secrets are equal when their bytes are, compared in constant time: only their lengths
/// tell how far apart they are.
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        bool::from(self.expose().ct_eq(other.expose()))
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps a secret. It is used byte for byte: surrounding whitespace is *not* trimmed, because
    /// the sender does not trim it either; a verification failure points it out instead.
    pub fn new(secret: impl Into<String>) -> Self {
        let text = secret.into();
        Secret {
            keyed: keyed(text.as_bytes()),
            text,
        }
    }

    /// The secret's bytes, the HMAC key.
    pub fn expose(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Whether the secret is empty or only whitespace: an HMAC key anyone can guess. Such a
    /// secret verifies nothing: [`Verifier::check`] refuses it, and so does every verification.
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    fn has_surrounding_whitespace(&self) -> bool {
        self.text.trim() != self.text
    }

    /// The secrets of a comma-separated list, as `NEXTGEN_WEBHOOK_SECRET` holds them during a
    /// rotation (`"whsec_new, whsec_old"`): split at commas, spaces around each trimmed (they
    /// come from how the list was written, not from the secrets), empty ones skipped. The one
    /// reading of the list: [`WebhookConfig::from_env`](crate::WebhookConfig::from_env) and
    /// the `nextgen` tool read it alike, so a list that verifies in the server verifies in
    /// `nextgen verify` too.
    ///
    /// ```
    /// use nextgen_events::Secret;
    ///
    /// let list: Vec<&str> = Secret::split_list(" whsec_new, whsec_old ,,").collect();
    /// assert_eq!(list, ["whsec_new", "whsec_old"]);
    /// ```
    pub fn split_list(list: &str) -> impl Iterator<Item = &str> {
        list.split(',')
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.starts_with("whsec_") {
            f.write_str("Secret(\"whsec_…\")")
        } else {
            f.write_str("Secret(\"…\")")
        }
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Secret::new(secret)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Secret::new(secret)
    }
}

/// Why a `NextGen-Signature` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The header has characters that are not ASCII.
    NotAscii,
    /// The header is longer than [`SignatureHeader::MAX_LEN`].
    TooLong {
        /// The header's length in bytes.
        len: usize,
    },
    /// The header has more than [`SignatureHeader::MAX_SIGNATURES`] `v1` entries.
    TooManySignatures,
    /// An element has no `=` between its key and value.
    MissingEquals {
        /// The element's position, counting from 1.
        element: usize,
    },
    /// There is no `t=` element.
    MissingTimestamp,
    /// There is more than one `t=` element.
    DuplicateTimestamp,
    /// `t` is not a non-negative whole number of seconds that fits in 64 bits.
    InvalidTimestamp,
    /// A `v1` value is not hexadecimal.
    InvalidHex {
        /// The element's position, counting from 1.
        element: usize,
    },
    /// A `v1` value is hexadecimal but not 64 digits long.
    WrongLength {
        /// The element's position, counting from 1.
        element: usize,
        /// How many hex digits it had.
        digits: usize,
    },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::TooLong { len } => {
                write!(
                    f,
                    "it is {len} bytes long, more than the {MAX_HEADER_LEN} accepted"
                )
            }
            HeaderProblem::NotAscii => f.write_str("it contains characters that are not ASCII"),
            HeaderProblem::TooManySignatures => {
                write!(f, "it has more than {MAX_SIGNATURES} `v1` signatures")
            }
            HeaderProblem::MissingEquals { element } => {
                write!(f, "element {element} is not a `key=value` pair")
            }
            HeaderProblem::MissingTimestamp => f.write_str("it has no `t=` timestamp"),
            HeaderProblem::DuplicateTimestamp => f.write_str("it has more than one `t=` timestamp"),
            HeaderProblem::InvalidTimestamp => f.write_str(
                "`t` is not a whole number of seconds since the Unix epoch (digits only, no sign)",
            ),
            HeaderProblem::InvalidHex { element } => {
                write!(
                    f,
                    "the `v1` signature in element {element} is not hexadecimal"
                )
            }
            HeaderProblem::WrongLength { element, digits } => write!(
                f,
                "the `v1` signature in element {element} has {digits} hex digits instead of {}",
                SIGNATURE_LEN * 2
            ),
        }
    }
}

/// Why a delivery's signature was rejected. Each variant is one failure class, with a stable
/// [`code`](SignatureError::code) for machine-readable responses.
///
/// No variant holds a secret or an expected signature, so these errors are safe to log and to
/// send back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request has no `NextGen-Signature` header.
    #[error(
        "the `NextGen-Signature` header is missing: the request was not sent by NextGen, or a proxy removed the header"
    )]
    MissingHeader,
    /// The header is present but cannot be read.
    #[error(
        "the `NextGen-Signature` header is malformed: {0}; expected `t=<unix seconds>,v1=<64 hex digits>`"
    )]
    MalformedHeader(HeaderProblem),
    /// The header has a timestamp but no `v1` entry (perhaps only other schemes).
    #[error(
        "the `NextGen-Signature` header has no `v1` signature: expected at least one `v1=<64 hex digits>` element"
    )]
    NoV1Signature,
    /// The signature's timestamp is too far from the current time (a replay, or a wrong clock).
    #[error(
        "the signature's timestamp is {} s in the {}, beyond the tolerance of {tolerance} s: this is a replayed delivery, or the sender's or this server's clock is wrong",
        skew.unsigned_abs(),
        if *skew > 0 { "past" } else { "future" }
    )]
    TimestampOutsideTolerance {
        /// The timestamp from the header.
        timestamp: u64,
        /// How many seconds the timestamp is behind the current time; negative when ahead.
        skew: i64,
        /// The tolerance in seconds.
        tolerance: u64,
    },
    /// No `v1` entry matched any configured secret.
    #[error(
        "no signature in the `NextGen-Signature` header matches the configured secret{}: check that the secret is this endpoint's, and that the raw request body is verified as received (a re-parsed or re-serialized body never matches){}",
        if *secrets > 1 { "s" } else { "" },
        if *secret_has_whitespace { "; note: a configured secret has leading or trailing whitespace, which is part of the key" } else { "" }
    )]
    NoMatch {
        /// How many secrets were tried.
        secrets: usize,
        /// Whether a configured secret starts or ends with whitespace (a common copy-paste slip).
        secret_has_whitespace: bool,
    },
    /// A configured secret is empty or only whitespace, so anyone could sign with it: nothing
    /// is verified until it is fixed.
    #[error(
        "configured secret {position} is empty or only whitespace, so anyone could sign with it: set it to this endpoint's signing secret (`whsec_...`) from the NextGen dashboard, e.g. in `NEXTGEN_WEBHOOK_SECRET`"
    )]
    BlankSecret {
        /// The secret's position in the configuration, counting from 1.
        position: usize,
    },
}

impl SignatureError {
    /// A stable, machine-readable code for this failure class.
    ///
    /// ```
    /// use nextgen_events::SignatureError;
    /// assert_eq!(SignatureError::MissingHeader.code(), "signature_missing");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "signature_missing",
            SignatureError::MalformedHeader(_) => "signature_malformed",
            SignatureError::NoV1Signature => "signature_no_v1",
            SignatureError::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
            SignatureError::NoMatch { .. } => "signature_mismatch",
            SignatureError::BlankSecret { .. } => "secret_blank",
        }
    }
}

/// A parsed `NextGen-Signature` header: its timestamp and its `v1` signatures.
///
/// ```
/// use nextgen_events::SignatureHeader;
///
/// let header = SignatureHeader::parse("v0=abc, t=1713745200, v1=3c0019d4413c961d885bc03dc77ea86fb0d5962dc385513588364c00046bad32")?;
/// assert_eq!(header.timestamp(), 1_713_745_200);
/// assert_eq!(header.signatures().len(), 1);
/// # Ok::<(), nextgen_events::SignatureError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    // The digits exactly as sent: the sender signed this text, not our re-formatting of it.
    timestamp_text: &'a [u8],
    timestamp: u64,
    // Inline, not a Vec: parsing a header allocates nothing.
    signatures: [[u8; SIGNATURE_LEN]; MAX_SIGNATURES],
    count: usize,
}

impl SignatureHeader<'_> {
    /// The name of the HTTP header that carries the signature: `NextGen-Signature`.
    pub const NAME: &'static str = HEADER;

    /// The longest header accepted, in bytes (4096): room for a timestamp and
    /// [`SignatureHeader::MAX_SIGNATURES`](Self::MAX_SIGNATURES) entries.
    pub const MAX_LEN: usize = MAX_HEADER_LEN;

    /// The most `v1` entries accepted in one header (16). A sender signs once per active
    /// secret, so a handful is normal; hundreds are an attack on our CPU and are rejected
    /// before any HMAC runs.
    pub const MAX_SIGNATURES: usize = MAX_SIGNATURES;
}

impl<'a> SignatureHeader<'a> {
    /// Parses a header value. Elements may come in any order, with optional whitespace (space
    /// and horizontal tab, RFC 9110's `OWS`) around elements, keys and values; any other
    /// character, a vertical tab or form feed included, is part of the key or value. Entries of
    /// other schemes (`v0=`, unknown keys) are ignored.
    pub fn parse(header: &'a str) -> Result<Self, SignatureError> {
        use SignatureError::MalformedHeader as Malformed;

        if header.len() > MAX_HEADER_LEN {
            return Err(Malformed(HeaderProblem::TooLong { len: header.len() }));
        }
        // HTTP header values are ASCII; anything else is not a header NextGen wrote.
        if !header.is_ascii() {
            return Err(Malformed(HeaderProblem::NotAscii));
        }
        let mut timestamp_text = None;
        let mut signatures = [[0; SIGNATURE_LEN]; MAX_SIGNATURES];
        let mut count = 0;
        // Byte by byte: the header is ASCII, and `str`'s char searchers cost more than the
        // rest of the parse on a header this short.
        for (index, element) in header.as_bytes().split(|&byte| byte == b',').enumerate() {
            let element_no = index + 1;
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            let equals = element
                .iter()
                .position(|&byte| byte == b'=')
                .ok_or(Malformed(HeaderProblem::MissingEquals {
                    element: element_no,
                }))?;
            let (key, value) = element.split_at(equals);
            let value = trim_ows(&value[1..]);
            match trim_ows(key) {
                // The first `t` is kept; a second one is an error, not a silent override.
                b"t" if timestamp_text.replace(value).is_some() => {
                    return Err(Malformed(HeaderProblem::DuplicateTimestamp));
                }
                b"t" => {}
                b"v1" => {
                    let slot = signatures
                        .get_mut(count)
                        .ok_or(Malformed(HeaderProblem::TooManySignatures))?;
                    *slot = decode_signature(value, element_no)?;
                    count += 1;
                }
                _ => {}
            }
        }
        let timestamp_text = timestamp_text.ok_or(Malformed(HeaderProblem::MissingTimestamp))?;
        let timestamp = parse_timestamp(timestamp_text)?;
        if count == 0 {
            return Err(SignatureError::NoV1Signature);
        }
        Ok(SignatureHeader {
            timestamp_text,
            timestamp,
            signatures,
            count,
        })
    }

    /// The timestamp `t`, in seconds since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The decoded `v1` signatures, in header order.
    pub fn signatures(&self) -> &[[u8; SIGNATURE_LEN]] {
        &self.signatures[..self.count]
    }
}

impl fmt::Debug for SignatureHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("timestamp", &self.timestamp)
            .field("signatures", &self.count)
            .finish()
    }
}

/// `text` without the optional whitespace (RFC 9110 `OWS`: spaces and horizontal tabs) around it.
fn trim_ows(text: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = text
        .iter()
        .position(|byte| !is_ows(byte))
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|byte| !is_ows(byte))
        .map_or(start, |last| last + 1);
    &text[start..end]
}

fn parse_timestamp(text: &[u8]) -> Result<u64, SignatureError> {
    // Digits only: a sign (`u64::from_str` would take a `+`) is not what any sender writes.
    let invalid = SignatureError::MalformedHeader(HeaderProblem::InvalidTimestamp);
    if text.is_empty() {
        return Err(invalid);
    }
    text.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(invalid.clone());
        }
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(u64::from(digit)))
            .ok_or_else(|| invalid.clone())
    })
}

fn decode_signature(
    hex_text: &[u8],
    element: usize,
) -> Result<[u8; SIGNATURE_LEN], SignatureError> {
    let mut signature = [0u8; SIGNATURE_LEN];
    // The length first: const-hex would also take a `0x` prefix, which no sender writes.
    if hex_text.len() == SIGNATURE_LEN * 2
        && const_hex::decode_to_slice(hex_text, &mut signature).is_ok()
    {
        return Ok(signature);
    }
    Err(SignatureError::MalformedHeader(
        if hex_text.iter().all(u8::is_ascii_hexdigit) {
            HeaderProblem::WrongLength {
                element,
                digits: hex_text.len(),
            }
        } else {
            HeaderProblem::InvalidHex { element }
        },
    ))
}

/// An HMAC keyed with `secret`, nothing fed yet.
fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// The MAC over `"<timestamp>.<payload>"`, fed in pieces so the body is never copied.
fn mac(keyed: &HmacSha256, timestamp: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = keyed.clone();
    mac.update(timestamp);
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Computes a `NextGen-Signature` header value, `t=<timestamp>,v1=<hex>`, for a payload.
///
/// For tests, for the `trigger` tool, and for your own tests of your webhook endpoint.
///
/// ```
/// use nextgen_events::sign;
///
/// let header = sign(b"", "whsec_x", 0);
/// assert_eq!(header, "t=0,v1=4e8c2621ad6b7e8ee9325e803d12429025d82e5abc79b476cf0efabfaf9a6e57");
/// ```
pub fn sign(payload: &[u8], secret: &str, timestamp: u64) -> String {
    let timestamp = timestamp.to_string();
    let tag = mac(&keyed(secret.as_bytes()), timestamp.as_bytes(), payload)
        .finalize()
        .into_bytes();
    format!("t={timestamp},v1={}", const_hex::encode(tag))
}

/// Verifies a delivery against one secret with the default tolerance and the system clock.
/// Returns the verified timestamp.
///
/// Pass the raw request body exactly as received. For several secrets (rotation), a custom
/// tolerance or an injected clock, use [`Verifier`].
///
/// ```
/// use nextgen_events::{sign, verify, SignatureError};
///
/// let body = br#"{"id":"evt_1"}"#;
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
/// let header = sign(body, "whsec_test_secret", now);
/// assert!(verify(body, &header, "whsec_test_secret").is_ok());
///
/// let err = verify(br#"{"id": "evt_1"}"#, &header, "whsec_test_secret").unwrap_err();
/// assert_eq!(err.code(), "signature_mismatch");
/// ```
pub fn verify(payload: &[u8], header: &str, secret: &str) -> Result<u64, SignatureError> {
    Verifier::new(secret).verify(payload, header)
}

/// The current time in seconds since the Unix epoch, as [`Verifier`] reads it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Verifies deliveries against one or several secrets, with a tolerance and a clock.
///
/// ```
/// use std::time::Duration;
/// use nextgen_events::{sign, Verifier};
///
/// // During a rotation both the old and the new secret are accepted.
/// let verifier = Verifier::new("whsec_old")
///     .with_secret("whsec_new")
///     .with_tolerance(Duration::from_secs(60))
///     .with_clock(|| 1_000_060);
///
/// let header = sign(b"{}", "whsec_new", 1_000_000);
/// assert_eq!(verifier.verify(b"{}", &header)?, 1_000_000);
///
/// let late = sign(b"{}", "whsec_new", 999_999);
/// assert_eq!(verifier.verify(b"{}", &late).unwrap_err().code(), "timestamp_outside_tolerance");
/// # Ok::<(), nextgen_events::SignatureError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<Secret>,
    tolerance: Duration,
    clock: Clock,
}

impl Verifier {
    /// How far a delivery's timestamp may be from the current time, in either direction, by
    /// default: 300 s.
    pub const DEFAULT_TOLERANCE: Duration = DEFAULT_TOLERANCE;

    /// A verifier for one secret, with the default tolerance and the system clock.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Verifier {
            secrets: vec![secret.into()],
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(system_clock),
        }
    }

    /// Accepts one more secret: a delivery is genuine when it matches any of them.
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sets how far the timestamp may be from now, in either direction. Whole seconds count.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Replaces the system clock, e.g. with a fixed time in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses a verifier with an empty or whitespace-only secret
    /// ([`SignatureError::BlankSecret`]). Every verification checks this first, so such a
    /// verifier accepts nothing; call it at start-up to fail there instead.
    ///
    /// ```
    /// use nextgen_events::Verifier;
    ///
    /// assert!(Verifier::new("whsec_current").check().is_ok());
    /// let blank = Verifier::new("whsec_current").with_secret(" ");
    /// assert_eq!(blank.check().unwrap_err().code(), "secret_blank");
    /// ```
    pub fn check(&self) -> Result<(), SignatureError> {
        match self.secrets.iter().position(Secret::is_blank) {
            Some(index) => Err(SignatureError::BlankSecret {
                position: index + 1,
            }),
            None => Ok(()),
        }
    }

    /// The configured secrets.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The configured tolerance.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The current time according to this verifier's clock.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Verifies `payload` (the raw body) against `header` at the clock's current time.
    /// Returns the verified timestamp.
    pub fn verify(&self, payload: &[u8], header: &str) -> Result<u64, SignatureError> {
        self.verify_at(payload, header, self.now())
    }

    /// Verifies as if the current time were `now` (seconds since the Unix epoch): for events
    /// that were queued when received and are checked later against their arrival time.
    pub fn verify_at(&self, payload: &[u8], header: &str, now: u64) -> Result<u64, SignatureError> {
        let header = SignatureHeader::parse(header)?;
        self.verify_parsed(payload, &header, now)
    }

    /// Verifies a header that was already parsed.
    pub fn verify_parsed(
        &self,
        payload: &[u8],
        header: &SignatureHeader<'_>,
        now: u64,
    ) -> Result<u64, SignatureError> {
        // A blank secret is a key anyone has: fail closed, whatever the header says.
        self.check()?;
        // Signature first: a timestamp error then tells the caller the delivery was genuine
        // but late, which points at clocks or replays rather than at the secret.
        let matched = self.secrets.iter().any(|secret| {
            let expected = mac(&secret.keyed, header.timestamp_text, payload)
                .finalize()
                .into_bytes();
            // Every entry is compared, in constant time each: rotation sends several.
            header.signatures().iter().fold(false, |found, candidate| {
                found | bool::from(candidate.as_slice().ct_eq(expected.as_slice()))
            })
        });
        if !matched {
            return Err(SignatureError::NoMatch {
                secrets: self.secrets.len(),
                secret_has_whitespace: self.secrets.iter().any(Secret::has_surrounding_whitespace),
            });
        }
        let skew = i128::from(now) - i128::from(header.timestamp);
        if skew.unsigned_abs() > u128::from(self.tolerance.as_secs()) {
            return Err(SignatureError::TimestampOutsideTolerance {
                timestamp: header.timestamp,
                skew: i64::try_from(skew).unwrap_or(if skew > 0 { i64::MAX } else { i64::MIN }),
                tolerance: self.tolerance.as_secs(),
            });
        }
        Ok(header.timestamp)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}
