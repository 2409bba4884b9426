use std::fmt;

/// Why a token was refused. Each variant has a stable machine code (for JSON error bodies)
/// and a fixed RFC 6750 `error_description`; neither ever contains part of the token, so
/// they are safe to return to clients and to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No bearer token was presented.
    Missing,
    /// Not a compact JWS; base64url that is not canonical (padding, `+`, `/`); not a JSON
    /// object, or one with a duplicate key; a critical header (`crit`); `sub` missing or not a
    /// string.
    Malformed,
    /// Longer than `max_token_bytes`; refused before any parsing.
    TooLarge,
    /// `alg` is not EdDSA/ES256/RS256, or does not match the key named by `kid`.
    UnsupportedAlgorithm,
    /// `kid` missing, or not in the key set even after a refetch.
    UnknownKey,
    BadSignature,
    Expired,
    /// `iat` (or `nbf`) lies in the future beyond the leeway.
    NotYetValid,
    /// `exp` missing; `exp`, `nbf` or `iat` present but not a JSON number (a string, boolean,
    /// null, array or object); or `iat` missing while a maximum lifetime is configured.
    InvalidTimeClaim,
    /// `exp − iat` exceeds the configured maximum lifetime.
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    /// No key set has been loaded yet (the auth daemon has not been reachable).
    NoKeys,
}

impl VerifyError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "UNAUTHORIZED",
            Self::Malformed => "INVALID_TOKEN",
            Self::TooLarge => "TOKEN_TOO_LARGE",
            Self::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            Self::UnknownKey => "UNKNOWN_KEY",
            Self::BadSignature => "INVALID_SIGNATURE",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::InvalidTimeClaim => "INVALID_TIME_CLAIM",
            Self::LifetimeTooLong => "TOKEN_LIFETIME_TOO_LONG",
            Self::WrongIssuer => "INVALID_ISSUER",
            Self::WrongAudience => "INVALID_AUDIENCE",
            Self::NoKeys => "NO_KEYS",
        }
    }

    /// Plain ASCII without `"` or `\`, so it can go into a `WWW-Authenticate` quoted string.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "Unauthorized",
            Self::Malformed => "The access token is malformed",
            Self::TooLarge => "The access token is too large",
            Self::UnsupportedAlgorithm => "The access token uses an unsupported algorithm",
            Self::UnknownKey => "The access token was signed with an unknown key",
            Self::BadSignature => "The access token signature is invalid",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not yet valid",
            Self::InvalidTimeClaim => "The access token has a missing or invalid exp, iat or nbf",
            Self::LifetimeTooLong => "The access token lifetime exceeds the maximum",
            Self::WrongIssuer => "The access token has the wrong issuer",
            Self::WrongAudience => "The access token has the wrong audience",
            Self::NoKeys => "Signing keys are not available yet",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for VerifyError {}

/// A failure to set up the verifier or to load the JWKS. A failed fetch (every variant but
/// [`Error::NoUsableKeys`]) leaves the loaded key set as it was: the last good set keeps
/// verifying while the issuer is unreachable or answers garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration cannot work (bad URL, unreadable CA file, ...).
    Config(String),
    /// Connecting or reading failed.
    Fetch(String),
    Timeout,
    /// The JWKS endpoint answered with a non-200 status.
    Status(u16),
    /// The JWKS response exceeded the size cap.
    TooLarge,
    /// The response is not a JWKS document.
    Invalid(String),
    /// A valid JWKS document without a single key we can verify with. The issuer no longer
    /// publishes any key we could use, so the previous set is dropped too (fail closed): until
    /// a fetch brings usable keys, tokens are refused with [`VerifyError::NoKeys`].
    NoUsableKeys,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(why) => write!(f, "invalid verifier configuration: {why}"),
            Self::Fetch(why) => write!(f, "JWKS fetch failed: {why}"),
            Self::Timeout => f.write_str("JWKS fetch timed out"),
            Self::Status(code) => write!(f, "JWKS endpoint answered HTTP {code}"),
            Self::TooLarge => f.write_str("JWKS response too large"),
            Self::Invalid(why) => write!(f, "invalid JWKS document: {why}"),
            Self::NoUsableKeys => f.write_str("JWKS contains no usable signing key"),
        }
    }
}

impl std::error::Error for Error {}
