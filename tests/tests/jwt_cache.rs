//! latchkey-api's verified-token cache (`LATCHKEY_JWT_CACHE_SIZE`), attacked end to end: a
//! repeat token is a hit (seen in `/metrics`), while forgeries around a cached token, a cached
//! token past `exp` + leeway, a cached token of a revoked key and a cached token of a
//! signed-out session are refused exactly as without the cache; size 0 turns it off, and the
//! entry count never exceeds the size.

use std::time::{Duration, Instant};

use latchkey_e2e::jwt;
use latchkey_e2e::prom::{scrape, value};
use latchkey_e2e::stack::{Api, Auth, Session};
use latchkey_e2e::{free_port, Resp};
use serde_json::{json, Value};

/// The verifier's fixed clock-skew allowance (latchkey_jwt::VerifierConfig::new; latchkey-api
/// has no setting for it).
const LEEWAY: i64 = 10;

/// The cache's counters and size in one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CacheMetrics {
    hits: f64,
    misses: f64,
    entries: f64,
    capacity: f64,
    evictions: f64,
    invalidations: f64,
}

/// An API daemon with its metrics listener on.
struct MeteredApi {
    api: Api,
    metrics: u16,
}

impl MeteredApi {
    fn start(
        auth: &Auth,
        f: impl FnOnce(latchkey_e2e::DaemonSpec) -> latchkey_e2e::DaemonSpec,
    ) -> Self {
        let metrics = free_port();
        let api = Api::start_with(&auth.url(), |s| {
            f(s.env("LATCHKEY_METRICS_LISTEN", format!("127.0.0.1:{metrics}")))
        });
        api.wait_ready();
        MeteredApi { api, metrics }
    }

    fn cache(&self) -> CacheMetrics {
        let s = scrape(self.metrics);
        CacheMetrics {
            hits: value(&s, "latchkey_jwt_cache_hits_total", &[]),
            misses: value(&s, "latchkey_jwt_cache_misses_total", &[]),
            entries: value(&s, "latchkey_jwt_cache_entries", &[]),
            capacity: value(&s, "latchkey_jwt_cache_capacity", &[]),
            evictions: value(&s, "latchkey_jwt_cache_evictions_total", &[]),
            invalidations: value(&s, "latchkey_jwt_cache_invalidations_total", &[]),
        }
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        value(&scrape(self.metrics), name, labels)
    }
}

fn kid_of(token: &str) -> String {
    jwt::decode(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

fn assert_refused(r: &Resp, codes: &[&str], what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    let code = r.json()["code"].as_str().unwrap_or_default().to_string();
    assert!(
        codes.contains(&code.as_str()),
        "{what}: {code} not in {codes:?}"
    );
}

/// Every token that differs from `token` in exactly one character of its payload or signature
/// (each replaced by another base64url character).
fn one_char_forgeries(token: &str) -> Vec<String> {
    let header_len = token.find('.').expect("a compact JWS");
    token
        .char_indices()
        .filter(|(i, c)| *i > header_len && *c != '.')
        .map(|(i, c)| {
            let other = if c == 'A' { 'B' } else { 'A' };
            let mut t = token.to_string();
            t.replace_range(i..i + 1, &other.to_string());
            t
        })
        .collect()
}

/// Waits up to `secs` for `done`, polling every 100 ms; panics with `what` otherwise.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} (after {secs} s)");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_repeated_token_is_a_hit_and_forgeries_around_it_are_refused() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let m = MeteredApi::start(&auth, |s| {
        s.env("LATCHKEY_LOG", "info,latchkey_jwt=debug,access=debug")
    });
    let api = &m.api;
    assert_eq!(m.cache().capacity, 10_000.0, "the default size");
    assert!(
        api.daemon.log().contains("jwt_cache_size=10000"),
        "the start-up line names the size:\n{}",
        api.daemon.log()
    );

    let mut forgeries = one_char_forgeries(&token);
    // The genuine signature over a payload that says something else.
    forgeries.push(jwt::tamper(&token, |p| p["sub"] = json!("admin")));
    // A foreign key under the genuine kid, over the genuine claims.
    let decoded = jwt::decode(&token);
    forgeries.push(jwt::sign_eddsa(
        &decoded.header,
        &decoded.payload,
        &jwt::random_key(),
    ));
    // The genuine token with a byte appended.
    forgeries.push(format!("{token}A"));
    let refusals = [
        "INVALID_SIGNATURE",
        "INVALID_TOKEN",
        "UNKNOWN_KEY",
        "UNSUPPORTED_ALGORITHM",
    ];
    for forged in &forgeries {
        assert_refused(
            &api.me(forged),
            &refusals,
            "before the genuine one is cached",
        );
    }
    let before = m.cache();
    assert_eq!((before.hits, before.entries), (0.0, 0.0), "{before:?}");
    assert_eq!(before.misses, forgeries.len() as f64);

    let first = api.me(&token);
    first.expect(200);
    let after_one = m.cache();
    assert_eq!((after_one.hits, after_one.entries), (0.0, 1.0));
    let second = api.me(&token);
    second.expect(200);
    assert_eq!(
        second.json(),
        first.json(),
        "the cached claims are the verified ones"
    );
    let after_two = m.cache();
    assert_eq!(
        after_two.hits, 1.0,
        "the second request was a hit: {after_two:?}"
    );
    assert_eq!(after_two.misses, after_one.misses);

    for forged in &forgeries {
        assert_refused(
            &api.me(forged),
            &refusals,
            "after the genuine one is cached",
        );
    }
    // Forward-auth shares the verifier and its cache.
    let r = api.client().get("/auth/verify").bearer(&token).send();
    r.expect(200);
    assert_eq!(r.header("x-auth-user-id"), Some(session.user_id().as_str()));
    let end = m.cache();
    assert_eq!(end.hits, 2.0, "{end:?}");
    assert_eq!(
        end.entries, 1.0,
        "only the genuine token is cached: {end:?}"
    );
    assert_eq!(end.misses, 2.0 * forgeries.len() as f64 + 1.0);

    // Neither the token nor any part of it reaches the log, even at debug level.
    let log = api.daemon.log();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "the signature is in the log");
    assert!(!log.contains(&token[..40]), "the token is in the log");
}

#[test]
fn a_cached_short_lived_token_is_refused_right_after_exp_plus_leeway() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_JWT_EXPIRES_IN", "3"));
    let session = auth.new_user();
    let cached = MeteredApi::start(&auth, |s| s);
    let uncached = MeteredApi::start(&auth, |s| s.env("LATCHKEY_JWT_CACHE_SIZE", "0"));
    let token = auth.jwt(&session);
    let claims = jwt::decode(&token).payload;
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - claims["iat"].as_i64().expect("iat"), 3);
    cached.api.me(&token).expect(200);

    // Both daemons, asked within the same second, give the same answer: accepted up to
    // exp + leeway, refused from the second after.
    let mut agreed = 0;
    loop {
        let before = jwt::now();
        let a = cached.api.me(&token);
        let b = uncached.api.me(&token);
        let after = jwt::now();
        assert!(
            before <= exp + LEEWAY + 5,
            "still no refusal 5 s after exp + leeway"
        );
        if before == after {
            assert_eq!(
                a.status,
                b.status,
                "at {before}: {} / {}",
                a.text(),
                b.text()
            );
            if before <= exp + LEEWAY {
                a.expect(200);
            } else {
                assert_refused(&a, &["TOKEN_EXPIRED"], "cached, after exp + leeway");
                assert_refused(&b, &["TOKEN_EXPIRED"], "uncached, after exp + leeway");
                break;
            }
            agreed += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(agreed > 0);
    let c = cached.cache();
    assert!(c.hits >= 2.0, "served from the cache while valid: {c:?}");
    assert_eq!(c.entries, 0.0, "the expired entry is gone: {c:?}");
    // And it stays refused.
    assert_refused(&cached.api.me(&token), &["TOKEN_EXPIRED"], "later");
    assert_eq!(uncached.cache().hits, 0.0);
}

#[test]
fn a_cached_token_of_a_revoked_key_is_refused_once_the_refresh_dropped_the_key() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_KEY_RELOAD_INTERVAL", "1"));
    let m = MeteredApi::start(&auth, |s| s.env("LATCHKEY_JWKS_REFRESH", "1"));
    let api = &m.api;
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let kid = kid_of(&token);
    // The compromised key, as an attacker holding it would use it.
    let (db_kid, _, stolen) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    assert_eq!(db_kid, kid);
    let mut payload = jwt::decode(&token).payload;
    payload["sub"] = json!("someone-else");
    let minted = jwt::sign_eddsa(&json!({"alg": "EdDSA", "kid": kid}), &payload, &stolen);
    for t in [&token, &token, &minted, &minted] {
        api.me(t).expect(200);
    }
    let c = m.cache();
    assert_eq!((c.hits, c.entries), (2.0, 2.0), "{c:?}");

    auth.tool(&["keys", "revoke", &kid]).assert_success();
    // The API logs the moment its key set no longer holds the key; from then on the cached
    // tokens must be refused, with no grace.
    let dropped = format!("kid={kid}");
    eventually(20, "latchkey-api never dropped the revoked key", || {
        api.daemon
            .log()
            .lines()
            .any(|l| l.contains("key no longer in the JWKS") && l.contains(&dropped))
    });
    for _ in 0..5 {
        assert_refused(
            &api.me(&token),
            &["UNKNOWN_KEY"],
            "cached token, revoked key",
        );
        assert_refused(
            &api.me(&minted),
            &["UNKNOWN_KEY"],
            "cached forgery, revoked key",
        );
    }
    let c = m.cache();
    assert_eq!(c.hits, 2.0, "no hit after the revocation: {c:?}");
    // The refresh dropped both entries (or the refused lookups did).
    assert_eq!(c.entries, 0.0, "{c:?}");
    assert!(c.invalidations >= 2.0, "{c:?}");

    // The replacement key signs and is cached in turn.
    let mut fresh = String::new();
    eventually(20, "the auth daemon never signed with a new key", || {
        fresh = auth.jwt(&session);
        kid_of(&fresh) != kid
    });
    api.me(&fresh).expect(200);
    api.me(&fresh).expect(200);
    assert_eq!(m.cache().hits, 3.0);
}

#[test]
fn the_session_check_still_runs_on_a_cache_hit() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let m = MeteredApi::start(&auth, |s| {
        s.env("LATCHKEY_REVOCATION", "session")
            .env("DATABASE_URL", &auth.db.url)
            .env("LATCHKEY_REVOCATION_CACHE_TTL", "0")
    });
    let api = &m.api;
    api.me(&token).expect(200);
    api.me(&token).expect(200);
    assert_eq!(m.cache().hits, 1.0);
    auth.browser()
        .post("/api/auth/sign-out")
        .cookies(&session.jar)
        .json(&json!({}))
        .send()
        .expect(200);
    // No TTL on the session answers: the very next request is refused, though the token
    // itself is (still) a cache hit.
    let r = api.me(&token);
    assert_refused(&r, &["SESSION_REVOKED"], "signed-out session, cached token");
    let c = m.cache();
    assert_eq!(
        c.hits, 2.0,
        "the refused request was a token cache hit: {c:?}"
    );
    assert_eq!(
        m.metric("latchkey_revocation_checks_total", &[("result", "revoked")]),
        1.0
    );
    assert_eq!(
        m.metric("latchkey_revocation_checks_total", &[("result", "live")]),
        2.0
    );
}

#[test]
fn a_cache_size_of_zero_turns_it_off() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let m = MeteredApi::start(&auth, |s| s.env("LATCHKEY_JWT_CACHE_SIZE", "0"));
    for _ in 0..3 {
        m.api.me(&token).expect(200);
    }
    assert_refused(
        &m.api
            .me(&jwt::tamper(&token, |p| p["sub"] = json!("admin"))),
        &["INVALID_SIGNATURE"],
        "tampered",
    );
    let c = m.cache();
    assert_eq!(
        c,
        CacheMetrics {
            hits: 0.0,
            misses: 0.0,
            entries: 0.0,
            capacity: 0.0,
            evictions: 0.0,
            invalidations: 0.0
        }
    );
    assert!(m.api.daemon.log().contains("jwt_cache_size=0"));
}

#[test]
fn the_cache_never_holds_more_than_its_size() {
    let auth = Auth::start();
    let session: Session = auth.new_user();
    let hot = auth.jwt(&session);
    let m = MeteredApi::start(&auth, |s| s.env("LATCHKEY_JWT_CACHE_SIZE", "5"));
    let api = &m.api;
    // Many distinct valid tokens, signed with the real key (as a busy auth daemon would).
    let (kid, _, key) = jwt::signing_key_from_db(&auth.db, &auth.secret);
    let base = jwt::decode(&hot).payload;
    let distinct: Vec<String> = (0..60)
        .map(|n| {
            let mut p: Value = base.clone();
            p["jti"] = json!(format!("flood-{n}"));
            jwt::sign_eddsa(&json!({"alg": "EdDSA", "kid": kid}), &p, &key)
        })
        .collect();
    api.me(&hot).expect(200);
    for (n, token) in distinct.iter().enumerate() {
        api.me(token).expect(200);
        // A token in use stays cached while one-off tokens stream past.
        api.me(&hot).expect(200);
        if n % 6 == 0 {
            let c = m.cache();
            assert!(c.entries <= 5.0, "{c:?}");
        }
    }
    let c = m.cache();
    assert_eq!(c.capacity, 5.0);
    assert_eq!(c.entries, 5.0, "{c:?}");
    assert_eq!(c.misses, 61.0, "{c:?}");
    assert_eq!(c.hits, 60.0, "{c:?}");
    assert_eq!(c.evictions, 56.0, "{c:?}");
    // The oldest one-off tokens were evicted, and are verified in full again.
    api.me(&distinct[0]).expect(200);
    assert_eq!(m.cache().misses, 62.0);
}
