//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in every
//! normal build): a verifier with a fixed key set that never fetches, and the strict parsers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::jwks::KeySet;
use crate::{Error, Verifier, VerifierConfig};

/// A verifier with the keys of `jwks` (a JWKS document) loaded. It never fetches: a token
/// with an unknown `kid` is refused at once, as when the refetch rate limit holds.
pub fn verifier_with_keys(mut config: VerifierConfig, jwks: &[u8]) -> Result<Verifier, Error> {
    config.unknown_kid_min_interval = Duration::from_secs(100 * 365 * 86400);
    let verifier = Verifier::new(config)?;
    let keys = crate::jwks::parse(jwks)?;
    let inner = &verifier.inner;
    inner
        .generation
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let set = Arc::new(KeySet {
        keys,
        generation: 1,
    });
    match inner.keys.write() {
        Ok(mut slot) => *slot = Some(set),
        Err(poisoned) => *poisoned.into_inner() = Some(set),
    }
    // A refetch "just happened": with the interval above, none ever starts.
    let mut last = inner
        .refetch
        .try_lock()
        .map_err(|_| Error::Config("refetch lock taken".into()))?;
    *last = Some(Instant::now());
    drop(last);
    Ok(verifier)
}

/// The canonical base64url decoder every token part goes through.
pub fn b64url(part: &str) -> Option<Vec<u8>> {
    crate::strict::b64url(part)
}

/// The JSON object parser of headers and claims (no duplicate keys at any depth).
pub fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    crate::strict::object(bytes)
}
