//! JWT signing keys: stored in Better-Auth's `jwks` table, private halves encrypted exactly as
//! Better-Auth does (docs/compatibility.md#key-encryption), so keys either side made keep working on the other.
//!
//! Every replica caches the decrypted signing key (zeroized on drop) and the serialised JWKS,
//! and reloads both from Postgres on an interval. Creating and rotating keys happens under a
//! Postgres advisory lock with a re-check inside it, so that exactly one replica does it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, SubsecRound, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use latchkey_core::shutdown::ShutdownSignal;

use crate::error::AuthError;
use crate::signing::{Alg, PrivateJwk, Signer};
use latchkey_core::sql::{boolean, int8, text, timestamptz, Db, Sql};

/// `pg_advisory_xact_lock` key for key creation and rotation ("latchkey-keys").
const KEYS_LOCK: i64 = 0x6c61_7463_6b65_7901;
/// Rows with a NULL `alg` were made with Better-Auth's default algorithm.
const NULL_ALG_MEANS: Alg = Alg::EdDsa;
/// Selects the newest unexpired key of the algorithm `$1`.
const CURRENT_KEY_FILTER: &str = r#"("alg" = $1 or ("alg" is null and $1 = 'EdDSA'))
    and ("expiresAt" is null or "expiresAt" > now())"#;

#[derive(Debug, Clone)]
pub(crate) struct KeyPolicy {
    /// Rotate automatically when the signing key is older than this (`None`: only by hand).
    pub(crate) rotation_interval: Option<Duration>,
    /// How long a retired key stays in the JWKS after it stopped signing.
    pub(crate) grace_period: Duration,
    /// How often each replica re-reads the table (to pick up another replica's rotation).
    pub(crate) reload_interval: Duration,
    /// The algorithm new tokens are signed with.
    pub(crate) alg: Alg,
}

/// Encrypts and decrypts private JWKs with `SHA-256(secret)` as the XChaCha20-Poly1305 key.
pub(crate) struct KeyCipher {
    key: Zeroizing<[u8; 32]>,
}

impl KeyCipher {
    pub(crate) fn new(secret: &SecretString) -> Self {
        let digest = Sha256::digest(secret.expose_secret().as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&digest);
        Self { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }

    /// The `privateKey` column value: a JSON string holding hex(nonce ‖ ciphertext ‖ tag).
    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<String, AuthError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .map_err(|_| AuthError::internal("key encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(Value::String(hex::encode(blob)).to_string())
    }

    /// Bare lower hex of nonce ‖ ciphertext ‖ tag: Better-Auth's `encryptOAuthTokens` form
    /// for provider tokens in the `account` table (same key).
    pub(crate) fn seal_hex(&self, plaintext: &[u8]) -> Result<String, AuthError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .map_err(|_| AuthError::internal("token encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(hex::encode(blob))
    }

    /// A provider token as stored: decrypted when it is a blob this secret sealed, else the
    /// value itself (tokens written with `encryptOAuthTokens` off are plain, and a plain token
    /// can look like hex).
    ///
    /// The key also seals the `jwks` private keys: a plaintext that is a JSON object is such a
    /// key, never a provider token, and is not handed out (the stored value is returned).
    pub(crate) fn open_token(&self, stored: &str) -> Zeroizing<String> {
        let opened = hex::decode(stored)
            .ok()
            .filter(|blob| blob.len() > 24 + 16)
            .and_then(|blob| {
                self.cipher()
                    .decrypt(XNonce::from_slice(&blob[..24]), &blob[24..])
                    .ok()
            })
            .and_then(|plain| String::from_utf8(plain).ok())
            .map(Zeroizing::new)
            .filter(|plain| !plain.trim_start().starts_with('{'));
        opened.unwrap_or_else(|| Zeroizing::new(stored.to_string()))
    }

    /// Accepts the JSON-quoted hex form, bare hex, and unencrypted JWK JSON
    /// (`disablePrivateKeyEncryption`).
    pub(crate) fn decrypt(&self, column: &str) -> Result<Zeroizing<String>, AuthError> {
        let trimmed = column.trim();
        if trimmed.starts_with('{') {
            return Ok(Zeroizing::new(trimmed.to_string()));
        }
        let inner = match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::String(s)) => s,
            _ => trimmed.to_string(),
        };
        if inner.starts_with("$ba$") {
            return Err(AuthError::internal(
                "signing key is encrypted with a versioned secret (BETTER_AUTH_SECRETS), which latchkey does not support yet",
            ));
        }
        let blob =
            hex::decode(&inner).map_err(|_| AuthError::internal("signing key is not hex"))?;
        if blob.len() < 24 + 16 {
            return Err(AuthError::internal("signing key blob too short"));
        }
        let plain = self
            .cipher()
            .decrypt(XNonce::from_slice(&blob[..24]), &blob[24..])
            .map_err(|_| {
                AuthError::internal("cannot decrypt signing key: was it made with another secret?")
            })?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| AuthError::internal("decrypted signing key is not UTF-8"))
    }
}

/// A decrypted signing key; every `Signer` variant zeroizes itself on drop.
pub(crate) struct ActiveKey {
    pub(crate) kid: String,
    signer: Signer,
}

impl ActiveKey {
    pub(crate) fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let header = json!({"alg": self.signer.alg().as_str(), "kid": self.kid});
        let payload = serde_json::to_vec(claims)
            .map_err(|_| AuthError::internal("claims not serialisable"))?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = self.signer.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

struct Ring {
    signing: Option<Arc<ActiveKey>>,
    jwks: Bytes,
}

pub(crate) struct Keys {
    db: Db,
    cipher: KeyCipher,
    pub(crate) policy: KeyPolicy,
    ring: RwLock<Ring>,
    /// Serialises `ensure` calls from requests that found no key, so that a burst of them
    /// makes one key, not one attempt each.
    ensure_once: tokio::sync::Mutex<()>,
}

struct Row {
    id: String,
    public_key: String,
    private_key: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    alg: Option<String>,
    crv: Option<String>,
}

impl Keys {
    pub(crate) fn new(db: Db, secret: &SecretString, policy: KeyPolicy) -> Self {
        Self {
            db,
            cipher: KeyCipher::new(secret),
            policy,
            ring: RwLock::new(Ring {
                signing: None,
                jwks: Bytes::from_static(br#"{"keys":[]}"#),
            }),
            ensure_once: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn jwks(&self) -> Bytes {
        self.ring.read().map(|r| r.jwks.clone()).unwrap_or_default()
    }

    pub(crate) fn has_signing_key(&self) -> bool {
        self.ring
            .read()
            .map(|r| r.signing.is_some())
            .unwrap_or(false)
    }

    /// The current signing key, creating one if the table has none usable.
    pub(crate) async fn signing_key(&self) -> Result<Arc<ActiveKey>, AuthError> {
        if let Some(k) = self.ring.read().ok().and_then(|r| r.signing.clone()) {
            return Ok(k);
        }
        let _once = self.ensure_once.lock().await;
        if let Some(k) = self.ring.read().ok().and_then(|r| r.signing.clone()) {
            return Ok(k);
        }
        self.ensure().await?;
        self.ring
            .read()
            .ok()
            .and_then(|r| r.signing.clone())
            .ok_or_else(|| AuthError::internal("no signing key available"))
    }

    /// Makes sure a usable signing key of the configured algorithm exists, then reloads.
    pub(crate) async fn ensure(&self) -> Result<(), AuthError> {
        if self.newest_current().await?.is_none() {
            self.change(Change::IfMissing).await?;
        }
        self.reload().await
    }

    /// Retires the current signing key (it stays in the JWKS for the grace period) and creates
    /// a new one. Returns the new key id.
    pub(crate) async fn rotate(&self) -> Result<String, AuthError> {
        let kid = self.change(Change::Always).await?;
        self.reload().await?;
        kid.ok_or_else(|| AuthError::internal("rotation created no key"))
    }

    /// Removes a key from the JWKS at once, after a compromise: tokens it signed stop
    /// verifying as soon as verifiers refresh (latchkey-api drops keys that vanish). If it is
    /// a current key, a rotation first makes sure a signing key remains. Returns the new
    /// signing key's id if one was made; an unknown id is an error.
    pub(crate) async fn revoke(&self, kid: &str) -> Result<Option<String>, AuthError> {
        let conn = self.db.conn().await?;
        let row = conn
            .opt_row(
                r#"select ("expiresAt" is null or "expiresAt" > now()) from "jwks" where "id" = $1"#,
                &[text(&kid)],
            )
            .await?;
        drop(conn);
        let Some(row) = row else {
            return Err(AuthError::bad_request(
                "KEY_NOT_FOUND",
                format!("no key {kid}"),
            ));
        };
        let current: bool = row.get(0);
        let replacement = if current {
            self.change(Change::Always).await?
        } else {
            None
        };
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        tx.exec("select pg_advisory_xact_lock($1)", &[int8(&KEYS_LOCK)])
            .await?;
        tx.exec(r#"delete from "jwks" where "id" = $1"#, &[text(&kid)])
            .await?;
        let event = crate::audit::Event::KeyRevoked {
            kid: kid.to_string(),
        };
        crate::audit::record(&tx, &event, &crate::audit::Actor::operator()).await?;
        tx.commit().await?;
        drop(conn);
        tracing::warn!(kid = %kid, "revoked signing key: removed from the JWKS");
        self.reload().await?;
        Ok(replacement)
    }

    /// Rotates if automatic rotation is on and the signing key has reached its age.
    pub(crate) async fn rotate_if_due(&self) -> Result<Option<String>, AuthError> {
        let Some(interval) = self.policy.rotation_interval else {
            return Ok(None);
        };
        let due = match self.newest_current().await? {
            None => true,
            Some(created) => older_than(created, interval),
        };
        if !due {
            return Ok(None);
        }
        let kid = self.change(Change::IfOlderThan(interval)).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Creation time of the newest usable key of the configured algorithm.
    async fn newest_current(&self) -> Result<Option<DateTime<Utc>>, AuthError> {
        let conn = self.db.conn().await?;
        let sql = format!(
            r#"select "createdAt" from "jwks" where {CURRENT_KEY_FILTER} order by "createdAt" desc limit 1"#
        );
        Ok(conn
            .opt_row(&sql, &[text(&self.policy.alg.as_str())])
            .await?
            .map(|r| r.get(0)))
    }

    /// Generates a key, then, under the advisory lock, re-checks whether `change` still applies
    /// (another replica may have just done it) and if so retires the current keys and stores the
    /// new one. Generation happens before the lock because RSA keys take a while.
    async fn change(&self, change: Change) -> Result<Option<String>, AuthError> {
        let alg = self.policy.alg;
        let generated = tokio::task::spawn_blocking(move || Signer::generate(alg))
            .await
            .map_err(|e| AuthError::internal(format!("key generation task: {e}")))??;

        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        tx.exec("select pg_advisory_xact_lock($1)", &[int8(&KEYS_LOCK)])
            .await?;
        let sql = format!(
            r#"select "createdAt" from "jwks" where {CURRENT_KEY_FILTER} order by "createdAt" desc limit 1"#
        );
        let newest: Option<DateTime<Utc>> = tx
            .opt_row(&sql, &[text(&alg.as_str())])
            .await?
            .map(|r| r.get(0));
        let proceed = match (change, newest) {
            (_, None) | (Change::Always, _) => true,
            (Change::IfMissing, Some(_)) => false,
            (Change::IfOlderThan(interval), Some(created)) => older_than(created, interval),
        };
        if !proceed {
            return Ok(None);
        }
        // Automatic changes retire only keys of our own algorithm: during a rolling switch
        // of LATCHKEY_JWT_ALG, replicas on either side must not keep retiring each other's key.
        // An explicit `keys rotate` retires every current key.
        let now = now_ms();
        let retire_all = matches!(change, Change::Always);
        let retired: Vec<String> = tx
            .rows(
                r#"update "jwks" set "expiresAt" = $1
                   where ("expiresAt" is null or "expiresAt" > $1)
                     and ($2 or "alg" = $3 or ("alg" is null and $3 = 'EdDSA'))
                   returning "id""#,
                &[timestamptz(&now), boolean(&retire_all), text(&alg.as_str())],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let encrypted = self.cipher.encrypt(generated.private_jwk.as_bytes())?;
        let kid = crate::ids::new_id();
        tx.exec(
            r#"insert into "jwks" ("id", "publicKey", "privateKey", "createdAt", "expiresAt", "alg", "crv")
               values ($1, $2, $3, $4, null, $5, $6)"#,
            &[
                text(&kid),
                text(&generated.public_jwk),
                text(&encrypted),
                timestamptz(&now),
                text(&alg.as_str()),
                text(&alg.crv()),
            ],
        )
        .await?;
        let event = if retired.is_empty() {
            crate::audit::Event::KeyCreated { kid: kid.clone() }
        } else {
            crate::audit::Event::KeyRotated {
                kid: kid.clone(),
                retired,
            }
        };
        crate::audit::record(&tx, &event, &crate::audit::Actor::operator()).await?;
        tx.commit().await?;
        tracing::info!(kid = %kid, alg = %alg, "created signing key");
        Ok(Some(kid))
    }

    /// Re-reads the table: rebuilds the JWKS and, if the signing key changed, decrypts it.
    pub(crate) async fn reload(&self) -> Result<(), AuthError> {
        let conn = self.db.conn().await?;
        let rows = conn
            .rows(
                r#"select "id", "publicKey", "privateKey", "createdAt", "expiresAt", "alg", "crv"
                   from "jwks" order by "createdAt" desc"#,
                &[],
            )
            .await?;
        drop(conn);
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                id: r.get(0),
                public_key: r.get(1),
                private_key: r.get(2),
                created_at: r.get(3),
                expires_at: r.get(4),
                alg: r.get(5),
                crv: r.get(6),
            })
            .collect();
        let now = Utc::now();
        let grace = chrono::Duration::from_std(self.policy.grace_period)
            .unwrap_or_else(|_| chrono::Duration::days(30));

        let mut keys = Vec::new();
        for row in &rows {
            if row.expires_at.is_some_and(|e| e + grace <= now) {
                continue;
            }
            match jwks_entry(row) {
                Some(entry) => keys.push(entry),
                None => tracing::warn!(kid = %row.id, "skipping unreadable public key"),
            }
        }
        let jwks = Bytes::from(json!({ "keys": keys }).to_string());

        let wanted = self.policy.alg.as_str();
        let candidate = rows.iter().find(|r| {
            r.alg.as_deref().unwrap_or(NULL_ALG_MEANS.as_str()) == wanted
                && r.expires_at.is_none_or(|e| e > now)
        });
        let current = self.ring.read().ok().and_then(|r| r.signing.clone());
        let signing = match candidate {
            None => None,
            Some(row) if current.as_ref().is_some_and(|c| c.kid == row.id) => current,
            Some(row) => Some(Arc::new(self.decrypt_row(row)?)),
        };
        if let Ok(mut ring) = self.ring.write() {
            *ring = Ring { signing, jwks };
        }
        Ok(())
    }

    fn decrypt_row(&self, row: &Row) -> Result<ActiveKey, AuthError> {
        let plain = self.cipher.decrypt(&row.private_key)?;
        let jwk = PrivateJwk::parse(&plain)?;
        Ok(ActiveKey {
            kid: row.id.clone(),
            signer: Signer::from_private_jwk(&jwk)?,
        })
    }

    /// Reloads on an interval and rotates when due, until the shutdown (never in the middle of
    /// a rotation).
    pub(crate) async fn maintain(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        while shutdown.sleep(self.policy.reload_interval).await {
            if let Err(e) = self.rotate_if_due().await {
                tracing::warn!("automatic key rotation failed: {e}");
            }
            if let Err(e) = self.reload().await {
                tracing::warn!("reloading signing keys failed: {e}");
            }
        }
    }
}

/// One JWKS entry as Better-Auth shapes it: alg, crv, the stored public JWK fields, kid.
fn jwks_entry(row: &Row) -> Option<Value> {
    let public: Map<String, Value> = serde_json::from_str(&row.public_key).ok()?;
    let mut entry = Map::new();
    entry.insert(
        "alg".into(),
        Value::String(
            row.alg
                .clone()
                .unwrap_or_else(|| NULL_ALG_MEANS.as_str().into()),
        ),
    );
    if let Some(crv) = row.crv.clone().or_else(|| {
        public
            .get("crv")
            .and_then(Value::as_str)
            .map(str::to_string)
    }) {
        entry.insert("crv".into(), Value::String(crv));
    }
    for (k, v) in public {
        entry.insert(k, v);
    }
    entry.insert("kid".into(), Value::String(row.id.clone()));
    let _ = row.created_at;
    Some(Value::Object(entry))
}

#[derive(Clone, Copy)]
enum Change {
    IfMissing,
    Always,
    IfOlderThan(Duration),
}

fn older_than(created: DateTime<Utc>, age: Duration) -> bool {
    Utc::now()
        .signed_duration_since(created)
        .to_std()
        .is_ok_and(|a| a >= age)
}

fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF-test-secret";
    const COLUMN: &str = "\"eaaf5d46ce2cab4f29def6c227821100bb4f7f4a880322f362234d030aff08d1adb9728721beca6989443099378d066a33cebf25bbcc2c79b6d254c47feffff8a45555d470030231936b49e19810881c962d29e843e422cb3117d805fa14f72b668435e49b5800cbc4bc427217a22566c50257b60372f97572e010643e1c1acca9769718d34c8cdc6b3c3a0caba20a0c7e6a562fc06c35521569fa80c85636239b70ccddda8aa09e5f\"";

    fn cipher() -> KeyCipher {
        KeyCipher::new(&SecretString::from(SECRET.to_string()))
    }

    #[test]
    fn spec_vector_key_derivation_and_decryption() {
        assert_eq!(
            hex::encode(cipher().key.as_slice()),
            "cd06aeef296015b13bf59c1831e7e043a8720b0b8db656a1d213c398882f4009"
        );
        let plain = cipher().decrypt(COLUMN).unwrap();
        assert_eq!(
            plain.as_str(),
            r#"{"crv":"Ed25519","d":"e8_CjvxnDjYmz_-_SqnlfedgAGRGmxqLsDFB67-bwjc","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kty":"OKP"}"#
        );
    }

    #[test]
    fn spec_vector_key_signs_and_matches_public_half() {
        let row = Row {
            id: "pnHXqqVvBENcFVqmNaefgOQEjERxAsOp".into(),
            public_key:
                r#"{"crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kty":"OKP"}"#
                    .into(),
            private_key: COLUMN.into(),
            created_at: Utc::now(),
            expires_at: None,
            alg: Some("EdDSA".into()),
            crv: Some("Ed25519".into()),
        };
        let keys = Keys {
            db: dummy_db(),
            cipher: cipher(),
            policy: KeyPolicy {
                rotation_interval: None,
                grace_period: Duration::from_secs(1),
                reload_interval: Duration::from_secs(1),
                alg: Alg::EdDsa,
            },
            ring: RwLock::new(Ring {
                signing: None,
                jwks: Bytes::new(),
            }),
            ensure_once: tokio::sync::Mutex::new(()),
        };
        let key = keys.decrypt_row(&row).unwrap();
        let jwt = key.sign_jwt(&json!({"sub": "u"})).unwrap();
        let header = jwt.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"alg":"EdDSA","kid":"pnHXqqVvBENcFVqmNaefgOQEjERxAsOp"}"#
        );
        assert_eq!(
            jwks_entry(&row).unwrap().to_string(),
            r#"{"alg":"EdDSA","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kty":"OKP","kid":"pnHXqqVvBENcFVqmNaefgOQEjERxAsOp"}"#
        );
    }

    #[test]
    fn provider_tokens_seal_and_plain_ones_pass_through() {
        let c = cipher();
        let sealed = c.seal_hex(b"gho_abc").unwrap();
        assert!(sealed
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(sealed.len(), (24 + 7 + 16) * 2);
        assert_eq!(c.open_token(&sealed).as_str(), "gho_abc");
        assert_eq!(c.open_token("gho_plain").as_str(), "gho_plain");
        assert_eq!(c.open_token("deadbeef").as_str(), "deadbeef");
        let other = KeyCipher::new(&SecretString::from("z".repeat(40)));
        assert_eq!(
            other.open_token(&sealed).as_str(),
            sealed,
            "another secret: left as is"
        );
        // A signing key's blob is not opened as a token.
        let key_blob = c.seal_hex(br#"{"crv":"Ed25519","d":"secret"}"#).unwrap();
        assert_eq!(c.open_token(&key_blob).as_str(), key_blob);
    }

    #[test]
    fn encryption_round_trips_and_wrong_secret_fails() {
        let col = cipher().encrypt(b"{\"k\":1}").unwrap();
        assert!(col.starts_with('"') && col.ends_with('"'));
        assert_eq!(cipher().decrypt(&col).unwrap().as_str(), "{\"k\":1}");
        let other = KeyCipher::new(&SecretString::from("y".repeat(40)));
        assert!(other.decrypt(&col).is_err());
        assert!(cipher().decrypt("\"zz\"").is_err());
        assert!(cipher().decrypt("\"00\"").is_err());
    }

    fn dummy_db() -> Db {
        let pool = latchkey_core::db::pool(
            &SecretString::from("postgres://u@127.0.0.1:1/x".to_string()),
            1,
        )
        .unwrap();
        Db::new(pool, Duration::from_secs(1))
    }
}
