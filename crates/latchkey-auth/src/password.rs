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
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

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
    /// Argon2 working memory kept between hashes (see [`Memory`]), with when each was last
    /// given back.
    spare: std::sync::Mutex<Vec<(Memory, std::time::Instant)>>,
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
        let mut memory = Memory::default();
        let in_use = [AtomicBool::new(false), AtomicBool::new(false)];
        in_use[scheme.index()].store(true, Ordering::Relaxed);
        Ok(Self {
            inner: Arc::new(Inner {
                scheme,
                slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
                queue_wait,
                decoys: [argon2_hash(&random, &mut memory)?, scrypt_hash(&random)?],
                in_use,
                max_in_flight: max_in_flight.max(1),
                waiting: Default::default(),
                wait: latchkey_core::metrics::latency_histogram(),
                spare: std::sync::Mutex::new(vec![(memory, std::time::Instant::now())]),
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

    /// Frees the argon2 memory that no hash has used for `idle`: a burst of sign-ins keeps
    /// up to one 19 MiB block per slot, which a quiet daemon should not sit on. Blocks this
    /// size are mmapped (daemon.rs), so the memory goes back to the system at once.
    pub(crate) fn release_idle_memory(&self, idle: Duration) -> usize {
        let mut spare = self.inner.spare.lock().unwrap_or_else(|e| e.into_inner());
        let before = spare.len();
        spare.retain(|(_, given_back)| given_back.elapsed() < idle);
        before - spare.len()
    }

    /// Runs [`Hasher::release_idle_memory`] until the shutdown.
    pub(crate) async fn release_idle_memory_until(
        self,
        idle: Duration,
        mut shutdown: latchkey_core::shutdown::ShutdownSignal,
    ) {
        while shutdown.sleep(idle / 2).await {
            self.release_idle_memory(idle);
        }
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
        self.run(move |memory| match scheme {
            HashScheme::Argon2id => argon2_hash(&password, memory),
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
        self.run(move |memory| {
            let verdict = verify_blocking(&password, &stored, inner.scheme, memory);
            inner.count();
            inner.decoys_except(Some(kind), &password, memory);
            verdict
        })
        .await
    }

    /// Spends the time of a real verification (one per scheme in use) and always fails.
    pub(crate) async fn verify_decoy(&self, password: &SecretString) -> Result<(), HashError> {
        let inner = self.inner.clone();
        let password = password.clone();
        self.run(move |memory| {
            inner.decoys_except(None, &password, memory);
            Ok(())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> Result<T, HashError> + Send + 'static,
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
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut memory = inner.take_memory();
            let result = job(&mut memory);
            inner.give_back(memory);
            result
        })
        .await
        .map_err(|e| HashError::Internal(format!("hashing task failed: {e}")))?
    }
}

impl Inner {
    /// Checks `password` against the decoy of every scheme in use but `skip`.
    fn decoys_except(
        &self,
        skip: Option<HashScheme>,
        password: &SecretString,
        memory: &mut Memory,
    ) {
        for scheme in HashScheme::ALL {
            if Some(scheme) == skip || !self.in_use[scheme.index()].load(Ordering::Relaxed) {
                continue;
            }
            let _ = verify_blocking(password, &self.decoys[scheme.index()], self.scheme, memory);
            self.count();
        }
    }

    /// A spare buffer, or a new empty one. Only jobs holding a slot call this, so there are
    /// never more buffers than slots.
    fn take_memory(&self) -> Memory {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.pop().map(|(memory, _)| memory).unwrap_or_default()
    }

    fn give_back(&self, mut memory: Memory) {
        memory.wipe();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.push((memory, std::time::Instant::now()));
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

/// Argon2 working memory (19 MiB at our parameters), kept from one hash to the next. Made
/// afresh for every hash, it was mapped and faulted in page by page each time (the fixed
/// mmap threshold in daemon.rs keeps such blocks out of the heap): a quarter of a sign-in's
/// CPU. A buffer is only out while its job holds a hashing slot, so there are at most
/// `LATCHKEY_HASH_CONCURRENCY` of them, as there were blocks in use before. Each is wiped
/// after every use and when dropped: the blocks of a finished hash would let a guess be
/// checked without the memory-hard work.
#[derive(Default)]
pub(crate) struct Memory(Vec<Block>);

impl Memory {
    /// The first `n` blocks, grown to that if need be; `None` above our own parameters (a
    /// stored hash with a larger `m` gets a buffer of its own, freed after it).
    fn blocks(&mut self, n: usize) -> Option<&mut [Block]> {
        if n > ARGON2_M_KIB as usize {
            return None;
        }
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        self.0.get_mut(..n)
    }

    fn wipe(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Argon2 into `out`, in `memory` when it fits.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Memory,
) -> Result<(), argon2::Error> {
    match memory.blocks(argon2.params().block_count()) {
        Some(blocks) => argon2.hash_password_into_with_memory(password, salt, out, blocks),
        None => argon2.hash_password_into(password, salt, out),
    }
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| HashError::Internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC string, as argon2's `PasswordHasher` writes it (`$argon2id$v=19$m=..$salt$hash`).
fn argon2_hash(password: &SecretString, memory: &mut Memory) -> Result<String, HashError> {
    let internal = |e: &dyn std::fmt::Display| HashError::Internal(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let argon2 = argon2()?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| internal(&e))?;
    let hash = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_into(
            &argon2,
            normalized(password).as_bytes(),
            salt_bytes,
            out,
            memory,
        )
        .map_err(Into::into)
    })
    .map_err(|e| internal(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| internal(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// Does `password` give the hash in `parsed` (with its own algorithm, version and
/// parameters)? Any error in doing so is a no, as argon2's `PasswordVerifier` has it.
fn argon2_verify(password: &[u8], parsed: &PasswordHash<'_>, memory: &mut Memory) -> bool {
    let mut check = || -> Result<bool, argon2::password_hash::Error> {
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let argon2 = Argon2::new(algorithm, version, Params::try_from(parsed)?);
        let mut salt_bytes = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_bytes)?;
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        argon2_into(&argon2, password, salt, &mut out, memory)?;
        Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    };
    check().unwrap_or(false)
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
    memory: &mut Memory,
) -> Result<Verdict, HashError> {
    match Stored::parse(stored)? {
        Stored::Argon2(parsed) => {
            let ok = argon2_verify(normalized(password).as_bytes(), &parsed, memory);
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

    fn verify(
        password: &SecretString,
        stored: &str,
        scheme: HashScheme,
    ) -> Result<Verdict, HashError> {
        verify_blocking(password, stored, scheme, &mut Memory::default())
    }

    /// Hashes made in reused memory are argon2's own: its `PasswordVerifier` accepts ours and
    /// ours accepts its, with one buffer going through hashes of other sizes in between.
    #[test]
    fn reused_memory_gives_argon2s_own_hashes() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let mut memory = Memory::default();
        let ours = argon2_hash(&pw("correct horse"), &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2()
            .unwrap()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(argon2()
            .unwrap()
            .verify_password(b"correct horsf", &parsed)
            .is_err());
        let salt = SaltString::generate(&mut OsRng);
        for (m, t, p) in [(8, 1, 1), (19_456, 2, 1), (4_096, 3, 2), (65_536, 1, 1)] {
            let params = Params::new(m, t, p, None).unwrap();
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"battery staple", &salt)
                .unwrap()
                .to_string();
            for _ in 0..2 {
                let v = verify_blocking(
                    &pw("battery staple"),
                    &theirs,
                    HashScheme::Argon2id,
                    &mut memory,
                );
                assert!(v.unwrap().ok, "{theirs}");
                let v = verify_blocking(
                    &pw("battery stapl"),
                    &theirs,
                    HashScheme::Argon2id,
                    &mut memory,
                );
                assert!(!v.unwrap().ok, "{theirs}");
            }
        }
        // m above ours ran in a buffer of its own; the kept one never grew past our size.
        assert_eq!(memory.0.len(), ARGON2_M_KIB as usize);
        let again = argon2_hash(&pw("correct horse"), &mut memory).unwrap();
        assert_ne!(again, ours, "a fresh salt each time");
        assert!(
            verify(&pw("correct horse"), &again, HashScheme::Argon2id)
                .unwrap()
                .ok
        );
    }

    #[test]
    fn memory_is_wiped_after_use_and_shared_by_the_slots() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hasher = Hasher::new(HashScheme::Argon2id, 2, Duration::from_secs(5)).unwrap();
        let stored = rt.block_on(hasher.hash(&pw("correct horse"))).unwrap();
        assert!(
            rt.block_on(hasher.verify(&pw("correct horse"), &stored))
                .unwrap()
                .ok
        );
        {
            let spare = hasher.inner.spare.lock().unwrap();
            assert_eq!(spare.len(), 1, "one job at a time here: one buffer");
            let zero = Block::default();
            let wiped = spare[0].0 .0.iter().all(|b| b.as_ref() == zero.as_ref());
            assert!(wiped, "wiped after use");
        }
        assert_eq!(hasher.release_idle_memory(Duration::from_secs(60)), 0);
        assert_eq!(hasher.release_idle_memory(Duration::ZERO), 1);
        assert!(
            rt.block_on(hasher.verify(&pw("correct horse"), &stored))
                .unwrap()
                .ok
        );
    }

    /// One hash of each kind as the daemon computes them, in-process on one core: the ceiling
    /// that sign-in's CPU per request is measured against (bench/peers):
    /// `cargo test --release -p latchkey-auth --lib -- --ignored --nocapture cost_of_one_hash`.
    #[test]
    #[ignore = "a measurement, not a test: run it in release mode"]
    fn cost_of_one_hash() {
        const N: u32 = 20;
        let mut memory = Memory::default();
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = std::time::Instant::now();
            for _ in 0..N {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(N)
        };
        let argon = time(&mut || {
            argon2_hash(&pw("password123"), &mut memory).unwrap();
        });
        let fresh = time(&mut || {
            argon2_hash(&pw("password123"), &mut Memory::default()).unwrap();
        });
        let scrypt = time(&mut || {
            scrypt_hash(&pw("password123")).unwrap();
        });
        println!("argon2id: {argon:.0} us (kept memory)");
        println!("argon2id fresh memory: {fresh:.0} us");
        println!("scrypt: {scrypt:.0} us");
    }

    #[test]
    fn spec_scrypt_vector_verifies_and_asks_for_rehash() {
        let stored = "adb3fae70953259d7614bfa09ed21a8b:65f2f44a82ba2250db0f5a26dc34a598ab060c1ed25d68d5cbcee8db8a7943f903b39ecb37659feb68a111f761a76bd29d6571cad35775245ea2a1cee165c00a";
        let v = verify(&pw("password123"), stored, HashScheme::Argon2id).unwrap();
        assert!(v.ok && v.needs_rehash);
        let v = verify(&pw("password124"), stored, HashScheme::Argon2id).unwrap();
        assert!(!v.ok && !v.needs_rehash);
        let v = verify(&pw("password123"), stored, HashScheme::Scrypt).unwrap();
        assert!(v.ok && !v.needs_rehash);
    }

    #[test]
    fn argon2_round_trip_with_owasp_parameters() {
        let h = argon2_hash(&pw("correct horse"), &mut Memory::default()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let v = verify(&pw("correct horse"), &h, HashScheme::Argon2id).unwrap();
        assert!(v.ok && !v.needs_rehash);
        assert!(!verify(&pw("wrong"), &h, HashScheme::Argon2id).unwrap().ok);
    }

    #[test]
    fn scrypt_round_trip_and_nfkc() {
        let h = scrypt_hash(&pw("ﬁle-password")).unwrap();
        assert_eq!(h.len(), 161);
        // U+FB01 (ﬁ) normalises to "fi" under NFKC.
        assert!(
            verify(&pw("file-password"), &h, HashScheme::Scrypt)
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
            let verdict = verify(&pw("x"), stored, HashScheme::Argon2id);
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
