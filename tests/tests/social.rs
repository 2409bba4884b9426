//! Social sign-in end to end: latchkey-auth against a real OpenID Provider (`oidc-provider`,
//! as a generic OIDC provider and as the Google-shaped one) and a GitHub stand-in, all on
//! loopback, driven by a browser that follows redirects across origins with cookie jars.

use latchkey_e2e::daemon::{Daemon, DaemonSpec};
use latchkey_e2e::oauth_peers::{Browser, FollowResult, GithubStandIn, OidcClient, OidcProvider};
use latchkey_e2e::stack::{Auth, PASSWORD};
use latchkey_e2e::{cluster, free_port, random_email, random_string, Client};
use serde_json::{json, Value};

struct Stack {
    op: OidcProvider,
    gh: GithubStandIn,
    auth: Auth,
}

const CORP_SECRET: &str = "corp-client-secret";
const GOOGLE_SECRET: &str = "google-client-secret";
const GITHUB_SECRET: &str = "github-client-secret";

/// latchkey-auth with three providers: `corp` (type oidc, client_secret_basic), `google`
/// (type google, at the same OP) and `github` (the stand-in).
fn start(extra: impl FnOnce(DaemonSpec) -> DaemonSpec) -> Stack {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/api/auth/callback");
    let op = OidcProvider::builder()
        .client(OidcClient::new("lk-corp", CORP_SECRET, &format!("{base}/corp")).basic())
        .client(OidcClient::new(
            "lk-google",
            GOOGLE_SECRET,
            &format!("{base}/google"),
        ))
        .start();
    let gh = GithubStandIn::start("lk-github", GITHUB_SECRET);
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let spec = Auth::spec(&db, &secret, port)
        .env("LATCHKEY_PROVIDER_CORP_TYPE", "oidc")
        .env("LATCHKEY_PROVIDER_CORP_ISSUER", op.issuer())
        .env("LATCHKEY_PROVIDER_CORP_CLIENT_ID", "lk-corp")
        .env("LATCHKEY_PROVIDER_CORP_CLIENT_SECRET", CORP_SECRET)
        .env(
            "LATCHKEY_PROVIDER_CORP_TOKEN_ENDPOINT_AUTH",
            "client_secret_basic",
        )
        .env(
            "LATCHKEY_PROVIDER_CORP_SCOPES",
            "openid,email,profile,offline_access",
        )
        .env("GOOGLE_CLIENT_ID", "lk-google")
        .env("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET)
        .env("LATCHKEY_PROVIDER_GOOGLE_ISSUER", op.issuer())
        .env("GITHUB_CLIENT_ID", "lk-github")
        .env("GITHUB_CLIENT_SECRET", GITHUB_SECRET)
        .env("LATCHKEY_PROVIDER_GITHUB_BASE_URL", gh.base_url())
        .env("LATCHKEY_PROVIDER_GITHUB_API_URL", gh.api_url());
    let daemon = Daemon::start(extra(spec));
    Stack {
        op,
        gh,
        auth: Auth { daemon, db, secret },
    }
}

impl Stack {
    fn app(&self) -> String {
        format!("{}/app/", self.auth.url())
    }

    /// `POST /sign-in/social` from the app, the state cookie kept in the browser; returns the
    /// provider's authorization URL.
    fn begin(&self, browser: &mut Browser, body: Value) -> String {
        let resp = self
            .auth
            .browser()
            .post("/api/auth/sign-in/social")
            .json(&body)
            .send();
        resp.expect(200);
        browser.jar("127.0.0.1").update(&resp);
        let url = resp.json()["url"].as_str().unwrap().to_string();
        assert_eq!(resp.header("location"), Some(url.as_str()));
        url
    }

    fn body(provider: &str, hint: &str) -> Value {
        json!({
            "provider": provider,
            "callbackURL": "/app/dash",
            "newUserCallbackURL": "/app/welcome",
            "errorCallbackURL": "/app/error",
            "loginHint": hint,
        })
    }

    /// A whole sign-in, until the app's page (or error page) is reached.
    fn sign_in(&self, browser: &mut Browser, provider: &str, hint: &str) -> FollowResult {
        let url = self.begin(browser, Self::body(provider, hint));
        let out = browser.follow(&url, &self.app());
        out.assert_reached();
        out
    }

    /// The sign-in up to the callback latchkey is sent to (not requested).
    fn until_callback(&self, browser: &mut Browser, provider: &str, hint: &str) -> String {
        let url = self.begin(browser, Self::body(provider, hint));
        let callback = format!("{}/api/auth/callback/{provider}", self.auth.url());
        let out = browser.follow(&url, &callback);
        out.assert_reached();
        out.final_url
    }

    /// Opens a callback URL; ends at the app's page, or at latchkey's own error page when
    /// the flow's error URL is not known (no state row).
    fn callback(&self, browser: &mut Browser, url: &str) -> FollowResult {
        browser.follow(url, &self.app())
    }

    fn session(&self, browser: &mut Browser) -> Value {
        let resp = self
            .auth
            .client()
            .get("/api/auth/get-session")
            .cookies(browser.jar("127.0.0.1"))
            .send();
        resp.expect(200);
        resp.json()
    }

    /// A POST with the browser's session cookie, from the app's origin.
    fn post(&self, browser: &mut Browser, path: &str, body: Value) -> latchkey_e2e::Resp {
        self.auth
            .browser()
            .post(path)
            .cookies(browser.jar("127.0.0.1"))
            .json(&body)
            .send()
    }

    fn count(&self, sql: &str) -> i64 {
        self.auth.db.count(sql)
    }
}

fn error_of(out: &FollowResult) -> String {
    out.param("error")
        .unwrap_or_else(|| format!("no error in {}", out.final_url))
}

#[test]
fn oidc_new_user_returning_user_and_the_provider_tokens() {
    let s = start(|s| s);
    let email = random_email();
    s.op.set_user(
        &email,
        json!({"sub": "sub-olivia", "email_verified": true, "name": "Olivia", "picture": "https://img.example/o.png"}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "corp", &email);
    assert_eq!(out.final_url, format!("{}welcome", s.app()), "a new user");
    // The authorization request as sent to the OP.
    let authorize = &out.hops[0].url;
    for part in [
        "response_type=code",
        "client_id=lk-corp",
        "scope=openid+email+profile+offline_access",
        "code_challenge_method=S256",
        "nonce=",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    assert!(authorize.contains(&format!(
        "redirect_uri={}",
        latchkey_e2e::http::percent_encode(&format!("{}/api/auth/callback/corp", s.auth.url()))
    )));
    let callback_hop = out
        .hops
        .iter()
        .find(|h| h.url.contains("/api/auth/callback/corp"))
        .expect("the callback was requested");
    assert!(
        callback_hop
            .set_cookies
            .iter()
            .any(|c| c.starts_with("better-auth.state=;") && c.contains("Max-Age=0")),
        "the state cookie is expired: {:?}",
        callback_hop.set_cookies
    );

    let session = s.session(&mut browser);
    assert_eq!(session["user"]["email"], email.as_str());
    assert_eq!(session["user"]["name"], "Olivia");
    assert_eq!(session["user"]["emailVerified"], true);
    assert_eq!(session["user"]["image"], "https://img.example/o.png");
    let rows = s.auth.db.query(
        r#"select "accountId", "accessToken", "refreshToken", "idToken", "scope",
                  extract(epoch from "accessTokenExpiresAt" - "createdAt")::float8, "id"
           from "account" where "providerId" = 'corp'"#,
        &[],
    );
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "sub-olivia");
    let access: String = row.get(1);
    assert!(
        access.len() > 80 && access.bytes().all(|b| b.is_ascii_hexdigit()),
        "the access token is sealed at rest: {access}"
    );
    assert!(row.get::<_, Option<String>>(2).is_some(), "a refresh token");
    assert!(
        row.get::<_, String>(3).starts_with("ey"),
        "the ID token, verbatim"
    );
    // The OP granted fewer scopes than asked (no offline_access): the answer's scope is kept.
    assert_eq!(row.get::<_, String>(4), "openid,email,profile");
    let ttl: f64 = row.get(5);
    assert!(
        (3590.0..=3601.0).contains(&ttl),
        "expires in an hour: {ttl}"
    );
    let account_row_id: String = row.get(6);
    assert_eq!(
        s.count(r#"select count(*) from "verification" where "identifier" like 'auth-state:%'"#),
        0,
        "the state row is used up"
    );

    // Replaying the whole callback URL: the state is gone.
    let replay = Client::new(&s.auth.url())
        .get(&callback_hop.url)
        .cookies(browser.jar("127.0.0.1"))
        .send();
    replay.expect(302);
    assert_eq!(
        replay.header("location"),
        Some(format!("{}/api/auth/error?error=state_mismatch", s.auth.url()).as_str())
    );

    // A returning user: the same account, the callbackURL.
    let mut other_browser = Browser::new();
    let out = s.sign_in(&mut other_browser, "corp", &email);
    assert_eq!(out.final_url, format!("{}dash", s.app()));
    assert_eq!(s.count(r#"select count(*) from "user""#), 1);
    assert_eq!(s.count(r#"select count(*) from "account""#), 1);
    assert_eq!(
        s.count(r#"select count(*) from "latchkey_audit" where "event" = 'social_sign_in'"#),
        2
    );

    // The app gets the provider's token, decrypted, and it works at the provider.
    let resp = s.post(
        &mut browser,
        "/api/auth/get-access-token",
        json!({"accountId": account_row_id}),
    );
    resp.expect(200);
    let token = resp.json();
    let access_token = token["accessToken"].as_str().unwrap().to_string();
    assert_ne!(access_token, access);
    assert_eq!(token["scopes"], json!(["openid", "email", "profile"]));
    assert!(token["idToken"].as_str().unwrap().starts_with("ey"));
    let userinfo = s.op.discovery()["userinfo_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let me = Client::new(&s.op.issuer())
        .get(&userinfo)
        .bearer(&access_token)
        .send();
    me.expect(200);
    assert_eq!(me.json()["sub"], "sub-olivia");
    s.post(
        &mut browser,
        "/api/auth/get-access-token",
        json!({"accountId": account_row_id, "providerId": "corp"}),
    )
    .expect_error(400, "VALIDATION_ERROR");
    s.post(
        &mut browser,
        "/api/auth/get-access-token",
        json!({"accountId": "nope"}),
    )
    .expect_error(400, "ACCOUNT_NOT_FOUND");

    // A refresh at the provider, stored.
    let resp = s.post(
        &mut browser,
        "/api/auth/refresh-token",
        json!({"accountId": account_row_id}),
    );
    resp.expect(200);
    let refreshed = resp.json();
    assert_eq!(refreshed["providerId"], "corp");
    assert_eq!(refreshed["accountId"], account_row_id.as_str());
    let new_access = refreshed["accessToken"].as_str().unwrap();
    assert_ne!(new_access, access_token);
    Client::new(&s.op.issuer())
        .get(&userinfo)
        .bearer(new_access)
        .send()
        .expect(200);
    let resp = s.post(
        &mut browser,
        "/api/auth/get-access-token",
        json!({"accountId": account_row_id}),
    );
    assert_eq!(
        resp.json()["accessToken"],
        new_access,
        "the stored token changed"
    );

    // account-info asks the provider.
    let resp = s
        .auth
        .client()
        .get(&format!(
            "/api/auth/account-info?accountId={account_row_id}"
        ))
        .cookies(browser.jar("127.0.0.1"))
        .send();
    resp.expect(200);
    let info = resp.json();
    assert_eq!(info["data"]["sub"], "sub-olivia");
    assert_eq!(info["user"]["email"], email.as_str());
    assert_eq!(info["account"]["accountId"], "sub-olivia");

    // list-accounts shows no token; the only account cannot be unlinked.
    let resp = s
        .auth
        .client()
        .get("/api/auth/list-accounts")
        .cookies(browser.jar("127.0.0.1"))
        .send();
    resp.expect(200);
    let text = resp.text();
    assert!(
        !text.contains(&access_token) && !text.contains("accessToken"),
        "{text}"
    );
    s.post(
        &mut browser,
        "/api/auth/unlink-account",
        json!({"accountId": account_row_id}),
    )
    .expect_error(400, "FAILED_TO_UNLINK_LAST_ACCOUNT");
    // No token in the daemon's log.
    assert!(!s.auth.daemon.log().contains(&access_token));
}

#[test]
fn callback_errors_redirect_with_better_auths_codes() {
    let s = start(|s| s);
    let email = random_email();
    s.op.set_user(&email, json!({"sub": "sub-e", "email_verified": true}));
    let api = format!("{}/api/auth", s.auth.url());
    let get = |path: &str| Client::new(&s.auth.url()).get(path).send();

    let r = get("/api/auth/callback/corp?code=abc&state=forged-state-value");
    assert_eq!(
        r.header("location"),
        Some(format!("{api}/error?error=state_mismatch").as_str())
    );
    let r = get("/api/auth/callback/corp?code=abc");
    assert_eq!(
        r.header("location"),
        Some(format!("{api}/error?error=state_not_found").as_str())
    );
    let page = get("/api/auth/error?error=state_mismatch");
    page.expect(200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("state_mismatch"));

    // A valid state without its cookie (another browser): refused, the row stays.
    let mut browser = Browser::new();
    let callback = s.until_callback(&mut browser, "corp", &email);
    let out = s.callback(&mut Browser::new(), &callback);
    assert_eq!(error_of(&out), "state_mismatch");
    assert!(out.final_url.starts_with(&format!("{}error?", s.app())));
    // A tampered `iss` (mix-up attack).
    let tampered = callback.replace(
        &latchkey_e2e::http::percent_encode(&s.op.issuer()),
        "http%3A%2F%2Fevil.example",
    );
    assert_ne!(tampered, callback);
    assert_eq!(
        error_of(&s.callback(&mut browser, &tampered)),
        "issuer_mismatch"
    );
    // That used the state up: the genuine callback is now a replay, sent to latchkey's own
    // error page (the flow's error URL went with the row).
    let out = s.callback(&mut browser, &callback);
    assert_eq!(error_of(&out), "state_mismatch");
    assert!(out
        .final_url
        .starts_with(&format!("{}/api/auth/error?", s.auth.url())));

    // A code used twice: the second time with a fresh state.
    let mut browser = Browser::new();
    let first = s.until_callback(&mut browser, "corp", &email);
    let done = s.callback(&mut browser, &first);
    assert_eq!(done.final_url, format!("{}welcome", s.app()));
    let code = latchkey_e2e::oauth_peers::query_param(&first, "code").unwrap();
    let second = s.until_callback(&mut browser, "corp", &email);
    let fresh_code = latchkey_e2e::oauth_peers::query_param(&second, "code").unwrap();
    let replayed = second.replace(&fresh_code, &code);
    assert_eq!(
        error_of(&s.callback(&mut browser, &replayed)),
        "invalid_code"
    );

    // The provider says no.
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "corp", "nobody@example.com");
    assert_eq!(error_of(&out), "access_denied");
    assert!(out.param("error_description").is_some());

    // A nonce that is not the one sent: the ID token is refused.
    let mut browser = Browser::new();
    let callback = s.until_callback(&mut browser, "corp", &email);
    s.auth.db.execute(
        r#"update "verification" set "value" = jsonb_set("value"::jsonb, '{idTokenNonce}', '"forged-nonce"')::text
           where "identifier" like 'auth-state:%'"#,
    );
    assert_eq!(
        error_of(&s.callback(&mut browser, &callback)),
        "unable_to_get_user_info"
    );

    // No email from the provider.
    let no_email = random_email();
    s.op.set_user(&no_email, json!({"sub": "sub-n", "email": null}));
    let mut browser = Browser::new();
    assert_eq!(
        error_of(&s.sign_in(&mut browser, "corp", &no_email)),
        "email_not_found"
    );

    // Refused before the provider is involved.
    let post = |body: Value| {
        s.auth
            .browser()
            .post("/api/auth/sign-in/social")
            .json(&body)
            .send()
    };
    post(json!({"provider": "corp", "callbackURL": "https://evil.example/"}))
        .expect_error(403, "INVALID_CALLBACK_URL");
    post(json!({"provider": "corp", "errorCallbackURL": "https://evil.example/"}))
        .expect_error(403, "INVALID_ERROR_CALLBACK_URL");
    post(json!({"provider": "corp", "newUserCallbackURL": "https://evil.example/"}))
        .expect_error(403, "INVALID_NEW_USER_CALLBACK_URL");
    post(json!({"provider": "nope"})).expect_error(404, "PROVIDER_NOT_FOUND");
    post(json!({"provider": 7})).expect_error(400, "VALIDATION_ERROR");
    let r = post(json!({"provider": "corp", "disableRedirect": true}));
    r.expect(200);
    assert_eq!(r.json()["redirect"], false);
    assert!(r.header("location").is_none());
    // Nothing was created by any of it but the two successful sign-ins' user.
    assert_eq!(s.count(r#"select count(*) from "user""#), 1);
}

#[test]
fn implicit_linking_only_when_both_sides_vouch_for_the_address() {
    let s = start(|s| s);
    // A verified local user, and the OIDC provider says the same address is verified: linked.
    let alice = s.auth.new_user();
    s.auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        alice.user_id()
    ));
    s.op.set_user(
        &alice.email(),
        json!({"sub": "sub-alice", "email_verified": true}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "corp", &alice.email());
    assert_eq!(out.final_url, format!("{}dash", s.app()), "not a new user");
    assert_eq!(
        s.session(&mut browser)["user"]["id"],
        alice.user_id().as_str()
    );
    let providers: Vec<String> = s
        .auth
        .db
        .query(
            r#"select "providerId" from "account" where "userId" = $1 order by "providerId""#,
            &[&alice.user_id()],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(providers, ["corp", "credential"]);

    // An unverified local user: refused even though the provider vouches.
    let bob = s.auth.new_user();
    s.op.set_user(
        &bob.email(),
        json!({"sub": "sub-bob", "email_verified": true}),
    );
    let mut browser = Browser::new();
    assert_eq!(
        error_of(&s.sign_in(&mut browser, "corp", &bob.email())),
        "account_not_linked"
    );
    // A verified local user, a provider that does not vouch: refused.
    let carol = s.auth.new_user();
    s.auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        carol.user_id()
    ));
    s.gh.set_user(
        &carol.email(),
        json!({"id": 4242, "login": "carol", "emails": [{"email": carol.email(), "primary": true, "verified": false, "visibility": null}]}),
    );
    let mut browser = Browser::new();
    assert_eq!(
        error_of(&s.sign_in(&mut browser, "github", &carol.email())),
        "account_not_linked"
    );
    assert_eq!(
        s.count(r#"select count(*) from "account" where "providerId" <> 'credential'"#),
        1,
        "only alice's link"
    );
    assert_eq!(
        s.count(
            r#"select count(*) from "latchkey_audit" where "event" = 'social_sign_in_refused'"#
        ),
        2
    );

    // Now alice has two accounts: the provider one can be unlinked, then not the last.
    let mut browser = Browser::new();
    let resp = s.auth.sign_in_resp(&alice.email(), PASSWORD);
    browser.jar("127.0.0.1").update(&resp);
    let corp_id: String = s.auth.db.query(
        r#"select "id" from "account" where "providerId" = 'corp' and "userId" = $1"#,
        &[&alice.user_id()],
    )[0]
    .get(0);
    let r = s.post(
        &mut browser,
        "/api/auth/unlink-account",
        json!({"accountId": corp_id}),
    );
    r.expect(200);
    assert_eq!(r.json(), json!({"status": true}));
    s.post(
        &mut browser,
        "/api/auth/unlink-account",
        json!({"accountId": corp_id}),
    )
    .expect_error(400, "FAILED_TO_UNLINK_LAST_ACCOUNT");
}

#[test]
fn a_trusted_provider_links_without_a_verified_email() {
    let s = start(|s| s.env("LATCHKEY_TRUSTED_PROVIDERS", "github"));
    let dave = s.auth.new_user();
    s.auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        dave.user_id()
    ));
    s.gh.set_user(
        &dave.email(),
        json!({"id": 777, "login": "dave", "emails": [{"email": dave.email(), "primary": true, "verified": false, "visibility": null}]}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "github", &dave.email());
    assert_eq!(out.final_url, format!("{}dash", s.app()));
    assert_eq!(
        s.session(&mut browser)["user"]["id"],
        dave.user_id().as_str()
    );
}

#[test]
fn github_new_user_tokens_and_errors() {
    let s = start(|s| s);
    let email = random_email();
    s.gh.set_user(
        &email,
        json!({"id": 26585291, "login": "gary", "name": null, "email": null, "avatar_url": "https://avatars.example/u/gary",
               "emails": [{"email": "old@example.com", "primary": false, "verified": true, "visibility": null},
                          {"email": email, "primary": true, "verified": true, "visibility": "private"}]}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "github", &email);
    assert_eq!(out.final_url, format!("{}welcome", s.app()));
    let authorize = &out.hops[0].url;
    assert!(
        authorize.contains("scope=read%3Auser+user%3Aemail"),
        "{authorize}"
    );
    assert!(!authorize.contains("nonce="), "no nonce for GitHub");
    let user = s.session(&mut browser)["user"].clone();
    assert_eq!(user["email"], email.as_str(), "the primary address");
    assert_eq!(user["name"], "gary", "login when there is no name");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(user["image"], "https://avatars.example/u/gary");
    let rows = s.auth.db.query(
        r#"select "accountId", "scope", "idToken", "id" from "account" where "providerId" = 'github'"#,
        &[],
    );
    assert_eq!(rows[0].get::<_, String>(0), "26585291");
    assert_eq!(rows[0].get::<_, String>(1), "read:user,user:email");
    assert_eq!(rows[0].get::<_, Option<String>>(2), None);
    let account_id: String = rows[0].get(3);
    // What latchkey sent GitHub.
    let token_requests = s.gh.requests_to("/login/oauth/access_token");
    assert_eq!(token_requests.len(), 1);
    let req = &token_requests[0];
    assert_eq!(req["headers"]["accept"], "application/json");
    let body = req["body"].as_str().unwrap();
    for part in [
        "grant_type=authorization_code",
        "code_verifier=",
        "client_id=lk-github",
        "redirect_uri=",
    ] {
        assert!(body.contains(part), "{part} in {body}");
    }
    for r in s.gh.requests_to("/user") {
        assert!(r["headers"]["user-agent"].as_str().is_some());
    }

    // The refresh token works through refresh-token.
    let resp = s.post(
        &mut browser,
        "/api/auth/refresh-token",
        json!({"accountId": account_id}),
    );
    resp.expect(200);
    assert!(resp.json()["accessToken"]
        .as_str()
        .unwrap()
        .starts_with("gho_"));
    assert_eq!(
        s.gh.requests_to("/login/oauth/access_token")
            .iter()
            .filter(|r| r["body"]
                .as_str()
                .unwrap_or("")
                .contains("grant_type=refresh_token"))
            .count(),
        1
    );

    // No address at all.
    let nomail = random_email();
    s.gh.set_user(&nomail, json!({"id": 1, "login": "x", "emails": []}));
    let mut browser = Browser::new();
    assert_eq!(
        error_of(&s.sign_in(&mut browser, "github", &nomail)),
        "email_not_found"
    );
}

#[test]
fn google_shaped_provider_gets_a_nonce_and_a_verified_id_token() {
    let s = start(|s| s);
    let email = random_email();
    s.op.set_user(
        &email,
        json!({"sub": "g-123", "email_verified": "true", "name": "Gina"}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "google", &email);
    assert_eq!(out.final_url, format!("{}welcome", s.app()));
    let authorize = &out.hops[0].url;
    assert!(
        authorize.contains("scope=email+profile+openid"),
        "{authorize}"
    );
    assert!(authorize.contains("include_granted_scopes=true"));
    assert!(authorize.contains("nonce="));
    let user = s.session(&mut browser)["user"].clone();
    assert_eq!(user["emailVerified"], true, "the string \"true\" counts");
    assert_eq!(user["name"], "Gina");
}

#[test]
fn short_lived_access_tokens_are_refreshed_by_get_access_token() {
    let port = free_port();
    let gh = GithubStandIn::builder("lk-github", GITHUB_SECRET)
        .access_token_ttl(2)
        .start();
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let spec = Auth::spec(&db, &secret, port)
        .env("GITHUB_CLIENT_ID", "lk-github")
        .env("GITHUB_CLIENT_SECRET", GITHUB_SECRET)
        .env("LATCHKEY_PROVIDER_GITHUB_BASE_URL", gh.base_url())
        .env("LATCHKEY_PROVIDER_GITHUB_API_URL", gh.api_url())
        .env("LATCHKEY_ENCRYPT_OAUTH_TOKENS", "false");
    let auth = Auth {
        daemon: Daemon::start(spec),
        db,
        secret,
    };
    let email = random_email();
    gh.set_user(&email, json!({"id": 99, "login": "rita"}));
    let mut browser = Browser::new();
    let resp = auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "github", "callbackURL": "/app/dash", "loginHint": email}))
        .send();
    resp.expect(200);
    browser.jar("127.0.0.1").update(&resp);
    let out = browser.follow(
        resp.json()["url"].as_str().unwrap(),
        &format!("{}/app/", auth.url()),
    );
    out.assert_reached();
    let rows = auth.db.query(
        r#"select "id", "accessToken" from "account" where "providerId" = 'github'"#,
        &[],
    );
    let (id, stored): (String, String) = (rows[0].get(0), rows[0].get(1));
    assert!(
        stored.starts_with("gho_"),
        "stored plain with encryption off"
    );
    let resp = auth
        .browser()
        .post("/api/auth/get-access-token")
        .cookies(browser.jar("127.0.0.1"))
        .json(&json!({"accountId": id}))
        .send();
    resp.expect(200);
    let handed = resp.json()["accessToken"].as_str().unwrap().to_string();
    assert_ne!(handed, stored, "expiring within 5 s: refreshed first");
    let now_stored: String = auth.db.query(
        r#"select "accessToken" from "account" where "id" = $1"#,
        &[&id],
    )[0]
    .get(0);
    assert_eq!(now_stored, handed);
}

#[test]
fn a_provider_down_at_start_up_is_not_fatal() {
    let port = free_port();
    let dead = free_port();
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let spec = Auth::spec(&db, &secret, port)
        .env("LATCHKEY_PROVIDER_CORP_TYPE", "oidc")
        .env(
            "LATCHKEY_PROVIDER_CORP_ISSUER",
            format!("http://127.0.0.1:{dead}"),
        )
        .env("LATCHKEY_PROVIDER_CORP_CLIENT_ID", "x");
    let auth = Auth {
        daemon: Daemon::start(spec),
        db,
        secret,
    };
    auth.client().get("/readyz").send().expect(200);
    auth.browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp"}))
        .send()
        .expect_error(503, "PROVIDER_UNAVAILABLE");
    // Email and password still work.
    auth.new_user();
}

#[test]
fn malformed_provider_settings_are_one_line_errors() {
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let spec = Auth::spec(&db, &secret, free_port());
    for (env, setting) in [
        (
            vec![("LATCHKEY_PROVIDER_CORP_CLIENT_ID", "x")],
            "providers.corp.type",
        ),
        (
            vec![
                ("LATCHKEY_PROVIDER_CORP_TYPE", "oidc"),
                ("LATCHKEY_PROVIDER_CORP_CLIENT_ID", "x"),
                ("LATCHKEY_PROVIDER_CORP_ISSUER", "http://idp.example.com"),
            ],
            "providers.corp.issuer",
        ),
        (
            vec![("GITHUB_CLIENT_ID", "x")],
            "LATCHKEY_PROVIDER_GITHUB_CLIENT_SECRET",
        ),
        (
            vec![("LATCHKEY_PROVIDER_CORP_COLOUR", "red")],
            "LATCHKEY_PROVIDER_CORP_COLOUR",
        ),
        // The password account's providerId: a provider of that name would match password
        // rows (found by the review).
        (
            vec![
                ("LATCHKEY_PROVIDER_CREDENTIAL_TYPE", "oidc"),
                ("LATCHKEY_PROVIDER_CREDENTIAL_CLIENT_ID", "x"),
                (
                    "LATCHKEY_PROVIDER_CREDENTIAL_ISSUER",
                    "https://idp.example.com",
                ),
            ],
            "providers.credential",
        ),
        // Only the secret is read from a file.
        (
            vec![
                ("LATCHKEY_PROVIDER_CORP_TYPE", "oidc"),
                ("LATCHKEY_PROVIDER_CORP_CLIENT_ID_FILE", "/tmp/client-id"),
            ],
            "LATCHKEY_PROVIDER_CORP_CLIENT_ID_FILE",
        ),
    ] {
        let mut vars = spec.env.clone();
        for (k, v) in &env {
            vars.push((k.to_string(), v.to_string()));
        }
        let out = latchkey_e2e::run_tool("latchkey-auth", &["check-config"], &vars);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(setting) && out.stderr.lines().count() == 1,
            "{env:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn link_social_adds_an_account_to_the_signed_in_user() {
    let s = start(|s| s);
    let alice = s.auth.new_user();
    let mut browser = Browser::new();
    let signed_in = s.auth.sign_in_resp(&alice.email(), PASSWORD);
    browser.jar("127.0.0.1").update(&signed_in);
    let sessions_before = s.count(r#"select count(*) from "session""#);
    // The OP's user is the same address, verified there (alice's local address is not verified:
    // linking from a session does not need that).
    s.op.set_user(
        &alice.email(),
        json!({"sub": "sub-link-alice", "email_verified": true}),
    );
    let link = |browser: &mut Browser, provider: &str, hint: &str| {
        let resp = s.post(
            browser,
            "/api/auth/link-social",
            json!({"provider": provider, "callbackURL": "/app/linked", "errorCallbackURL": "/app/error", "loginHint": hint}),
        );
        resp.expect(200);
        browser.jar("127.0.0.1").update(&resp);
        let url = resp.json()["url"].as_str().unwrap().to_string();
        let out = browser.follow(&url, &s.app());
        out.assert_reached();
        out
    };
    // The state row holds the session sealed, never the token itself.
    let session_token = alice.token.clone();
    let resp = s.post(
        &mut browser,
        "/api/auth/link-social",
        json!({"provider": "corp", "disableRedirect": true}),
    );
    resp.expect(200);
    let rows = s.auth.db.query(
        r#"select "value" from "verification" where "identifier" like 'auth-state:%'"#,
        &[],
    );
    let value: String = rows[0].get(0);
    assert!(value.contains("\"link\":{\"userId\""), "{value}");
    assert!(!value.contains(&session_token));
    assert!(!value.contains(&signed_in.json()["token"].as_str().unwrap().to_string()));

    let out = link(&mut browser, "corp", &alice.email());
    assert_eq!(out.final_url, format!("{}linked", s.app()));
    let providers: Vec<String> = s
        .auth
        .db
        .query(
            r#"select "providerId" from "account" where "userId" = $1 order by "providerId""#,
            &[&alice.user_id()],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(providers, ["corp", "credential"]);
    assert_eq!(
        s.count(r#"select count(*) from "session""#),
        sessions_before,
        "no new session from a link"
    );
    // Signing in through the provider now reaches alice.
    let mut other = Browser::new();
    let out = s.sign_in(&mut other, "corp", &alice.email());
    assert_eq!(out.final_url, format!("{}dash", s.app()));
    assert_eq!(
        s.session(&mut other)["user"]["id"],
        alice.user_id().as_str()
    );

    // Another address at the provider: refused.
    let elsewhere = random_email();
    s.op.set_user(
        &elsewhere,
        json!({"sub": "sub-elsewhere", "email_verified": true}),
    );
    assert_eq!(
        error_of(&link(&mut browser, "corp", &elsewhere)),
        "email_does_not_match"
    );
    // An identity already linked to alice, asked for by bob: refused.
    let bob = s.auth.new_user();
    let mut bob_browser = Browser::new();
    bob_browser
        .jar("127.0.0.1")
        .update(&s.auth.sign_in_resp(&bob.email(), PASSWORD));
    // (The OP's identity sub-link-alice now says it is bob's address.)
    s.op.set_user(
        &alice.email(),
        json!({"sub": "sub-link-alice", "email": bob.email(), "email_verified": true}),
    );
    assert_eq!(
        error_of(&link(&mut bob_browser, "corp", &alice.email())),
        "account_already_linked_to_different_user"
    );
    // A provider that does not vouch for the address: refused.
    s.gh.set_user(
        &bob.email(),
        json!({"id": 31337, "login": "bob", "emails": [{"email": bob.email(), "primary": true, "verified": false, "visibility": null}]}),
    );
    assert_eq!(
        error_of(&link(&mut bob_browser, "github", &bob.email())),
        "unable_to_link_account"
    );
    // The session that asked was signed out meanwhile: refused.
    s.gh.set_user(&bob.email(), json!({"id": 31337, "login": "bob"}));
    let resp = s.post(
        &mut bob_browser,
        "/api/auth/link-social",
        json!({"provider": "github", "errorCallbackURL": "/app/error", "loginHint": bob.email()}),
    );
    resp.expect(200);
    bob_browser.jar("127.0.0.1").update(&resp);
    let url = resp.json()["url"].as_str().unwrap().to_string();
    s.post(&mut bob_browser, "/api/auth/sign-out", json!({}))
        .expect(200);
    let out = bob_browser.follow(&url, &s.app());
    assert_eq!(error_of(&out), "unable_to_link_account");
    assert_eq!(
        s.count(r#"select count(*) from "account" where "providerId" <> 'credential'"#),
        1,
        "only alice's link"
    );
    // Without a session: 401.
    s.auth
        .browser()
        .post("/api/auth/link-social")
        .json(&json!({"provider": "corp"}))
        .send()
        .expect(401);
}

/// An ID token straight from the OP for `client` (the app's own provider SDK would hold one):
/// the authorization flow up to the redirect, then the token request.
fn id_token_from_op(
    op: &OidcProvider,
    auth_url: &str,
    client: &str,
    secret: &str,
    basic: bool,
    hint: &str,
    nonce: &str,
) -> String {
    use latchkey_e2e::oauth_peers::{follow, form_encode, pkce_pair, with_query};
    let (verifier, challenge) = pkce_pair();
    let callback = format!(
        "{}/api/auth/callback/{}",
        auth_url,
        if client == "lk-corp" {
            "corp"
        } else {
            "google"
        }
    );
    let url = with_query(
        &format!("{}/auth", op.issuer()),
        &[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", &callback),
            ("scope", "openid email profile"),
            ("state", "st"),
            ("nonce", nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", hint),
        ],
    );
    let mut jar = latchkey_e2e::CookieJar::new();
    let out = follow(&url, &mut jar, &callback);
    out.assert_reached();
    let code = out.param("code").unwrap();
    let token_endpoint = op.discovery()["token_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let mut req = Client::new(&op.issuer()).post(&token_endpoint);
    if basic {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
        req = req.header("authorization", &format!("Basic {auth}"));
    } else {
        pairs.push(("client_id", client));
        pairs.push(("client_secret", secret));
    }
    let resp = req
        .body("application/x-www-form-urlencoded", form_encode(&pairs))
        .send();
    resp.expect(200);
    resp.json()["id_token"].as_str().unwrap().to_string()
}

#[test]
fn sign_in_with_an_id_token_from_the_provider() {
    let s = start(|s| s);
    let email = random_email();
    s.op.set_user(
        &email,
        json!({"sub": "sub-idt", "email_verified": true, "name": "Ida"}),
    );
    let token = id_token_from_op(
        &s.op,
        &s.auth.url(),
        "lk-corp",
        CORP_SECRET,
        true,
        &email,
        "n-123",
    );
    let post = |body: Value| {
        s.auth
            .browser()
            .post("/api/auth/sign-in/social")
            .json(&body)
            .send()
    };
    // A nonce other than the token's: refused.
    post(json!({"provider": "corp", "idToken": {"token": token, "nonce": "n-other"}}))
        .expect_error(401, "INVALID_TOKEN");
    // A token for another client (audience): refused.
    let google_token = id_token_from_op(
        &s.op,
        &s.auth.url(),
        "lk-google",
        GOOGLE_SECRET,
        false,
        &email,
        "n-g",
    );
    post(json!({"provider": "corp", "idToken": {"token": google_token}}))
        .expect_error(401, "INVALID_TOKEN");
    // A forged signature: refused.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    post(json!({"provider": "corp", "idToken": {"token": forged}}))
        .expect_error(401, "INVALID_TOKEN");
    post(json!({"provider": "github", "idToken": {"token": token}}))
        .expect_error(401, "INVALID_TOKEN");
    assert_eq!(s.count(r#"select count(*) from "user""#), 0);

    let resp = post(json!({"provider": "corp", "idToken": {"token": token, "nonce": "n-123"}}));
    resp.expect(200);
    let body = resp.json();
    assert_eq!(body["redirect"], false);
    assert_eq!(body["user"]["email"], email.as_str());
    assert!(body["token"].as_str().is_some());
    assert!(resp.header("set-auth-token").is_some());
    let account: Option<String> = s.auth.db.query(
        r#"select "idToken" from "account" where "providerId" = 'corp' and "accountId" = 'sub-idt'"#,
        &[],
    )[0]
    .get(0);
    assert_eq!(account.as_deref(), Some(token.as_str()));
}

#[test]
fn hardening_found_by_the_review() {
    let s = start(|s| s);
    // NUL in a query parameter or a path parameter: a 400, not a database error.
    for path in [
        "/api/auth/callback/corp?state=%00",
        "/api/auth/account-info?accountId=%00",
        "/api/auth/reset-password/%00?callbackURL=%2Fx",
    ] {
        Client::new(&s.auth.url())
            .get(path)
            .send()
            .expect_error(400, "VALIDATION_ERROR");
    }
    // Too many scopes, and an idToken without a token: 400.
    let many: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    s.auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp", "scopes": many}))
        .send()
        .expect_error(400, "VALIDATION_ERROR");
    s.auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp", "idToken": {"nonce": "x"}}))
        .send()
        .expect_error(400, "VALIDATION_ERROR");

    // A state started for GitHub, brought to Google's callback: refused.
    let mut browser = Browser::new();
    let url = s.begin(&mut browser, Stack::body("github", "x@example.com"));
    let state = latchkey_e2e::oauth_peers::query_param(&url, "state").unwrap();
    let out = browser.follow(
        &format!(
            "{}/api/auth/callback/google?code=abc&state={state}",
            s.auth.url()
        ),
        &s.app(),
    );
    assert_eq!(error_of(&out), "state_mismatch");

    // A provider address that only matches an existing one under Unicode case folding (the
    // Kelvin sign K) is another address: a new user, not a link.
    let kevin = s
        .auth
        .sign_up("Kevin", &format!("k{}", random_email()), PASSWORD);
    s.auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        kevin.user_id()
    ));
    let exotic = format!("\u{212A}{}", &kevin.email()[1..]);
    assert_eq!(
        exotic.to_lowercase(),
        kevin.email(),
        "it folds to kevin's address"
    );
    s.op.set_user(
        "kelvin-login@example.com",
        json!({"sub": "sub-kelvin", "email": exotic, "email_verified": true}),
    );
    let mut browser = Browser::new();
    let out = s.sign_in(&mut browser, "corp", "kelvin-login@example.com");
    assert_ne!(
        s.session(&mut browser)["user"]["id"],
        kevin.user_id().as_str(),
        "not linked to kevin: {}",
        out.final_url
    );
    // An address that is not one (a trailing dot): no user at all.
    s.op.set_user(
        "dot-login@example.com",
        json!({"sub": "sub-dot", "email": "dot@example.com.", "email_verified": true}),
    );
    let mut browser = Browser::new();
    assert_eq!(
        error_of(&s.sign_in(&mut browser, "corp", "dot-login@example.com")),
        "email_not_found"
    );
}

#[test]
fn concurrent_links_and_unlinks_keep_the_invariants() {
    let s = start(|s| s);
    let alice = s.auth.new_user();
    s.auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        alice.user_id()
    ));
    s.op.set_user(
        &alice.email(),
        json!({"sub": "sub-race", "email_verified": true}),
    );
    // Four callbacks of four flows for the same new identity, at once: one account row.
    let mut flows: Vec<(Browser, String)> = (0..4)
        .map(|_| {
            let mut b = Browser::new();
            let url = s.until_callback(&mut b, "corp", &alice.email());
            (b, url)
        })
        .collect();
    std::thread::scope(|scope| {
        for (browser, url) in flows.iter_mut() {
            let app = s.app();
            scope.spawn(move || browser.follow(url, &app));
        }
    });
    assert_eq!(
        s.count(r#"select count(*) from "account" where "providerId" = 'corp'"#),
        1,
        "one identity, one row"
    );
    // Two unlinks of her two accounts at once: one of them must stay.
    let mut browser = Browser::new();
    browser
        .jar("127.0.0.1")
        .update(&s.auth.sign_in_resp(&alice.email(), PASSWORD));
    let ids: Vec<String> = s
        .auth
        .db
        .query(
            r#"select "id" from "account" where "userId" = $1"#,
            &[&alice.user_id()],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 2);
    let cookie = browser.jar("127.0.0.1").header().unwrap();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let cookie = cookie.clone();
                let url = s.auth.url();
                scope.spawn(move || {
                    Client::new(&url)
                        .post("/api/auth/unlink-account")
                        .header("origin", &url)
                        .header("cookie", &cookie)
                        .json(&json!({"accountId": id}))
                        .send()
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 400], "{statuses:?}");
    assert_eq!(
        s.auth.db.query(
            r#"select count(*) from "account" where "userId" = $1"#,
            &[&alice.user_id()]
        )[0]
        .get::<_, i64>(0),
        1
    );
}

#[test]
fn sealed_values_are_never_opened_for_the_client() {
    // Encryption off: a value given as a provider token is stored and handed back as is, even
    // when it is a blob sealed with the secret (here: the JWT signing key from the jwks table).
    let s = start(|s| s.env("LATCHKEY_ENCRYPT_OAUTH_TOKENS", "false"));
    let email = random_email();
    s.op.set_user(&email, json!({"sub": "sub-oracle", "email_verified": true}));
    let key_blob: String = s
        .auth
        .db
        .query(r#"select "privateKey" from "jwks" limit 1"#, &[])[0]
        .get(0);
    let key_blob = key_blob.trim_matches('"').to_string();
    let token = id_token_from_op(
        &s.op,
        &s.auth.url(),
        "lk-corp",
        CORP_SECRET,
        true,
        &email,
        "n-o",
    );
    let resp = s
        .auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp", "idToken": {"token": token, "accessToken": key_blob}}))
        .send();
    resp.expect(200);
    let mut browser = Browser::new();
    browser.jar("127.0.0.1").update(&resp);
    let id: String = s.auth.db.query(
        r#"select "id" from "account" where "providerId" = 'corp'"#,
        &[],
    )[0]
    .get(0);
    let got = s.post(
        &mut browser,
        "/api/auth/get-access-token",
        json!({"accountId": id}),
    );
    got.expect(200);
    let handed = got.json()["accessToken"].as_str().unwrap().to_string();
    assert_eq!(handed, key_blob);
    assert!(!handed.contains("crv"));

    // A returning idToken sign-in without an access token keeps the stored one.
    let token2 = id_token_from_op(
        &s.op,
        &s.auth.url(),
        "lk-corp",
        CORP_SECRET,
        true,
        &email,
        "n-o2",
    );
    s.auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp", "idToken": {"token": token2}}))
        .send()
        .expect(200);
    let stored: Option<String> = s.auth.db.query(
        r#"select "accessToken" from "account" where "id" = $1"#,
        &[&id],
    )[0]
    .get(0);
    assert_eq!(stored.as_deref(), Some(key_blob.as_str()));
}

#[test]
fn an_id_token_from_another_issuer_is_refused() {
    let s = start(|s| s);
    // A second, independent OpenID provider that knows a client of the same id.
    let callback = format!("{}/api/auth/callback/corp", s.auth.url());
    let rogue = OidcProvider::builder()
        .client(OidcClient::new("lk-corp", CORP_SECRET, &callback).basic())
        .start();
    let email = random_email();
    rogue.set_user(&email, json!({"sub": "sub-rogue", "email_verified": true}));
    let token = id_token_from_op(
        &rogue,
        &s.auth.url(),
        "lk-corp",
        CORP_SECRET,
        true,
        &email,
        "n-r",
    );
    s.auth
        .browser()
        .post("/api/auth/sign-in/social")
        .json(&json!({"provider": "corp", "idToken": {"token": token, "nonce": "n-r"}}))
        .send()
        .expect_error(401, "INVALID_TOKEN");
    assert_eq!(s.count(r#"select count(*) from "user""#), 0);
}
