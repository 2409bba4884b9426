//! Signing keys: storage at rest (docs/compatibility.md#key-encryption), rotation, persistence across restarts.

use std::time::{Duration, Instant};

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth};

fn kid_of(token: &str) -> String {
    jwt::decode(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

#[test]
fn private_key_is_stored_encrypted_as_better_auth_does() {
    let auth = Auth::start();
    let s = auth.new_user();
    let token = auth.jwt(&s);
    let rows = auth.db.query(
        r#"SELECT id, "publicKey", "privateKey", alg, crv, "expiresAt" IS NULL FROM jwks"#,
        &[],
    );
    assert_eq!(rows.len(), 1);
    let (id, public, private): (String, String, String) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!(id.len(), 32);
    assert_eq!(kid_of(&token), id);
    assert_eq!(
        rows[0].get::<_, Option<String>>(3).as_deref(),
        Some("EdDSA")
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(4).as_deref(),
        Some("Ed25519")
    );
    let public: serde_json::Value = serde_json::from_str(&public).unwrap();
    assert_eq!(public["kty"], "OKP");
    assert!(public.get("d").is_none());
    // JSON-quoted lower-case hex, nonce(24) ‖ ct ‖ tag(16); no plaintext `d`.
    assert!(
        private.starts_with('"') && private.ends_with('"'),
        "{private:.40}"
    );
    assert!(!private.contains("\"d\""));
    let (kid, _, _) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    assert_eq!(kid, id);
}

#[test]
fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
    // The daemon re-reads keys from the DB every LATCHKEY_KEY_RELOAD_INTERVAL (30 s default).
    let auth = Auth::start_with(|s| s.env("LATCHKEY_KEY_RELOAD_INTERVAL", "1"));
    let s = auth.new_user();
    let old_token = auth.jwt(&s);
    let old_kid = kid_of(&old_token);
    let api = Api::start(&auth);
    api.me(&old_token).expect(200);

    let out = auth.tool(&["keys", "rotate"]);
    out.assert_success();
    assert_eq!(auth.db.count("SELECT count(*) FROM jwks"), 2);
    // The audit trail: the first key created, then a rotation naming the key it retired.
    let trail = auth.db.query(
        r#"select "event", "detail"->>'kid', coalesce("detail"->'retired', '[]')::text
           from "latchkey_audit" where "event" like 'key_%' order by "at""#,
        &[],
    );
    let trail: Vec<(String, String, String)> = trail
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(
        (trail[0].0.as_str(), trail[0].1.as_str()),
        ("key_created", old_kid.as_str())
    );
    assert_eq!(trail[1].0, "key_rotated", "{trail:?}");
    assert_ne!(trail[1].1, old_kid);
    assert_eq!(trail[1].2, format!("[\"{old_kid}\"]"), "{trail:?}");

    // The running daemon picks up the new key (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_token = loop {
        let t = auth.jwt(&s);
        if kid_of(&t) != old_kid {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "auth daemon still signs with the old key 10 s after `keys rotate`"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let jwks = auth.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()),
        "old key left the JWKS: {jwks}"
    );
    assert!(kids.contains(&kid_of(&new_token).as_str()), "{jwks}");
    jwt::verify_with_jwks(&new_token, &jwks);
    jwt::verify_with_jwks(&old_token, &jwks);

    // The API learns the new kid and keeps accepting the old one.
    api.me(&new_token).expect(200);
    api.me(&old_token).expect(200);
    // Tokens from a fresh API instance too.
    let api2 = Api::start(&auth);
    api2.me(&old_token).expect(200);
    api2.me(&new_token).expect(200);
}

#[test]
fn keys_and_sessions_survive_a_restart() {
    let mut auth = Auth::start();
    let s = auth.new_user();
    let before = auth.jwt(&s);
    auth.daemon.restart();
    let after = auth.jwt(&s);
    assert_eq!(kid_of(&before), kid_of(&after));
    jwt::verify_with_jwks(&before, &auth.jwks());
    assert_eq!(auth.db.count("SELECT count(*) FROM jwks"), 1);
}

/// Restarting with another `LATCHKEY_JWT_ALG` makes a key of that algorithm; the old key stays
/// published, so tokens signed before the switch keep verifying.
#[test]
fn switching_the_algorithm_keeps_old_tokens_valid() {
    let mut auth = Auth::start();
    let api = Api::start(&auth);
    let s = auth.new_user();
    let old = auth.jwt(&s);
    assert_eq!(jwt::decode(&old).header["alg"], "EdDSA");

    auth.daemon.spec.set_env("LATCHKEY_JWT_ALG", "RS256");
    auth.daemon.restart();
    let new = auth.jwt(&s);
    assert_eq!(jwt::decode(&new).header["alg"], "RS256");
    let mut algs: Vec<String> = auth.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_string())
        .collect();
    algs.sort();
    assert_eq!(algs, ["EdDSA", "RS256"]);
    api.me(&old).expect(200);
    api.me(&new).expect(200);
}

/// latchkey-api refreshes its key set in the background (LATCHKEY_JWKS_REFRESH), not only when
/// a token with an unknown kid arrives: after a rotation it learns the new key with no request,
/// and then serves tokens signed with it while the auth daemon is down.
#[test]
fn api_learns_rotated_keys_in_the_background() {
    let mut auth = Auth::start_with(|s| s.env("LATCHKEY_KEY_RELOAD_INTERVAL", "1"));
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_JWKS_REFRESH", "1")
            .env("LATCHKEY_LOG", "info,latchkey_jwt=debug")
    });
    api.wait_ready();
    let s = auth.new_user();
    let before = kid_of(&auth.jwt(&s));
    auth.tool(&["keys", "rotate"]).assert_success();
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let t = auth.jwt(&s);
        if kid_of(&t) != before {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "auth never signed with the new key"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // No request has shown the API the new kid; only its refresher can load two keys.
    while !api.daemon.log().contains("JWKS loaded keys=2") {
        assert!(
            Instant::now() < deadline,
            "the API never refreshed in the background:\n{}",
            api.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    auth.daemon.terminate();
    api.me(&token).expect(200);
}

/// After a key compromise: `keys revoke KID` removes the key from the table and from every
/// replica's JWKS within its reload interval, a current key is replaced first, and an unknown
/// id is refused.
#[test]
fn revoked_key_leaves_the_jwks_and_a_new_one_signs() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_KEY_RELOAD_INTERVAL", "1"));
    let s = auth.new_user();
    let compromised = kid_of(&auth.jwt(&s));
    let out = auth.tool(&["keys", "revoke", &compromised]);
    out.assert_success();
    assert!(out.stdout.contains("new signing key"), "{}", out.stdout);
    let rows = auth.db.count(&format!(
        r#"select count(*) from "jwks" where id = '{compromised}'"#
    ));
    assert_eq!(rows, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jwks = auth.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        if !kids.contains(&compromised.as_str()) {
            assert_eq!(kids.len(), 1, "{kids:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revoked key still served: {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(kid_of(&auth.jwt(&s)), compromised);
    let out = auth.tool(&["keys", "revoke", "no-such-key"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("no key no-such-key"), "{}", out.stderr);
}
