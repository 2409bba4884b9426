//! Verifies JWTs issued by Better-Auth's `jwt()` plugin (or anything else that publishes a
//! JWKS) for resource servers: EdDSA, ES256 and RS256 only, the algorithm pinned by the key,
//! exact issuer and audience, and a key set refreshed in the background.
//!
//! The rules, in the order they are checked (each refusal is one [`VerifyError`], whose
//! stable code is in parentheses):
//! * at most `max_token_bytes`, three base64url parts, each canonical (no padding, no `+` or
//!   `/`, no stray trailing bits), header and claims JSON objects without duplicate keys at
//!   any depth, no `crit` header (`INVALID_TOKEN`, `TOKEN_TOO_LARGE`);
//! * `alg` exactly `EdDSA`, `ES256` or `RS256` and equal to the algorithm of the key named by
//!   `kid` (`UNSUPPORTED_ALGORITHM`); the key comes from the JWKS only: `jwk`, `jku`, `x5u`,
//!   `x5c` and any other header are ignored, nothing named in a token is ever fetched
//!   (`UNKNOWN_KEY`, `INVALID_SIGNATURE`);
//! * `exp` required, `nbf` and `iat` optional, each a JSON number when present: a string,
//!   boolean, null, array or object is refused (`INVALID_TIME_CLAIM`), never skipped; a
//!   fractional value counts as its whole second, rounded down; then `exp` in the past
//!   (`TOKEN_EXPIRED`), `nbf` or `iat` in the future (`TOKEN_NOT_YET_VALID`), each with the
//!   leeway;
//! * with [`VerifierConfig::max_lifetime`] set, `iat` is required (`INVALID_TIME_CLAIM`) and
//!   `exp − iat` may not exceed it (`TOKEN_LIFETIME_TOO_LONG`);
//! * `iss` exactly the issuer (`INVALID_ISSUER`), `aud` the audience or an array containing it
//!   (`INVALID_AUDIENCE`), `sub` a string (`INVALID_TOKEN`).
//!
//! Key set: a successful fetch of a JWKS document replaces the whole set, so a key the issuer
//! stopped publishing (rotated out, or removed after a compromise) is refused from the next
//! refresh on; a failed fetch keeps the last good set. Of two fetches in flight at once, the
//! one that started later wins, so a slow, stale answer cannot bring a removed key back.
//!
//! Verified-token cache ([`VerifierConfig::cache_size`], off unless set): the claims of a
//! token that passed every rule above are kept under the SHA-256 of the whole compact token
//! (never the token), so that presenting it again skips the signature and claim checks. An
//! entry is served only if, at that moment, the key set still holds the key it was verified
//! with (same `kid`, same published JWK) and the time rules still pass with the same
//! leeway, exactly as a fresh verification would check them; otherwise the token is verified
//! in full (and refused for the reason a fresh verification gives). So a token is refused at
//! the same instant with or without the cache: after `exp` + leeway, or once a refresh has
//! dropped its key. Each successful key-set refresh also drops the entries of keys it no
//! longer lists and those past `exp` + leeway. Bounded: at most `cache_size` entries, a
//! CLOCK (second-chance) sweep evicts when full, expired entries first. Only successes are
//! cached; a token differing in any byte has another digest and is verified in full.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_jwt::{Verifier, VerifierConfig};
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "http://127.0.0.1:3000/api/auth/jwks",
//!     "http://127.0.0.1:3000",
//!     "http://127.0.0.1:3000",
//! ))?;
//! verifier.spawn_refresher();
//! let claims = verifier.verify("eyJ...").await?;
//! println!("{}", claims.sub);
//! # Ok(()) }
//! ```

mod cache;
mod claims;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod jwks;
mod strict;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

pub use cache::CacheStats;
pub use claims::Claims;
pub use error::{Error, VerifyError};

use cache::TokenCache;
use jwks::{HttpClient, KeySet};

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `http://` or `https://` URL of the JWKS document.
    pub jwks_url: String,
    /// Required exact value of `iss`.
    pub issuer: String,
    /// Required value of `aud` (a string equal to it, or an array containing it).
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Longest lifetime (`exp − iat`) a token may claim; `None`: no limit, and `iat` may be
    /// absent. With a limit, a token without `iat` is refused (Better-Auth always sets it).
    pub max_lifetime: Option<Duration>,
    pub max_token_bytes: usize,
    pub refresh_interval: Duration,
    /// A token with an unknown `kid` triggers a JWKS refetch at most this often, so that
    /// garbage tokens cannot turn us into a load generator against the auth server.
    pub unknown_kid_min_interval: Duration,
    pub fetch_timeout: Duration,
    /// Extra CA certificates (PEM) trusted for an HTTPS JWKS URL, besides the Mozilla roots.
    pub extra_roots: Option<PathBuf>,
    /// Entries of the verified-token cache (crate docs); `0` (the default here): no cache.
    /// Worth it for access tokens presented on many requests; pointless for single-use
    /// tokens such as OpenID Connect ID tokens. An entry holds the parsed claims: about 3 KB
    /// for a Better-Auth token of 645 bytes.
    pub cache_size: usize,
}

impl VerifierConfig {
    /// The given endpoint and expectations with the default limits.
    pub fn new(
        jwks_url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(10),
            max_lifetime: None,
            max_token_bytes: 8192,
            refresh_interval: Duration::from_secs(300),
            unknown_kid_min_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            extra_roots: None,
            cache_size: 0,
        }
    }
}

/// A JWT verifier backed by a remote JWKS. Cloning is cheap and shares the key set.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    jwks_uri: http::Uri,
    client: HttpClient,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Numbers fetches in the order they start; the loaded set carries its fetch's number.
    generation: AtomicU64,
    /// Held while an unknown-kid refetch is in flight; holds the time of the last one.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    stats: FetchStats,
    /// `None` when `cache_size` is 0.
    cache: Option<TokenCache<Verified>>,
}

/// What a full verification established, as the cache keeps it: the claims, and what a hit
/// must check again (the key it was verified with, the time claims).
struct Verified {
    claims: Claims,
    kid: String,
    key_fingerprint: [u8; 32],
    nbf: Option<i64>,
}

#[derive(Default)]
struct FetchStats {
    last_loaded: std::sync::Mutex<Option<Instant>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What a verifier knows of its key set, for metrics and health pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierStats {
    /// Usable keys in the current set.
    pub keys: usize,
    /// Time since the current set was fetched, if one was.
    pub key_set_age: Option<Duration>,
    /// JWKS fetches that loaded a key set, and those that failed, since start.
    pub fetches_ok: u64,
    pub fetches_failed: u64,
    /// The verified-token cache (all zero when it is off).
    pub cache: CacheStats,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Result<Self, Error> {
        let jwks_uri: http::Uri = config
            .jwks_url
            .parse()
            .map_err(|_| Error::Config(format!("invalid JWKS URL {:?}", config.jwks_url)))?;
        if !matches!(jwks_uri.scheme_str(), Some("http" | "https")) || jwks_uri.host().is_none() {
            return Err(Error::Config(format!(
                "JWKS URL {:?} must be an absolute http:// or https:// URL",
                config.jwks_url
            )));
        }
        if jwks_uri.scheme_str() == Some("http") && !is_local(jwks_uri.host().unwrap_or_default()) {
            // Whoever can tamper with this fetch can mint identities; allowed (dev setups,
            // private networks) but said out loud.
            tracing::warn!(
                "JWKS URL {} is plain http to a non-local host: use https",
                config.jwks_url
            );
        }
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err(Error::Config(
                "issuer and audience must not be empty".into(),
            ));
        }
        let client = jwks::client(config.extra_roots.as_deref(), config.fetch_timeout)?;
        let cache = TokenCache::new(config.cache_size);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                jwks_uri,
                client,
                keys: RwLock::new(None),
                generation: AtomicU64::new(0),
                refetch: tokio::sync::Mutex::new(None),
                stats: FetchStats::default(),
                cache,
            }),
        })
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// True while a key set with at least one usable key is loaded. It stays loaded when
    /// later fetches fail; it is emptied by a JWKS document without usable keys.
    pub fn is_ready(&self) -> bool {
        self.current().is_some_and(|set| !set.keys.is_empty())
    }

    /// Fetches the JWKS. A valid document replaces the whole key set, so keys it no longer
    /// lists stop verifying at once; one without any usable key empties the set and is
    /// reported as [`Error::NoUsableKeys`]. Any other failure leaves the set as it was. When
    /// fetches overlap, an answer is dropped if a fetch that started after it has already been
    /// applied.
    pub async fn refresh(&self) -> Result<(), Error> {
        let result = self.fetch_and_load().await;
        let stats = &self.inner.stats;
        match &result {
            Ok(()) => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut at) = stats.last_loaded.lock() {
                    *at = Some(Instant::now());
                }
            }
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    pub fn stats(&self) -> VerifierStats {
        let stats = &self.inner.stats;
        VerifierStats {
            keys: self.current().map_or(0, |set| set.keys.len()),
            key_set_age: stats
                .last_loaded
                .lock()
                .ok()
                .and_then(|at| at.map(|t| t.elapsed())),
            fetches_ok: stats.ok.load(Ordering::Relaxed),
            fetches_failed: stats.failed.load(Ordering::Relaxed),
            cache: self
                .inner
                .cache
                .as_ref()
                .map_or_else(CacheStats::default, TokenCache::stats),
        }
    }

    async fn fetch_and_load(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let body = tokio::time::timeout(
            inner.config.fetch_timeout,
            jwks::fetch(&inner.client, &inner.jwks_uri),
        )
        .await
        .map_err(|_| Error::Timeout)??;
        let keys = jwks::parse(&body)?;
        let count = keys.len();
        let set = Arc::new(KeySet { keys, generation });
        let mut slot = match inner.keys.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let applied = if slot.as_ref().is_some_and(|s| s.generation > generation) {
            // A fetch that started after this one already answered: ours may be stale.
            tracing::debug!("JWKS answer superseded by a newer fetch");
            false
        } else {
            if let Some(old) = slot.as_ref() {
                for kid in old.keys.keys().filter(|k| !set.keys.contains_key(*k)) {
                    tracing::info!(kid = %kid.escape_debug(), "key no longer in the JWKS: refused from now on");
                }
            }
            *slot = Some(set.clone());
            true
        };
        drop(slot);
        if applied {
            self.prune_cache(&set);
        }
        if count == 0 {
            return Err(Error::NoUsableKeys);
        }
        tracing::debug!(keys = count, "JWKS loaded");
        Ok(())
    }

    /// Keeps the key set fresh: every `refresh_interval` once loaded; until then (and after
    /// a failure) retries with exponential backoff from 1 s, capped at the interval. Failures
    /// are logged and the previous keys stay in use.
    pub fn spawn_refresher(&self) -> JoinHandle<()> {
        let verifier = self.clone();
        tokio::spawn(async move {
            let interval = verifier
                .inner
                .config
                .refresh_interval
                .max(Duration::from_secs(1));
            let mut backoff = Duration::from_secs(1);
            loop {
                let wait = match verifier.refresh().await {
                    Ok(()) => {
                        backoff = Duration::from_secs(1);
                        interval
                    }
                    Err(e) => {
                        tracing::warn!(url = %verifier.inner.jwks_uri, "{e}; retrying in {backoff:?}");
                        let wait = backoff;
                        backoff = (backoff * 2).min(interval).min(Duration::from_secs(60));
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Verifies signature and claims (the rules are in the crate documentation), or answers
    /// from the verified-token cache when that gives the same answer. Never panics on input;
    /// errors carry no token content.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let config = &self.inner.config;
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > config.max_token_bytes {
            return Err(VerifyError::TooLarge);
        }
        let Some(cache) = &self.inner.cache else {
            return self.verify_fully(token).await.map(|v| v.claims);
        };
        let hash = cache::token_hash(token);
        if let Some(entry) = cache.get(&hash) {
            if self.still_valid(&entry) {
                cache.count_hit();
                return Ok(entry.claims.clone());
            }
            // Its key left the set (or changed), or its time is up: verify afresh, so the
            // refusal is the one a fresh verification gives, and forget the entry.
            cache.remove_if_same(&hash, &entry);
        }
        cache.count_miss();
        let verified = self.verify_fully(token).await?;
        let claims = verified.claims.clone();
        let dead_after = verified.claims.exp.saturating_add(self.leeway_secs());
        cache.insert(hash, Arc::new(verified), dead_after, now_secs());
        Ok(claims)
    }

    /// Would a fresh verification of the token behind `entry` succeed now? The signature and
    /// the other claims cannot have changed (same bytes, same configuration); what can is the
    /// key set and the clock, so those are checked as [`Self::verify_fully`] checks them.
    fn still_valid(&self, entry: &Verified) -> bool {
        let Some(set) = self.current() else {
            return false;
        };
        let same_key = set
            .keys
            .get(&entry.kid)
            .is_some_and(|key| key.fingerprint == entry.key_fingerprint);
        same_key
            && check_times(
                entry.claims.exp,
                entry.nbf,
                entry.claims.iat,
                now_secs(),
                self.leeway_secs(),
            )
            .is_ok()
    }

    /// After a new key set is in: drops the cached verifications of keys it no longer holds
    /// (or holds with other material) and those past `exp` + leeway. Lookups check the key
    /// set themselves, so this only frees memory early and keeps the entry count honest.
    fn prune_cache(&self, set: &KeySet) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        let now = now_secs();
        let dropped = cache.retain(|entry, dead_after| {
            dead_after >= now
                && set
                    .keys
                    .get(&entry.kid)
                    .is_some_and(|key| key.fingerprint == entry.key_fingerprint)
        });
        if dropped > 0 {
            tracing::debug!(
                dropped,
                "verified-token cache: entries of keys gone from the JWKS, or expired, dropped"
            );
        }
    }

    fn leeway_secs(&self) -> i64 {
        i64::try_from(self.inner.config.leeway.as_secs()).unwrap_or(i64::MAX)
    }

    /// Every rule, with no cache involved. The caller has checked emptiness and size.
    async fn verify_fully(&self, token: &str) -> Result<Verified, VerifyError> {
        let config = &self.inner.config;
        let (head, payload, signature) = split(token)?;
        let header = parse_header(head)?;
        let alg = match header.alg.as_str() {
            "EdDSA" => Algorithm::EdDSA,
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            _ => return Err(VerifyError::UnsupportedAlgorithm),
        };
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let set = self.key_set_with(&kid).await?;
        let key = set.keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if key.alg != alg {
            return Err(VerifyError::UnsupportedAlgorithm);
        }
        // The signature covers the header and payload exactly as sent.
        let signing_input = &token[..head.len() + 1 + payload.len()];
        if strict::b64url(signature).is_none() {
            return Err(VerifyError::Malformed);
        }
        match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            Ok(false) => return Err(VerifyError::BadSignature),
            Err(_) => return Err(VerifyError::Malformed),
        }

        let all = strict::b64url(payload)
            .and_then(|bytes| strict::object(&bytes))
            .ok_or(VerifyError::Malformed)?;
        let exp = numeric_date(&all, "exp")?.ok_or(VerifyError::InvalidTimeClaim)?;
        let nbf = numeric_date(&all, "nbf")?;
        let iat = numeric_date(&all, "iat")?;
        check_times(exp, nbf, iat, now_secs(), self.leeway_secs())?;
        if let Some(max) = config.max_lifetime {
            let iat = iat.ok_or(VerifyError::InvalidTimeClaim)?;
            let max = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
            if exp.saturating_sub(iat) > max {
                return Err(VerifyError::LifetimeTooLong);
            }
        }

        match all.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == config.issuer => {}
            _ => return Err(VerifyError::WrongIssuer),
        }
        let aud_ok = match all.get("aud") {
            Some(Value::String(aud)) => *aud == config.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&config.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(VerifyError::WrongAudience);
        }
        let claims = Claims::from_map(all, exp, iat).ok_or(VerifyError::Malformed)?;
        Ok(Verified {
            claims,
            kid,
            key_fingerprint: key.fingerprint,
            nbf,
        })
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        match self.inner.keys.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current key set if it knows `kid`; otherwise one rate-limited refetch. Callers
    /// arriving while a refetch is in flight wait for it instead of starting their own.
    async fn key_set_with(&self, kid: &str) -> Result<Arc<KeySet>, VerifyError> {
        let before = self.current();
        if let Some(set) = &before {
            if set.keys.contains_key(kid) {
                return Ok(set.clone());
            }
        }
        let seen = before.as_ref().map_or(0, |s| s.generation);
        let mut last = self.inner.refetch.lock().await;
        let changed = self.current().is_some_and(|s| s.generation != seen);
        let rate_limited =
            last.is_some_and(|t| t.elapsed() < self.inner.config.unknown_kid_min_interval);
        if !changed && !rate_limited {
            *last = Some(Instant::now());
            if let Err(e) = self.refresh().await {
                tracing::warn!(url = %self.inner.jwks_uri, "JWKS refetch for unknown key failed: {e}");
            }
        }
        drop(last);
        match self.current() {
            Some(set) if set.keys.contains_key(kid) => Ok(set),
            Some(set) if !set.keys.is_empty() => Err(VerifyError::UnknownKey),
            // Never loaded, or the issuer publishes no usable key any more.
            _ => Err(VerifyError::NoKeys),
        }
    }
}

struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// The three parts of a compact JWS, or `Malformed`.
fn split(token: &str) -> Result<(&str, &str, &str), VerifyError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(head), Some(payload), Some(signature), None) => Ok((head, payload, signature)),
        _ => Err(VerifyError::Malformed),
    }
}

/// Parsed by hand rather than with `jsonwebtoken::decode_header` so that `alg: none` or HS256
/// is reported as an unsupported algorithm rather than as a malformed token, and so that only
/// `alg` and `kid` are ever looked at (`jwk`, `jku`, `x5u`, `x5c` mean nothing here).
fn parse_header(head: &str) -> Result<RawHeader, VerifyError> {
    let header = strict::b64url(head)
        .and_then(|bytes| strict::object(&bytes))
        .ok_or(VerifyError::Malformed)?;
    // We implement no JWS extensions, so any critical one must be refused (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(VerifyError::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(VerifyError::Malformed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::Malformed),
    };
    Ok(RawHeader { alg, kid })
}

/// The time rules, shared by a full verification and a cache hit so that both refuse at the
/// same instant: `exp` in the past beyond the leeway is `Expired`; `nbf` or `iat` in the
/// future beyond it is `NotYetValid`.
fn check_times(
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    leeway: i64,
) -> Result<(), VerifyError> {
    if exp.saturating_add(leeway) < now {
        return Err(VerifyError::Expired);
    }
    let future = |t: Option<i64>| t.is_some_and(|t| t > now.saturating_add(leeway));
    if future(nbf) || future(iat) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2) in whole seconds, rounded down: `Ok(None)` when absent,
/// `InvalidTimeClaim` when present but not a JSON number. Values beyond `i64` saturate.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, VerifyError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(VerifyError::InvalidTimeClaim);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    if n.as_u64().is_some() {
        return Ok(Some(i64::MAX));
    }
    // A float: serde_json numbers are always finite; `as` saturates.
    Ok(Some(n.as_f64().map_or(0, |f| f.floor() as i64)))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &[u8] = br#"{"keys":[{"alg":"EdDSA","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kty":"OKP","kid":"good"}]}"#;

    /// A verifier with a cache and the key `good` loaded, that never fetches.
    fn verifier() -> (Verifier, [u8; 32]) {
        let mut config = VerifierConfig::new("http://127.0.0.1:9/jwks", "iss", "aud");
        config.cache_size = 4;
        config.unknown_kid_min_interval = Duration::from_secs(3600);
        let v = Verifier::new(config).unwrap();
        let keys = jwks::parse(JWKS).unwrap();
        let fingerprint = keys["good"].fingerprint;
        *v.inner.keys.write().unwrap() = Some(Arc::new(KeySet {
            keys,
            generation: 1,
        }));
        *v.inner.refetch.try_lock().unwrap() = Some(Instant::now());
        (v, fingerprint)
    }

    fn plant(v: &Verifier, token: &str, kid: &str, fp: [u8; 32], exp: i64, iat: Option<i64>) {
        let mut all = Map::new();
        all.insert("sub".into(), Value::from("from-the-cache"));
        let entry = Verified {
            claims: Claims::from_map(all, exp, iat).unwrap(),
            kid: kid.into(),
            key_fingerprint: fp,
            nbf: None,
        };
        let cache = v.inner.cache.as_ref().unwrap();
        cache.insert(
            cache::token_hash(token),
            Arc::new(entry),
            exp + 10,
            now_secs(),
        );
    }

    /// Lookups check the key set and the clock themselves, so that an entry stored by a
    /// verification that raced a refresh (or one the prune missed) is never served. The
    /// planted token `a.b.c` is garbage: served, it yields the planted claims; verified
    /// afresh, it is malformed.
    #[tokio::test]
    async fn a_hit_is_served_only_if_a_fresh_verification_would_pass_its_key_and_time_checks() {
        let (v, fp) = verifier();
        let now = now_secs();
        let token = "a.b.c";
        plant(&v, token, "good", fp, now + 60, Some(now));
        assert_eq!(v.verify(token).await.unwrap().sub, "from-the-cache");

        let mut other = fp;
        other[0] ^= 1;
        for (kid, fp, exp, iat) in [
            ("gone", fp, now + 60, Some(now)),
            ("good", other, now + 60, Some(now)),
            // Past exp + leeway (10 s).
            ("good", fp, now - 11, Some(now - 60)),
            // iat ahead of the clock (it was set back after the token was cached).
            ("good", fp, now + 60, Some(now + 30)),
        ] {
            plant(&v, token, kid, fp, exp, iat);
            assert_eq!(
                v.verify(token).await,
                Err(VerifyError::Malformed),
                "{kid} {exp} {iat:?}"
            );
            // ... and the entry is gone.
            assert_eq!(v.stats().cache.entries, 0);
        }
        // With no key set at all (never loaded): nothing is served either.
        plant(&v, token, "good", fp, now + 60, Some(now));
        *v.inner.keys.write().unwrap() = None;
        assert_eq!(v.verify(token).await, Err(VerifyError::Malformed));
        assert_eq!(v.stats().cache.entries, 0);
    }

    #[test]
    fn time_rules_at_their_boundaries() {
        let now = 1_000_000;
        // exp + leeway == now is still valid; one second later it is not.
        assert_eq!(check_times(now - 10, None, None, now, 10), Ok(()));
        assert_eq!(
            check_times(now - 11, None, None, now, 10),
            Err(VerifyError::Expired)
        );
        assert_eq!(check_times(now, None, None, now, 0), Ok(()));
        assert_eq!(
            check_times(now - 1, None, None, now, 0),
            Err(VerifyError::Expired)
        );
        for (nbf, iat) in [(Some(now + 11), None), (None, Some(now + 11))] {
            assert_eq!(
                check_times(now + 900, nbf, iat, now, 10),
                Err(VerifyError::NotYetValid)
            );
        }
        assert_eq!(
            check_times(now + 900, Some(now + 10), Some(now + 10), now, 10),
            Ok(())
        );
        // Saturating, never overflowing.
        assert_eq!(check_times(i64::MAX, None, None, now, i64::MAX), Ok(()));
        assert_eq!(
            check_times(i64::MIN, None, None, now, 0),
            Err(VerifyError::Expired)
        );
    }
}
