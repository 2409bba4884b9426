//! Password hashing. New hashes are argon2id (OWASP: m=19456 KiB, t=2, p=1) as PHC strings;
//! Better-Auth's scrypt `salt:key` hashes (docs/compatibility.md#passwords) still verify and are flagged for rehash.
//!
//! Hashing is CPU- and memory-heavy, so it runs on tokio's blocking pool with a bounded number
//! in flight; a flood of sign-ins queues here instead of stalling the async workers that serve
//! get-session and JWKS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

const ARGON2_M_KIB: u32 = 19_456;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

/// Which algorithm writes new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashScheme {
    Argon2id,
    /// Better-Auth's own format, for teams that want to be able to switch back.
    Scrypt,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HashError {
    /// No hashing slot became free in time.
    Busy,
    /// The stored value is no hash we know; treated as a failed verification by callers.
    UnknownFormat,
    Internal(String),
}

pub(crate) struct Verdict {
    pub(crate) ok: bool,
    /// Correct password, but stored in an older scheme or with weaker parameters.
    pub(crate) needs_rehash: bool,
}

#[derive(Clone)]
pub(crate) struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: HashScheme,
    slots: Arc<Semaphore>,
    /// How long a request may wait for a hashing slot before it is told the server is busy.
    queue_wait: Duration,
    /// A real hash of a random password in each scheme: checks against it cost the time of a
    /// real verification and always fail.
    decoys: [String; 2],
    /// Schemes that hashes in the database use (the configured one always): every password
    /// check computes one verification per scheme in use, the real one and decoys for the
    /// others, so that unknown emails, argon2id accounts and accounts still on Better-Auth's
    /// scrypt all cost the same (scrypt takes about three times argon2id here).
    in_use: [AtomicBool; 2],
    max_in_flight: usize,
    /// Requests waiting for a hashing slot right now.
    waiting: std::sync::atomic::AtomicUsize,
    /// How long requests waited for a slot (the `latchkey_hash_wait_seconds` metric).
    wait: prometheus_client::metrics::histogram::Histogram,
    /// Verifications computed, for the tests of the equalised work.
    #[cfg(test)]
    computed: std::sync::atomic::AtomicUsize,
}

impl HashScheme {
    fn index(self) -> usize {
        match self {
            HashScheme::Argon2id => 0,
            HashScheme::Scrypt => 1,
        }
    }

    const ALL: [HashScheme; 2] = [HashScheme::Argon2id, HashScheme::Scrypt];

    /// The scheme a stored hash is in (by its shape; a malformed one fails later).
    fn of(stored: &str) -> HashScheme {
        if stored.starts_with("$argon2") {
            HashScheme::Argon2id
        } else {
            HashScheme::Scrypt
        }
    }
}

impl Hasher {
    pub(crate) fn new(
        scheme: HashScheme,
        max_in_flight: usize,
        queue_wait: Duration,
    ) -> Result<Self, HashError> {
        let random = SecretString::from(crate::ids::random_string(32));
        let in_use = [AtomicBool::new(false), AtomicBool::new(false)];
        in_use[scheme.index()].store(true, Ordering::Relaxed);
        Ok(Self {
            inner: Arc::new(Inner {
                scheme,
                slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
                queue_wait,
                decoys: [argon2_hash(&random)?, scrypt_hash(&random)?],
                in_use,
                max_in_flight: max_in_flight.max(1),
                waiting: Default::default(),
                wait: latchkey_core::metrics::latency_histogram(),
                #[cfg(test)]
                computed: Default::default(),
            }),
        })
    }

    /// Records that stored hashes use `scheme` (found in the database at start-up, or met
    /// on a sign-in); from then on every check pays for it too.
    pub(crate) fn scheme_in_use(&self, scheme: HashScheme) {
        self.inner.in_use[scheme.index()].store(true, Ordering::Relaxed);
    }

    /// `(hashes running, requests waiting for a slot)`.
    pub(crate) fn load(&self) -> (usize, usize) {
        let running = self.inner.max_in_flight - self.inner.slots.available_permits();
        (running, self.inner.waiting.load(Ordering::Relaxed))
    }

    /// The wait-time histogram, to register with the metrics.
    pub(crate) fn wait_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.inner.wait.clone()
    }

    pub(crate) fn schemes_in_use(&self) -> Vec<HashScheme> {
        HashScheme::ALL
            .into_iter()
            .filter(|s| self.inner.in_use[s.index()].load(Ordering::Relaxed))
            .collect()
    }

    pub(crate) async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let scheme = self.inner.scheme;
        let password = password.clone();
        self.run(move || match scheme {
            HashScheme::Argon2id => argon2_hash(&password),
            HashScheme::Scrypt => scrypt_hash(&password),
        })
        .await
    }

    pub(crate) async fn verify(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verdict, HashError> {
        let inner = self.inner.clone();
        let password = password.clone();
        let stored = stored.to_string();
        let kind = HashScheme::of(&stored);
        self.scheme_in_use(kind);
        self.run(move || {
            let verdict = verify_blocking(&password, &stored, inner.scheme);
            inner.count();
            inner.decoys_except(Some(kind), &password);
            verdict
        })
        .await
    }

    /// Spends the time of a real verification (one per scheme in use) and always fails.
    pub(crate) async fn verify_decoy(&self, password: &SecretString) -> Result<(), HashError> {
        let inner = self.inner.clone();
        let password = password.clone();
        self.run(move || {
            inner.decoys_except(None, &password);
            Ok(())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let started = std::time::Instant::now();
        self.inner.waiting.fetch_add(1, Ordering::Relaxed);
        let acquired = tokio::time::timeout(
            self.inner.queue_wait,
            self.inner.slots.clone().acquire_owned(),
        )
        .await;
        self.inner.waiting.fetch_sub(1, Ordering::Relaxed);
        self.inner.wait.observe(started.elapsed().as_secs_f64());
        let permit = acquired
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        // The permit lives inside the blocking job: if the client disconnects and this future
        // is dropped, the hash still runs to completion, and the slot must stay taken until it
        // has. Otherwise dropped connections would start unbounded hashes.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| HashError::Internal(format!("hashing task failed: {e}")))?
    }
}

impl Inner {
    /// Checks `password` against the decoy of every scheme in use but `skip`.
    fn decoys_except(&self, skip: Option<HashScheme>, password: &SecretString) {
        for scheme in HashScheme::ALL {
            if Some(scheme) == skip || !self.in_use[scheme.index()].load(Ordering::Relaxed) {
                continue;
            }
            let _ = verify_blocking(password, &self.decoys[scheme.index()], self.scheme);
            self.count();
        }
    }

    fn count(&self) {
        #[cfg(test)]
        self.computed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Better-Auth hashes the NFKC form of the password; so do we, for every scheme, so that a
/// rehash from scrypt keeps accepting exactly the same inputs.
fn normalized(password: &SecretString) -> Zeroizing<String> {
    Zeroizing::new(password.expose_secret().nfkc().collect())
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| HashError::Internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn argon2_hash(password: &SecretString) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(normalized(password).as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
}

fn scrypt_params() -> Result<scrypt::Params, HashError> {
    scrypt::Params::new(14, 16, 1, 64).map_err(|e| HashError::Internal(e.to_string()))
}

/// `hex(salt16):hex(key64)`, where the scrypt salt is the *hex text*, as Better-Auth does.
fn scrypt_hash(password: &SecretString) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let salt_hex = hex::encode(salt);
    let key = scrypt_key(password, &salt_hex)?;
    Ok(format!("{salt_hex}:{}", hex::encode(key.as_slice())))
}

fn scrypt_key(password: &SecretString, salt_hex: &str) -> Result<Zeroizing<[u8; 64]>, HashError> {
    let mut out = Zeroizing::new([0u8; 64]);
    scrypt::scrypt(
        normalized(password).as_bytes(),
        salt_hex.as_bytes(),
        &scrypt_params()?,
        out.as_mut_slice(),
    )
    .map_err(|e| HashError::Internal(e.to_string()))?;
    Ok(out)
}

/// A stored hash, parsed: the cheap part of a verification, where a malformed value is told
/// apart (`UnknownFormat`) before any key derivation runs.
pub(crate) enum Stored<'a> {
    /// A PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
    Argon2(PasswordHash<'a>),
    /// Better-Auth's `salt:hex(key64)`; the salt is used as its text.
    Scrypt { salt: &'a str, key: Vec<u8> },
}

impl<'a> Stored<'a> {
    pub(crate) fn parse(stored: &'a str) -> Result<Self, HashError> {
        if stored.starts_with("$argon2") {
            let hash = PasswordHash::new(stored).map_err(|_| HashError::UnknownFormat)?;
            // Both found by fuzzing. A parameter named twice (`m=8,...,m=19456`) is not PHC,
            // and argon2 would take the last value where a reader of the text may take the
            // first. And argon2 0.5 computes `8 * p` in u32 before it checks p's maximum: a
            // larger p overflows (a panic with overflow checks on).
            let mut names = Vec::new();
            for (name, value) in hash.params.iter() {
                if names.contains(&name.as_str()) {
                    return Err(HashError::UnknownFormat);
                }
                names.push(name.as_str());
                if name.as_str() == "p" && value.decimal().map_or(true, |p| p > Params::MAX_P_COST)
                {
                    return Err(HashError::UnknownFormat);
                }
            }
            return Ok(Stored::Argon2(hash));
        }
        let (salt, key_hex) = stored.split_once(':').ok_or(HashError::UnknownFormat)?;
        let key = hex::decode(key_hex).map_err(|_| HashError::UnknownFormat)?;
        if key.len() != 64 || salt.is_empty() {
            return Err(HashError::UnknownFormat);
        }
        Ok(Stored::Scrypt { salt, key })
    }

    /// For argon2: are its parameters weaker than ours (or unreadable)?
    pub(crate) fn weaker_than_ours(&self) -> bool {
        match self {
            Stored::Argon2(parsed) => Params::try_from(parsed)
                .map(|p| {
                    p.m_cost() < ARGON2_M_KIB || p.t_cost() < ARGON2_T || p.p_cost() < ARGON2_P
                })
                .unwrap_or(true),
            Stored::Scrypt { .. } => false,
        }
    }
}

pub(crate) fn verify_blocking(
    password: &SecretString,
    stored: &str,
    scheme: HashScheme,
) -> Result<Verdict, HashError> {
    match Stored::parse(stored)? {
        Stored::Argon2(parsed) => {
            let ok = argon2()?
                .verify_password(normalized(password).as_bytes(), &parsed)
                .is_ok();
            let weaker = Stored::Argon2(parsed).weaker_than_ours();
            let needs_rehash = ok && (scheme != HashScheme::Argon2id || weaker);
            Ok(Verdict { ok, needs_rehash })
        }
        Stored::Scrypt {
            salt,
            key: expected,
        } => {
            let key = scrypt_key(password, salt)?;
            let ok = bool::from(key.as_slice().ct_eq(&expected));
            Ok(Verdict {
                ok,
                needs_rehash: ok && scheme != HashScheme::Scrypt,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn spec_scrypt_vector_verifies_and_asks_for_rehash() {
        let stored = "adb3fae70953259d7614bfa09ed21a8b:65f2f44a82ba2250db0f5a26dc34a598ab060c1ed25d68d5cbcee8db8a7943f903b39ecb37659feb68a111f761a76bd29d6571cad35775245ea2a1cee165c00a";
        let v = verify_blocking(&pw("password123"), stored, HashScheme::Argon2id).unwrap();
        assert!(v.ok && v.needs_rehash);
        let v = verify_blocking(&pw("password124"), stored, HashScheme::Argon2id).unwrap();
        assert!(!v.ok && !v.needs_rehash);
        let v = verify_blocking(&pw("password123"), stored, HashScheme::Scrypt).unwrap();
        assert!(v.ok && !v.needs_rehash);
    }

    #[test]
    fn argon2_round_trip_with_owasp_parameters() {
        let h = argon2_hash(&pw("correct horse")).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let v = verify_blocking(&pw("correct horse"), &h, HashScheme::Argon2id).unwrap();
        assert!(v.ok && !v.needs_rehash);
        assert!(
            !verify_blocking(&pw("wrong"), &h, HashScheme::Argon2id)
                .unwrap()
                .ok
        );
    }

    #[test]
    fn scrypt_round_trip_and_nfkc() {
        let h = scrypt_hash(&pw("ﬁle-password")).unwrap();
        assert_eq!(h.len(), 161);
        // U+FB01 (ﬁ) normalises to "fi" under NFKC.
        assert!(
            verify_blocking(&pw("file-password"), &h, HashScheme::Scrypt)
                .unwrap()
                .ok
        );
    }

    #[test]
    fn garbage_is_an_unknown_format_not_a_panic() {
        for stored in [
            "",
            "nocolon",
            "zz:zz",
            "$argon2id$garbage",
            "abc:1234",
            // Fuzz finding: argon2 0.5 overflowed computing 8 * p for p above its maximum.
            "$argon2d$p=1949456194,t=2",
            "$argon2id$v=19$m=19456,t=2,p=536870912$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=19456,t=2,p=16777216$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            // Fuzz finding: a parameter named twice, which argon2 reads as its last value.
            "$argon2$m=2,p=1,m=16,t=2,p=2,t=2,t=2,m=96,t=2,p=3,p=2,m=133662",
            "$argon2id$v=19$m=8,t=2,p=1,m=19456$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let verdict = verify_blocking(&pw("x"), stored, HashScheme::Argon2id);
            assert!(verdict.map_or(true, |v| !v.ok), "{stored:?} verified");
            if stored.contains("m=") || stored.contains("p=") {
                assert!(Stored::parse(stored).is_err(), "{stored:?} parsed");
            }
        }
        // The parser still takes a well-formed PHC string with unusual parameters.
        let odd = "$argon2i$m=16,t=2,p=2,keyid=AAEC$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA";
        assert!(Stored::parse(odd).is_ok());
    }

    /// Unknown emails and accounts in either scheme cost one verification per scheme in use.
    #[tokio::test]
    async fn every_check_pays_for_every_scheme_in_use() {
        let h = Hasher::new(HashScheme::Argon2id, 2, Duration::from_secs(10)).unwrap();
        let computed = || h.inner.computed.load(Ordering::Relaxed);
        let argon = h.hash(&pw("password123")).await.unwrap();
        // argon2id alone: one verification each.
        h.verify_decoy(&pw("x")).await.unwrap();
        assert_eq!(computed(), 1);
        assert!(h.verify(&pw("password123"), &argon).await.unwrap().ok);
        assert_eq!(computed(), 2);
        assert_eq!(h.schemes_in_use(), [HashScheme::Argon2id]);
        // A scrypt hash is met (or found at start-up): from now on both, whatever the path.
        let scrypt = scrypt_hash(&pw("password123")).unwrap();
        assert!(h.verify(&pw("password123"), &scrypt).await.unwrap().ok);
        assert_eq!(computed(), 4);
        assert!(h.verify(&pw("wrong"), &argon).await.map(|v| !v.ok).unwrap());
        assert_eq!(computed(), 6);
        h.verify_decoy(&pw("x")).await.unwrap();
        assert_eq!(computed(), 8);
        assert_eq!(
            h.schemes_in_use(),
            [HashScheme::Argon2id, HashScheme::Scrypt]
        );
    }

    #[tokio::test]
    async fn hasher_runs_jobs_and_decoy_fails() {
        let h = Hasher::new(HashScheme::Argon2id, 2, Duration::from_secs(10)).unwrap();
        let stored = h.hash(&pw("password123")).await.unwrap();
        assert!(h.verify(&pw("password123"), &stored).await.unwrap().ok);
        h.verify_decoy(&pw("password123")).await.unwrap();
    }
}
