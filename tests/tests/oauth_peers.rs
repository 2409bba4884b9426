//! The loopback peers of the social sign-in tests, on their own, with no latchkey involved:
//! the OpenID Provider (`oidc-provider`) and the GitHub stand-in must behave like the real
//! services before latchkey is tested against them. Each test drives the authorization code
//! flow with PKCE as a client would: the authorization request through [`follow`] (a browser
//! walking the redirects, stopping at a redirect URI nobody serves), then the token, userinfo
//! and API requests.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey_e2e::http::raw_exchange;
use latchkey_e2e::oauth_peers::{
    follow, form_decode, form_encode, pkce_challenge, pkce_pair, with_query, Browser,
    GithubStandIn, OidcClient, OidcProvider,
};
use latchkey_e2e::{jwt, random_email, random_string, Client, CookieJar, Resp};
use serde_json::{json, Value};

const CALLBACK: &str = "http://127.0.0.1:9/api/auth/callback/test";

fn form_post(base: &str, path: &str, pairs: &[(&str, &str)]) -> Resp {
    Client::new(base)
        .post(path)
        .header("accept", "application/json")
        .body("application/x-www-form-urlencoded", form_encode(pairs))
        .send()
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| latchkey_e2e::http::percent_encode(s);
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

struct Authorization {
    code: String,
    verifier: String,
    nonce: String,
}

/// `/auth?…` for `client` and `login_hint`, with a fresh state, nonce and PKCE pair.
fn op_authorize_url(
    op: &OidcProvider,
    client: &OidcClient,
    login_hint: &str,
) -> (String, String, String, String) {
    let (verifier, challenge) = pkce_pair();
    let state = random_string(16);
    let nonce = random_string(16);
    let url = with_query(
        &format!("{}/auth", op.issuer()),
        &[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uris[0]),
            ("scope", "openid email profile"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", login_hint),
        ],
    );
    (url, state, nonce, verifier)
}

/// Signs `login_hint` in at the OP with `jar` as the browser's cookies; returns the code.
fn op_sign_in(
    op: &OidcProvider,
    client: &OidcClient,
    login_hint: &str,
    jar: &mut CookieJar,
) -> Authorization {
    let (url, state, nonce, verifier) = op_authorize_url(op, client, login_hint);
    let out = follow(&url, jar, &client.redirect_uris[0]);
    out.assert_reached();
    assert_eq!(
        out.param("state").as_deref(),
        Some(state.as_str()),
        "{out:?}"
    );
    assert_eq!(out.param("iss"), Some(op.issuer()), "{out:?}");
    assert_eq!(out.param("error"), None, "{out:?}\n{}", op.log());
    Authorization {
        code: out.param("code").expect("code in the callback"),
        verifier,
        nonce,
    }
}

fn op_exchange_post(op: &OidcProvider, client: &OidcClient, auth: &Authorization) -> Resp {
    form_post(
        &op.issuer(),
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &auth.code),
            ("redirect_uri", &client.redirect_uris[0]),
            ("code_verifier", &auth.verifier),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ],
    )
}

fn userinfo(op: &OidcProvider, access_token: &str) -> Resp {
    Client::new(&op.issuer())
        .get("/me")
        .bearer(access_token)
        .send()
}

#[test]
fn op_discovery_is_what_a_relying_party_expects() {
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(&[client]);
    let d = op.discovery();
    let iss = op.issuer();
    assert_eq!(d["issuer"], iss);
    assert_eq!(d["authorization_endpoint"], format!("{iss}/auth"));
    assert_eq!(d["token_endpoint"], format!("{iss}/token"));
    assert_eq!(d["userinfo_endpoint"], format!("{iss}/me"));
    assert_eq!(d["jwks_uri"], format!("{iss}/jwks"));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    for m in ["client_secret_post", "client_secret_basic"] {
        assert!(
            d["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(m)),
            "{d}"
        );
    }
    let jwks = Client::new(&iss).get("/jwks").send();
    jwks.expect(200);
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0]["kid"].is_string() && keys[0].get("d").is_none());
}

#[test]
fn op_code_flow_with_pkce_id_token_userinfo_and_refresh() {
    let client = OidcClient::new("rp-post", "post-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    let email = random_email();
    op.set_user(
        &email,
        json!({
            "sub": "108234567890123456789",
            "email_verified": true,
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "picture": "https://example.com/ada.png",
            "not_a_claim": "never released",
        }),
    );
    let mut jar = CookieJar::new();
    let auth = op_sign_in(&op, &client, &email, &mut jar);
    // The OP's own cookies (its session) are in the browser's jar.
    assert!(jar.get("_session").is_some(), "{jar:?}");

    let tokens = op_exchange_post(&op, &client, &auth);
    tokens.expect(200);
    let t = tokens.json();
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["expires_in"], 3600, "{t}");
    assert_eq!(t["scope"], "openid email profile", "{t}");
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().expect("a refresh token");
    let id_token = t["id_token"].as_str().unwrap();

    // Signed with the published key (verified with jose), and the claims are in it.
    let verified = op.verify_jwt(id_token, &client.client_id);
    assert_eq!(verified["header"]["alg"], "RS256");
    let claims = jwt::decode(id_token).payload;
    assert_eq!(verified["payload"], claims);
    assert_eq!(claims["iss"], op.issuer());
    assert_eq!(claims["aud"], "rp-post");
    assert_eq!(claims["sub"], "108234567890123456789");
    assert_eq!(claims["nonce"], auth.nonce.as_str());
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["given_name"], "Ada");
    assert_eq!(claims["picture"], "https://example.com/ada.png");
    assert!(claims.get("not_a_claim").is_none(), "{claims}");

    let me = userinfo(&op, access);
    me.expect(200);
    let me = me.json();
    assert_eq!(me["sub"], "108234567890123456789");
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["name"], "Ada Lovelace");
    assert_eq!(userinfo(&op, "not-a-token").status, 401);

    // Users are re-read at every use: a new name shows in the refreshed ID token.
    op.set_user(
        &email,
        json!({"sub": "108234567890123456789", "email_verified": true, "name": "Ada King"}),
    );
    let refreshed = form_post(
        &op.issuer(),
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ],
    );
    refreshed.expect(200);
    let r = refreshed.json();
    let new_access = r["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    let claims = jwt::decode(r["id_token"].as_str().unwrap()).payload;
    assert_eq!(claims["name"], "Ada King");
    assert_eq!(claims["sub"], "108234567890123456789");
    assert_eq!(userinfo(&op, new_access).json()["name"], "Ada King");

    // A wrong secret is refused.
    let bad = form_post(
        &op.issuer(),
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client.client_id),
            ("client_secret", "wrong"),
        ],
    );
    bad.expect(401);
    assert_eq!(bad.json()["error"], "invalid_client");

    // The OP recorded what it was sent.
    let reqs = op.requests();
    let token_req = reqs
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/token")
        .expect("the token request");
    let body = form_decode(token_req["body"].as_str().unwrap());
    assert!(body.contains(&("code_verifier".to_string(), auth.verifier.clone())));
    assert!(token_req["headers"].get("authorization").is_none());

    // The code is single use, and a replay revokes what it gave (RFC 6749 section 4.1.2).
    let replay = op_exchange_post(&op, &client, &auth);
    replay.expect(400);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert!(
        op.log().contains("authorization code already consumed"),
        "{}",
        op.log()
    );
    userinfo(&op, new_access).expect(401);
}

#[test]
fn op_client_secret_basic_and_pkce_checks() {
    let post = OidcClient::new("rp-post", "post-secret", CALLBACK);
    let basic_client = OidcClient::new("rp-basic", "b@sic:secret/+", CALLBACK).basic();
    let op = OidcProvider::start(&[post, basic_client.clone()]);
    let email = random_email();
    op.set_user(&email, json!({"email_verified": false, "name": "Bea"}));
    let mut jar = CookieJar::new();

    // client_secret_basic: the id and secret form-urlencoded inside Basic.
    let auth = op_sign_in(&op, &basic_client, &email, &mut jar);
    let form = form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", &auth.code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &auth.verifier),
    ]);
    let tokens = Client::new(&op.issuer())
        .post("/token")
        .header(
            "authorization",
            &basic(&basic_client.client_id, &basic_client.client_secret),
        )
        .body("application/x-www-form-urlencoded", form)
        .send();
    tokens.expect(200);
    let claims = jwt::decode(tokens.json()["id_token"].as_str().unwrap()).payload;
    // Without a "sub", the account id is the login_hint.
    assert_eq!(claims["sub"], email.as_str());
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["email_verified"], false);
    assert!(tokens.json()["refresh_token"].is_string());

    // A basic client may not authenticate in the body.
    let auth = op_sign_in(&op, &basic_client, &email, &mut jar);
    let wrong_method = op_exchange_post(&op, &basic_client, &auth);
    wrong_method.expect(401);
    assert_eq!(wrong_method.json()["error"], "invalid_client");

    // Nor a post client in the header: each client is held to its registered method.
    let post_client = OidcClient::new("rp-post", "post-secret", CALLBACK);
    let auth = op_sign_in(&op, &post_client, &email, &mut jar);
    let form = form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", &auth.code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &auth.verifier),
    ]);
    let wrong_method = Client::new(&op.issuer())
        .post("/token")
        .header("authorization", &basic("rp-post", "post-secret"))
        .body("application/x-www-form-urlencoded", form)
        .send();
    wrong_method.expect(401);
    assert_eq!(wrong_method.json()["error"], "invalid_client");
    assert!(
        op.log()
            .contains("rp-post is registered with client_secret_post"),
        "{}",
        op.log()
    );

    // A verifier that does not match the challenge.
    let auth = op_sign_in(&op, &basic_client, &email, &mut jar);
    let form = form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", &auth.code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &pkce_pair().0),
    ]);
    let bad = Client::new(&op.issuer())
        .post("/token")
        .header(
            "authorization",
            &basic(&basic_client.client_id, &basic_client.client_secret),
        )
        .body("application/x-www-form-urlencoded", form)
        .send();
    bad.expect(400);
    assert_eq!(bad.json()["error"], "invalid_grant");

    // An authorization request without PKCE is refused at the client's redirect URI.
    let url = with_query(
        &format!("{}/auth", op.issuer()),
        &[
            ("response_type", "code"),
            ("client_id", "rp-post"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email"),
            ("state", "s1"),
            ("login_hint", &email),
        ],
    );
    let out = follow(&url, &mut jar, CALLBACK);
    out.assert_reached();
    assert_eq!(out.param("error").as_deref(), Some("invalid_request"));
    assert!(
        out.param("error_description").unwrap().contains("PKCE"),
        "{out:?}"
    );
    assert_eq!(out.param("state").as_deref(), Some("s1"));
    // A redirect URI that is not registered never gets a redirect.
    let url = with_query(
        &format!("{}/auth", op.issuer()),
        &[
            ("response_type", "code"),
            ("client_id", "rp-post"),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("scope", "openid"),
            ("code_challenge", &pkce_challenge("x".repeat(43).as_str())),
            ("code_challenge_method", "S256"),
        ],
    );
    let out = follow(&url, &mut jar, "http://127.0.0.1:9/");
    assert!(!out.reached, "{out:?}");
    assert_eq!(out.status, 400);
    assert_eq!(out.last.json()["error"], "invalid_redirect_uri");
}

#[test]
fn op_unknown_user_is_access_denied_at_the_client() {
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    let (url, state, _, _) = op_authorize_url(&op, &client, "nobody@example.com");
    let mut jar = CookieJar::new();
    let out = follow(&url, &mut jar, CALLBACK);
    out.assert_reached();
    assert_eq!(out.param("error").as_deref(), Some("access_denied"));
    assert!(
        out.param("error_description")
            .unwrap()
            .contains("nobody@example.com"),
        "{out:?}"
    );
    assert_eq!(out.param("state"), Some(state));
    assert_eq!(out.param("iss"), Some(op.issuer()));
    assert_eq!(out.param("code"), None);
    // Added while the OP runs, the user can sign in.
    op.set_user("nobody@example.com", json!({"name": "Now Somebody"}));
    let auth = op_sign_in(&op, &client, "nobody@example.com", &mut jar);
    op_exchange_post(&op, &client, &auth).expect(200);
    // Removed, refused again.
    op.remove_user("nobody@example.com");
    let (url, _, _, _) = op_authorize_url(&op, &client, "nobody@example.com");
    let out = follow(&url, &mut jar, CALLBACK);
    assert_eq!(out.param("error").as_deref(), Some("access_denied"));
}

#[test]
fn op_user_without_email_gets_an_id_token_without_email() {
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    op.set_user(
        "phone-only@example.com",
        json!({"sub": "42", "email": null, "name": "No Mail"}),
    );
    let mut jar = CookieJar::new();
    let auth = op_sign_in(&op, &client, "phone-only@example.com", &mut jar);
    let t = op_exchange_post(&op, &client, &auth).json();
    let claims = jwt::decode(t["id_token"].as_str().unwrap()).payload;
    assert_eq!(claims["sub"], "42");
    assert_eq!(claims["name"], "No Mail");
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(claims.get("email_verified").is_none(), "{claims}");
    let me = userinfo(&op, t["access_token"].as_str().unwrap()).json();
    assert!(me.get("email").is_none(), "{me}");
}

#[test]
fn op_short_access_token_expires_and_refresh_renews_it() {
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::builder()
        .client(client.clone())
        .access_token_ttl(2)
        .start();
    let email = random_email();
    op.set_user(&email, json!({"email_verified": true}));
    let mut jar = CookieJar::new();
    let auth = op_sign_in(&op, &client, &email, &mut jar);
    let t = op_exchange_post(&op, &client, &auth).json();
    assert_eq!(t["expires_in"], 2, "{t}");
    let access = t["access_token"].as_str().unwrap();
    userinfo(&op, access).expect(200);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let expired = userinfo(&op, access);
    expired.expect(401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap_or("")
            .contains("invalid_token"),
        "{:?}",
        expired.headers
    );
    let r = form_post(
        &op.issuer(),
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", "rp"),
            ("client_secret", "rp-secret"),
        ],
    );
    r.expect(200);
    let r = r.json();
    assert_eq!(r["expires_in"], 2);
    userinfo(&op, r["access_token"].as_str().unwrap()).expect(200);
}

#[test]
fn op_session_is_reused_for_the_same_user_and_replaced_for_another() {
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    let (a, b) = (random_email(), random_email());
    op.set_user(&a, json!({"sub": "a"}));
    op.set_user(&b, json!({"sub": "b"}));
    let mut jar = CookieJar::new();
    let sub_of = |auth: &Authorization| {
        let t = op_exchange_post(&op, &client, auth).json();
        jwt::decode(t["id_token"].as_str().unwrap()).payload["sub"].clone()
    };
    let first = op_sign_in(&op, &client, &a, &mut jar);
    assert_eq!(sub_of(&first), "a");
    // Same user again: the OP's session answers at once (no interaction).
    let (url, _, _, _) = op_authorize_url(&op, &client, &a);
    let out = follow(&url, &mut jar, CALLBACK);
    out.assert_reached();
    assert_eq!(out.hops.len(), 1, "{:#?}", out.hops);
    // Another user in the same browser: signed in as that user, not the session's.
    let second = op_sign_in(&op, &client, &b, &mut jar);
    assert_eq!(sub_of(&second), "b");
    // And back.
    let third = op_sign_in(&op, &client, &a, &mut jar);
    assert_eq!(sub_of(&third), "a");
}

#[test]
fn op_takes_google_style_authorization_parameters() {
    // What a Google sign-in sends: prompt=select_account or consent, access_type=offline,
    // include_granted_scopes; and offline_access for a generic OIDC client.
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    let email = random_email();
    op.set_user(&email, json!({"sub": "g-1", "email_verified": true}));
    let mut jar = CookieJar::new();
    for (prompt, scope) in [
        ("select_account", "openid email profile"),
        ("consent", "openid email profile offline_access"),
        ("login", "openid email"),
    ] {
        let (url, state, nonce, verifier) = op_authorize_url(&op, &client, &email);
        let url = with_query(
            &url.replace(
                "scope=openid%20email%20profile",
                &format!("scope={}", percent(scope)),
            ),
            &[
                ("prompt", prompt),
                ("access_type", "offline"),
                ("include_granted_scopes", "true"),
            ],
        );
        let out = follow(&url, &mut jar, CALLBACK);
        out.assert_reached();
        assert_eq!(
            out.param("error"),
            None,
            "prompt={prompt}: {out:?}\n{}",
            op.log()
        );
        assert_eq!(out.param("state"), Some(state));
        let auth = Authorization {
            code: out.param("code").unwrap(),
            verifier,
            nonce,
        };
        let t = op_exchange_post(&op, &client, &auth).json();
        assert_eq!(t["scope"], scope, "prompt={prompt}: {t}");
        assert!(t["refresh_token"].is_string(), "{t}");
        let claims = jwt::decode(t["id_token"].as_str().unwrap()).payload;
        assert_eq!(claims["sub"], "g-1");
        assert_eq!(claims["nonce"], auth.nonce.as_str());
    }
}

fn percent(s: &str) -> String {
    latchkey_e2e::http::percent_encode(s)
}

// ---------------------------------------------------------------------------------------
// GitHub

const GH_ID: &str = "Iv1.0123456789abcdef";
const GH_SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

fn gh_user(email: &str) -> Value {
    json!({
        "id": 26585291,
        "login": "gary",
        "name": "Gary",
        "email": null,
        "avatar_url": "https://avatars.githubusercontent.com/u/26585291?v=4",
        "emails": [
            {"email": "gary@users.noreply.github.com", "primary": false, "verified": true, "visibility": null},
            {"email": email, "primary": true, "verified": false, "visibility": null},
        ],
    })
}

/// Authorizes `login_hint` at the stand-in; returns (the callback's params, verifier).
fn gh_authorize(gh: &GithubStandIn, login_hint: &str) -> (Vec<(String, String)>, String) {
    let (verifier, challenge) = pkce_pair();
    let url = with_query(
        &format!("{}/login/oauth/authorize", gh.base_url()),
        &[
            ("response_type", "code"),
            ("client_id", GH_ID),
            ("state", "st-123"),
            ("scope", "read:user user:email"),
            ("redirect_uri", CALLBACK),
            ("login_hint", login_hint),
            ("code_challenge_method", "S256"),
            ("code_challenge", &challenge),
        ],
    );
    let out = follow(&url, &mut CookieJar::new(), CALLBACK);
    out.assert_reached();
    assert_eq!(out.status, 302);
    (out.params(), verifier)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn gh_token(gh: &GithubStandIn, pairs: &[(&str, &str)]) -> Resp {
    form_post(&gh.base_url(), "/login/oauth/access_token", pairs)
}

fn gh_exchange(gh: &GithubStandIn, code: &str, verifier: &str) -> Resp {
    gh_token(
        gh,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", CALLBACK),
            ("client_id", GH_ID),
            ("client_secret", GH_SECRET),
        ],
    )
}

fn gh_api(gh: &GithubStandIn, path: &str, token: &str) -> Resp {
    Client::new(&gh.api_url())
        .get(path)
        .header("accept", "application/vnd.github+json")
        .bearer(token)
        .send()
}

#[test]
fn github_code_flow_user_emails_and_refresh() {
    let gh = GithubStandIn::start(GH_ID, GH_SECRET);
    let email = random_email();
    gh.set_user(&email, gh_user(&email));
    let (params, verifier) = gh_authorize(&gh, &email);
    assert_eq!(param(&params, "state"), Some("st-123"));
    let code = param(&params, "code").expect("code").to_string();
    assert_eq!(code.len(), 20, "GitHub codes are 20 hex digits: {code}");

    let r = gh_exchange(&gh, &code, &verifier);
    r.expect(200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let t = r.json();
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("gho_"), "{t}");
    assert!(refresh.starts_with("ghr_"), "{t}");
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["scope"], "read:user,user:email");
    assert_eq!(t["expires_in"], 28800);
    assert_eq!(t["refresh_token_expires_in"], 15897600);

    // What the token request carried, as recorded.
    let sent = gh.requests_to("/login/oauth/access_token");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["headers"]["accept"], "application/json");
    let body = form_decode(sent[0]["body"].as_str().unwrap());
    assert!(body.contains(&("code_verifier".to_string(), verifier.clone())));

    let user = gh_api(&gh, "/user", access);
    user.expect(200);
    assert_eq!(user.header("x-oauth-scopes"), Some("read:user, user:email"));
    let u = user.json();
    assert_eq!(u["id"], 26585291);
    assert_eq!(u["login"], "gary");
    assert_eq!(u["name"], "Gary");
    assert_eq!(u["email"], Value::Null);
    assert_eq!(
        u["avatar_url"],
        "https://avatars.githubusercontent.com/u/26585291?v=4"
    );
    assert!(u.get("emails").is_none(), "{u}");
    let emails = gh_api(&gh, "/user/emails", access);
    emails.expect(200);
    assert_eq!(
        emails.json(),
        json!([
            {"email": "gary@users.noreply.github.com", "primary": false, "verified": true, "visibility": null},
            {"email": email, "primary": true, "verified": false, "visibility": null},
        ])
    );
    // GitHub's REST API also takes `token <t>`; anything else is 401.
    let classic = Client::new(&gh.api_url())
        .get("/user")
        .header("authorization", &format!("token {access}"))
        .send();
    classic.expect(200);
    let bad = gh_api(&gh, "/user", "gho_nope");
    bad.expect(401);
    assert_eq!(bad.json()["message"], "Bad credentials");
    Client::new(&gh.api_url()).get("/user").send().expect(401);

    // A replayed code: an error with HTTP 200, as GitHub answers.
    let replay = gh_exchange(&gh, &code, &verifier);
    replay.expect(200);
    assert_eq!(replay.json()["error"], "bad_verification_code");
    assert_eq!(
        replay.json()["error_description"],
        "The code passed is incorrect or expired."
    );

    // Refresh: new tokens, and the old refresh token is spent.
    let refresh_with = |rt: &str| {
        gh_token(
            &gh,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", GH_ID),
                ("client_secret", GH_SECRET),
            ],
        )
    };
    let r2 = refresh_with(refresh);
    r2.expect(200);
    let t2 = r2.json();
    let access2 = t2["access_token"].as_str().expect("new access token");
    assert_ne!(access2, access);
    assert_ne!(t2["refresh_token"], t["refresh_token"]);
    gh_api(&gh, "/user", access2).expect(200);
    let again = refresh_with(refresh);
    again.expect(200);
    assert_eq!(again.json()["error"], "bad_refresh_token");

    // Users are re-read: a changed profile shows at once.
    let mut changed = gh_user(&email);
    changed["name"] = json!("Gary Renamed");
    changed["email"] = json!(email);
    gh.set_user(&email, changed);
    let u = gh_api(&gh, "/user", access2).json();
    assert_eq!(u["name"], "Gary Renamed");
    assert_eq!(u["email"], email.as_str());
}

#[test]
fn github_refuses_like_github() {
    let gh = GithubStandIn::start(GH_ID, GH_SECRET);
    let email = random_email();
    gh.set_user(&email, gh_user(&email));

    // A verifier that does not match the challenge.
    let (params, _) = gh_authorize(&gh, &email);
    let code = param(&params, "code").unwrap();
    let r = gh_exchange(&gh, code, &pkce_pair().0);
    r.expect(200);
    assert_eq!(r.json()["error"], "bad_verification_code");
    // No verifier at all.
    let (params, _) = gh_authorize(&gh, &email);
    let code = param(&params, "code").unwrap();
    let r = gh_token(
        &gh,
        &[
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("client_id", GH_ID),
            ("client_secret", GH_SECRET),
        ],
    );
    assert_eq!(r.json()["error"], "bad_verification_code");
    // Another redirect_uri than the authorization's.
    let (params, verifier) = gh_authorize(&gh, &email);
    let code = param(&params, "code").unwrap();
    let r = gh_token(
        &gh,
        &[
            ("code", code),
            ("code_verifier", &verifier),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", GH_ID),
            ("client_secret", GH_SECRET),
        ],
    );
    r.expect(200);
    assert_eq!(r.json()["error"], "redirect_uri_mismatch");
    // A wrong client secret.
    let (params, verifier) = gh_authorize(&gh, &email);
    let code = param(&params, "code").unwrap();
    let r = gh_token(
        &gh,
        &[
            ("code", code),
            ("code_verifier", &verifier),
            ("client_id", GH_ID),
            ("client_secret", "wrong"),
        ],
    );
    r.expect(200);
    assert_eq!(r.json()["error"], "incorrect_client_credentials");
    // Without `accept: application/json` GitHub answers form-encoded; Basic auth works too.
    let (params, verifier) = gh_authorize(&gh, &email);
    let code = param(&params, "code").unwrap();
    let r = Client::new(&gh.base_url())
        .post("/login/oauth/access_token")
        .header("authorization", &basic(GH_ID, GH_SECRET))
        .body(
            "application/x-www-form-urlencoded",
            form_encode(&[("code", code), ("code_verifier", &verifier)]),
        )
        .send();
    r.expect(200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    let answer = form_decode(&r.text());
    assert!(answer
        .iter()
        .any(|(k, v)| k == "access_token" && v.starts_with("gho_")));
    assert!(answer
        .iter()
        .any(|(k, v)| k == "scope" && v == "read:user,user:email"));

    // An unknown user: access_denied back at the client, with the state.
    let url = with_query(
        &format!("{}/login/oauth/authorize", gh.base_url()),
        &[
            ("client_id", GH_ID),
            ("state", "st-9"),
            ("redirect_uri", CALLBACK),
            ("login_hint", "stranger@example.com"),
            ("code_challenge_method", "S256"),
            ("code_challenge", &pkce_pair().1),
        ],
    );
    let out = follow(&url, &mut CookieJar::new(), CALLBACK);
    out.assert_reached();
    assert_eq!(out.param("error").as_deref(), Some("access_denied"));
    assert!(out.param("error_description").is_some());
    assert_eq!(out.param("state").as_deref(), Some("st-9"));
    assert_eq!(out.param("code"), None);
    assert!(gh.log().contains("no such user: stranger@example.com"));

    // The REST API refuses a request without User-Agent, as api.github.com does.
    let raw = raw_exchange(
        gh.port(),
        "GET /user HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n",
        Vec::new(),
    );
    assert_eq!(latchkey_e2e::http::raw_status(&raw), Some(403));

    // /user/emails needs the user:email scope.
    let (verifier, challenge) = pkce_pair();
    let url = with_query(
        &format!("{}/login/oauth/authorize", gh.base_url()),
        &[
            ("client_id", GH_ID),
            ("scope", "read:user"),
            ("redirect_uri", CALLBACK),
            ("login_hint", &email),
            ("code_challenge_method", "S256"),
            ("code_challenge", &challenge),
        ],
    );
    let out = follow(&url, &mut CookieJar::new(), CALLBACK);
    let t = gh_exchange(&gh, &out.param("code").unwrap(), &verifier).json();
    assert_eq!(t["scope"], "read:user");
    let access = t["access_token"].as_str().unwrap();
    gh_api(&gh, "/user", access).expect(200);
    gh_api(&gh, "/user/emails", access).expect(404);
}

#[test]
fn github_classic_app_tokens_do_not_expire() {
    let gh = GithubStandIn::builder(GH_ID, GH_SECRET)
        .non_expiring_tokens()
        .start();
    let email = random_email();
    gh.set_user(&email, json!({"id": 7, "login": "octo"}));
    let (params, verifier) = gh_authorize(&gh, &email);
    let t = gh_exchange(&gh, param(&params, "code").unwrap(), &verifier).json();
    assert!(t["access_token"].as_str().unwrap().starts_with("gho_"));
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert!(t.get("expires_in").is_none(), "{t}");
    let access = t["access_token"].as_str().unwrap();
    let u = gh_api(&gh, "/user", access).json();
    assert_eq!(u["id"], 7);
    assert_eq!(u["login"], "octo");
    assert_eq!(u["name"], Value::Null);
    assert_eq!(u["email"], Value::Null);
    // Without "emails", the login_hint is the one primary, verified address.
    assert_eq!(
        gh_api(&gh, "/user/emails", access).json(),
        json!([{"email": email, "primary": true, "verified": true, "visibility": "private"}])
    );
}

#[test]
fn browser_keeps_cookies_per_host_across_ports() {
    // Two peers on 127.0.0.1, different ports: one jar, as in a browser.
    let client = OidcClient::new("rp", "rp-secret", CALLBACK);
    let op = OidcProvider::start(std::slice::from_ref(&client));
    let email = random_email();
    op.set_user(&email, json!({}));
    let mut browser = Browser::new();
    browser.jar("127.0.0.1").set("from-another-port", "1");
    let (url, _, _, _) = op_authorize_url(&op, &client, &email);
    let out = browser.follow(&url, CALLBACK);
    out.assert_reached();
    // authorize → interaction → resume → callback.
    assert_eq!(out.hops.len(), 3, "{:#?}", out.hops);
    assert!(out.hops[0]
        .set_cookies
        .iter()
        .any(|c| c.starts_with("_interaction=")));
    assert!(out.hops[2]
        .set_cookies
        .iter()
        .any(|c| c.starts_with("_session=")));
    let jar = browser.jar("127.0.0.1");
    assert!(jar.get("_session").is_some() && jar.get("from-another-port").is_some());
    assert!(browser.jars.keys().eq(["127.0.0.1"]));
    // The OP saw the browser's cookies of the host, whatever port set them.
    let reqs = op.requests();
    assert!(reqs.iter().any(|r| r["headers"]["cookie"]
        .as_str()
        .unwrap_or("")
        .contains("from-another-port=1")));
}
