//! latchkey-api against tokens that only a careless verifier accepts, signed with the auth
//! daemon's real key (recovered from the database): non-numeric time claims, lifetimes beyond
//! `LATCHKEY_JWT_MAX_LIFETIME`, and keys that left the JWKS.

use std::time::{Duration, Instant};

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth, Session};
use latchkey_e2e::{free_port, run_tool, Resp};
use serde_json::{json, Value};

fn kid_of(token: &str) -> String {
    jwt::decode(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

fn assert_refused(r: &Resp, code: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.json()["code"], code, "{what}: {}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
}

/// The claims of a real token of `session`, with fresh `iat` and `exp`.
fn payload(auth: &Auth, session: &Session) -> Value {
    let mut p = jwt::decode(&auth.jwt(session)).payload;
    let now = jwt::now();
    p["iat"] = json!(now);
    p["exp"] = json!(now + 900);
    p
}

#[test]
fn time_claims_that_are_not_numbers_are_refused() {
    let auth = Auth::start();
    let session = auth.new_user();
    let api = Api::start(&auth);
    let (kid, _, key) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    let header = json!({"alg": "EdDSA", "kid": kid});
    let base = payload(&auth, &session);
    let sign = |edit: &dyn Fn(&mut Value)| {
        let mut p = base.clone();
        edit(&mut p);
        jwt::sign_eddsa(&header, &p, &key)
    };
    api.me(&sign(&|_| {})).expect(200);
    let future = jwt::now() + 3600;
    for name in ["nbf", "iat", "exp"] {
        for bad in [
            // The audit's token: nbf a string, in the future.
            json!(future.to_string()),
            json!(true),
            json!(null),
            json!({"n": future}),
            json!([future]),
        ] {
            let token = sign(&|p| p[name] = bad.clone());
            assert_refused(
                &api.me(&token),
                "INVALID_TIME_CLAIM",
                &format!("{name}: {bad}"),
            );
        }
    }
    // A numeric nbf in the future is not yet valid; floats are numbers.
    assert_refused(
        &api.me(&sign(&|p| p["nbf"] = json!(future))),
        "TOKEN_NOT_YET_VALID",
        "nbf in the future",
    );
    let now = jwt::now();
    let r = api.me(&sign(&|p| {
        p["iat"] = json!(now as f64 + 0.25);
        p["nbf"] = json!(now as f64 - 0.5);
        p["exp"] = json!(now as f64 + 600.9);
    }));
    r.expect(200);
    assert_eq!(r.json()["exp"], now + 600);
    // Forward-auth and the proxy share the verifier; one spot check.
    let r = api
        .client()
        .get("/auth/verify")
        .bearer(&sign(&|p| p["nbf"] = json!(future.to_string())))
        .send();
    assert_refused(&r, "INVALID_TIME_CLAIM", "forward-auth");
}

#[test]
fn lifetimes_beyond_the_maximum_are_refused() {
    let auth = Auth::start();
    let session = auth.new_user();
    let real = auth.jwt(&session);
    let api = Api::start(&auth);
    let (kid, _, key) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    let header = json!({"alg": "EdDSA", "kid": kid});
    let base = payload(&auth, &session);
    let now = jwt::now();
    let sign = |iat: Option<Value>, exp: Value| {
        let mut p = base.clone();
        match iat {
            Some(iat) => p["iat"] = iat,
            None => {
                p.as_object_mut().unwrap().remove("iat");
            }
        }
        p["exp"] = exp;
        jwt::sign_eddsa(&header, &p, &key)
    };
    api.me(&real).expect(200);
    // Default maximum: one day, the auth daemon's own limit.
    api.me(&sign(Some(json!(now)), json!(now + 86400)))
        .expect(200);
    for (what, iat, exp) in [
        ("a day and a second", json!(now), json!(now + 86401)),
        ("exp = 2^63 - 1", json!(now), json!(i64::MAX)),
        ("exp = 2^64 - 1", json!(now), json!(u64::MAX)),
        ("exp = 1e300", json!(now), json!(1e300)),
        ("backdated iat", json!(now - 30 * 86400), json!(now + 60)),
    ] {
        assert_refused(
            &api.me(&sign(Some(iat), exp)),
            "TOKEN_LIFETIME_TOO_LONG",
            what,
        );
    }
    assert_refused(
        &api.me(&sign(None, json!(now + 900))),
        "INVALID_TIME_CLAIM",
        "no iat",
    );

    // A tighter bound refuses even the auth daemon's own 15-minute tokens.
    let strict = Api::start_with(&auth.url(), |s| s.env("LATCHKEY_JWT_MAX_LIFETIME", "600"));
    assert_refused(
        &strict.me(&real),
        "TOKEN_LIFETIME_TOO_LONG",
        "900 s > 600 s",
    );
    strict
        .me(&sign(Some(json!(now)), json!(now + 600)))
        .expect(200);
}

#[test]
fn max_lifetime_is_validated_at_start_up() {
    for bad in ["0", "-1", "1h", "", "31536001"] {
        let spec =
            Api::spec("http://127.0.0.1:3999", free_port()).env("LATCHKEY_JWT_MAX_LIFETIME", bad);
        let out = run_tool("latchkey-api", &["check-config"], &spec.env);
        assert_eq!(out.code(), Some(2), "{bad:?}: {out:?}");
        assert!(
            out.stderr.contains("LATCHKEY_JWT_MAX_LIFETIME"),
            "{bad:?}: {}",
            out.stderr
        );
    }
    let spec =
        Api::spec("http://127.0.0.1:3999", free_port()).env("LATCHKEY_JWT_MAX_LIFETIME", "3600");
    run_tool("latchkey-api", &["check-config"], &spec.env).assert_success();
}

/// Waits up to `secs` for `done`, polling every 200 ms; panics with `what` otherwise.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} (after {secs} s)");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn jwks_kids(auth: &Auth) -> Vec<String> {
    auth.jwks()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// After a key compromise the key leaves the auth daemon's JWKS (here: its row is deleted, as
/// `keys revoke` will do): latchkey-api refuses its tokens from its next refresh on, however
/// often they are presented (the unknown-kid refetch finds it gone too), while tokens of the
/// other key keep working.
#[test]
fn a_key_removed_from_the_jwks_is_refused_after_the_next_refresh() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_KEY_RELOAD_INTERVAL", "1"));
    let api = Api::start_with(&auth.url(), |s| s.env("LATCHKEY_JWKS_REFRESH", "1"));
    let session = auth.new_user();
    let old_token = auth.jwt(&session);
    let old_kid = kid_of(&old_token);
    // The compromised key, as an attacker holding it would use it.
    let (kid, _, old_key) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    assert_eq!(kid, old_kid);
    api.me(&old_token).expect(200);

    auth.tool(&["keys", "rotate"]).assert_success();
    let mut new_token = String::new();
    eventually(15, "auth never signed with the new key", || {
        new_token = auth.jwt(&session);
        kid_of(&new_token) != old_kid
    });
    api.me(&new_token).expect(200);
    // Retired but within the grace period: still published, still accepted.
    api.me(&old_token).expect(200);

    let deleted = auth
        .db
        .client()
        .execute(r#"DELETE FROM jwks WHERE id = $1"#, &[&old_kid])
        .unwrap();
    assert_eq!(deleted, 1);
    eventually(
        15,
        "the auth daemon still publishes the deleted key",
        || !jwks_kids(&auth).contains(&old_kid),
    );
    eventually(10, "latchkey-api still accepts the removed key", || {
        let r = api.me(&old_token);
        if r.status == 200 {
            return false;
        }
        assert_refused(&r, "UNKNOWN_KEY", "token of the removed key");
        true
    });
    // Nothing brings it back: not the unknown-kid refetch (tried on the first refusal), not
    // further background refreshes, not a freshly minted token under the old kid.
    let forged = jwt::sign_eddsa(
        &json!({"alg": "EdDSA", "kid": old_kid}),
        &payload(&auth, &session),
        &old_key,
    );
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_refused(&api.me(&old_token), "UNKNOWN_KEY", "old token, later");
        assert_refused(&api.me(&forged), "UNKNOWN_KEY", "fresh token, old key");
        std::thread::sleep(Duration::from_millis(250));
    }
    api.me(&new_token).expect(200);
    api.client().get("/readyz").send().expect(200);
    // A new API instance never knew the key.
    let fresh = Api::start(&auth);
    assert_refused(&fresh.me(&old_token), "UNKNOWN_KEY", "fresh API instance");
    fresh.me(&new_token).expect(200);
}
