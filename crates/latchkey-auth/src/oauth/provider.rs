//! One provider at run time: its endpoints (GitHub's fixed layout under the configured base
//! URLs, or an OpenID provider's discovery document, fetched once and retried until it
//! answers), the code exchange, refreshes, and the profile of the signed-in user. ID tokens
//! are verified (signature against the provider's JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`)
//! for every OpenID provider, Google included.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::config::{ClientAuth, Kind, ProviderConfig};
use super::http::{FetchError, Form, Outbound};

/// Why talking to a provider failed; each maps to one of Better-Auth's callback error codes.
#[derive(Debug)]
pub(crate) enum ProviderError {
    /// Discovery has not succeeded (yet).
    Unavailable(String),
    /// The code (or refresh token) was refused, or the token endpoint failed.
    Exchange(String),
    /// No usable profile: an ID token that failed verification, a userinfo failure.
    UserInfo(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Unavailable(d) => write!(f, "provider unavailable: {d}"),
            ProviderError::Exchange(d) => write!(f, "token request failed: {d}"),
            ProviderError::UserInfo(d) => write!(f, "no user info: {d}"),
        }
    }
}

/// What a token endpoint handed out. Tokens are secrets: no `Debug`, wiped on drop.
pub(crate) struct TokenSet {
    pub(crate) access_token: Option<SecretString>,
    pub(crate) refresh_token: Option<SecretString>,
    /// Stored verbatim (Better-Auth never encrypts it).
    pub(crate) id_token: Option<String>,
    pub(crate) expires_in: Option<i64>,
    pub(crate) refresh_token_expires_in: Option<i64>,
    /// Space- or comma-separated, as the provider sent it.
    pub(crate) scope: Option<String>,
}

/// The user as the provider describes them.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// The account's `accountId`: OIDC `sub`, GitHub's numeric id as a string.
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: bool,
    pub(crate) name: String,
    pub(crate) image: Option<String>,
    /// The provider's own document (account-info's `data`).
    pub(crate) raw: Value,
}

/// Where a provider's endpoints are.
pub(crate) struct Endpoints {
    pub(crate) authorize: Url,
    pub(crate) token: Url,
    pub(crate) userinfo: Option<Url>,
    /// OpenID: the discovered issuer, which `iss` (ID token and callback parameter) must match.
    pub(crate) issuer: Option<String>,
    id_tokens: Option<latchkey_jwt::Verifier>,
}

pub(crate) struct Provider {
    pub(crate) config: ProviderConfig,
    http: Outbound,
    endpoints: RwLock<Option<Arc<Endpoints>>>,
    /// One discovery at a time.
    discovering: tokio::sync::Mutex<()>,
}

impl Provider {
    pub(crate) fn new(config: ProviderConfig, http: Outbound) -> Result<Self, String> {
        let provider = Self {
            config,
            http,
            endpoints: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
        };
        if provider.config.kind == Kind::Github {
            let fixed = provider.github_endpoints()?;
            provider.store(fixed);
        }
        Ok(provider)
    }

    pub(crate) fn id(&self) -> &str {
        &self.config.id
    }

    /// OpenID providers get a nonce bound into the state and checked in the ID token.
    pub(crate) fn uses_nonce(&self) -> bool {
        self.config.kind != Kind::Github
    }

    fn github_endpoints(&self) -> Result<Endpoints, String> {
        let join = |base: &Option<Url>, path: &str| -> Result<Url, String> {
            let base = base.as_ref().ok_or("GitHub base URL missing")?;
            let mut url = base.clone();
            let prefix = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{prefix}{path}"));
            Ok(url)
        };
        Ok(Endpoints {
            authorize: join(&self.config.base_url, "/login/oauth/authorize")?,
            token: join(&self.config.base_url, "/login/oauth/access_token")?,
            userinfo: Some(join(&self.config.api_url, "/user")?),
            issuer: None,
            id_tokens: None,
        })
    }

    fn store(&self, e: Endpoints) -> Arc<Endpoints> {
        let e = Arc::new(e);
        match self.endpoints.write() {
            Ok(mut slot) => *slot = Some(e.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(e.clone()),
        }
        e
    }

    fn cached(&self) -> Option<Arc<Endpoints>> {
        match self.endpoints.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The endpoints, discovering them now if no earlier try succeeded.
    pub(crate) async fn endpoints(&self) -> Result<Arc<Endpoints>, ProviderError> {
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let _one = self.discovering.lock().await;
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let e = self.discover().await.map_err(ProviderError::Unavailable)?;
        Ok(self.store(e))
    }

    /// Keeps trying discovery in the background until it works (start-up must not depend on
    /// the provider being up).
    pub(crate) async fn discover_until_ready(self: Arc<Self>) {
        let mut wait = Duration::from_secs(2);
        loop {
            match self.endpoints().await {
                Ok(_) => return,
                Err(e) => tracing::warn!(provider = %self.id(), "{e}; retrying in {wait:?}"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(300));
        }
    }

    async fn discover(&self) -> Result<Endpoints, String> {
        let issuer = self.config.issuer.as_ref().ok_or("no issuer configured")?;
        let configured = issuer.as_str().trim_end_matches('/').to_string();
        let url = Url::parse(&format!("{configured}/.well-known/openid-configuration"))
            .map_err(|e| format!("discovery URL: {e}"))?;
        let (status, doc) = self
            .http
            .get_json(&url, None)
            .await
            .map_err(|FetchError(e)| format!("discovery failed: {e}"))?;
        if !status.is_success() {
            return Err(format!("discovery at {url} answered {status}"));
        }
        let text = |k: &str| doc.get(k).and_then(Value::as_str);
        let found_issuer = text("issuer").ok_or("discovery document without issuer")?;
        // OpenID Connect Discovery §4.3: the document's issuer is the one configured.
        if found_issuer.trim_end_matches('/') != configured {
            return Err(format!(
                "discovery document names issuer {found_issuer:?}, not the configured {configured:?}"
            ));
        }
        // A remote issuer may not point us at plain-http (loopback) endpoints: those are for
        // local test peers only, and would let a provider reach services on this host.
        let local_issuer = issuer.scheme() == "http";
        let endpoint = |k: &str| -> Result<Url, String> {
            let raw = text(k).ok_or_else(|| format!("discovery document without {k}"))?;
            let url = super::config::parse_url(raw).map_err(|e| format!("{k}: {e}"))?;
            if url.scheme() == "http" && !local_issuer {
                return Err(format!("{k}: {raw:?} is plain http at an https issuer"));
            }
            Ok(url)
        };
        let jwks_uri = endpoint("jwks_uri")?;
        let mut verifier = latchkey_jwt::VerifierConfig::new(
            jwks_uri.as_str(),
            found_issuer,
            self.config.client_id.as_str(),
        );
        verifier.leeway = Duration::from_secs(30);
        verifier.max_token_bytes = 16 * 1024;
        let id_tokens = latchkey_jwt::Verifier::new(verifier).map_err(|e| e.to_string())?;
        // Keys the provider drops must stop verifying: refetch the JWKS on its interval, not
        // only when a token names an unknown key.
        drop(id_tokens.spawn_refresher());
        Ok(Endpoints {
            authorize: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            userinfo: endpoint("userinfo_endpoint").ok(),
            issuer: Some(found_issuer.to_string()),
            id_tokens: Some(id_tokens),
        })
    }

    /// The URL the browser is sent to, parameters in Better-Auth's order.
    pub(crate) fn authorization_url(
        &self,
        e: &Endpoints,
        request: &AuthorizationRequest<'_>,
    ) -> Url {
        let mut url = e.authorize.clone();
        let mut scopes: Vec<&str> = self.config.scopes.iter().map(String::as_str).collect();
        for s in request.extra_scopes {
            if !scopes.contains(&s.as_str()) {
                scopes.push(s);
            }
        }
        if self.config.kind == Kind::Oidc && !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("state", request.state)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("redirect_uri", request.redirect_uri);
            if let Some(hint) = request.login_hint {
                q.append_pair("login_hint", hint);
            }
            if let Some(nonce) = request.nonce {
                q.append_pair("nonce", nonce);
            }
            q.append_pair("code_challenge_method", "S256")
                .append_pair("code_challenge", request.code_challenge);
            if self.config.kind == Kind::Google {
                q.append_pair("include_granted_scopes", "true");
            }
        }
        url
    }

    /// `grant_type=authorization_code` with the PKCE verifier.
    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, ProviderError> {
        let fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ];
        self.token_request(fields).await
    }

    /// `grant_type=refresh_token`.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ProviderError> {
        let fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token_request(fields).await
    }

    async fn token_request(
        &self,
        mut fields: Vec<(&str, &str)>,
    ) -> Result<TokenSet, ProviderError> {
        let e = self.endpoints().await?;
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret());
        let basic = match (self.config.client_auth, secret) {
            (ClientAuth::Basic, Some(secret)) => Some((self.config.client_id.as_str(), secret)),
            (ClientAuth::Post, secret) => {
                fields.push(("client_id", &self.config.client_id));
                if let Some(secret) = secret {
                    fields.push(("client_secret", secret));
                }
                None
            }
            (ClientAuth::Basic, None) => {
                fields.push(("client_id", &self.config.client_id));
                None
            }
        };
        let (status, body) = self
            .http
            .post_form(&e.token, &Form { fields, basic })
            .await
            .map_err(|FetchError(d)| ProviderError::Exchange(d))?;
        // GitHub answers errors with 200 and an `error` member.
        if let Some(err) = body.get("error").and_then(Value::as_str) {
            return Err(ProviderError::Exchange(format!(
                "{} answered {err}",
                self.id()
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Exchange(format!(
                "{} answered {status}",
                self.id()
            )));
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let number = |k: &str| {
            body.get(k).and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
        };
        let tokens = TokenSet {
            access_token: text("access_token").map(SecretString::from),
            refresh_token: text("refresh_token").map(SecretString::from),
            id_token: text("id_token"),
            expires_in: number("expires_in"),
            refresh_token_expires_in: number("refresh_token_expires_in"),
            scope: text("scope"),
        };
        if tokens.access_token.is_none() {
            return Err(ProviderError::Exchange(format!(
                "{} answered no access_token",
                self.id()
            )));
        }
        Ok(tokens)
    }

    /// The signed-in user: GitHub's `/user` and `/user/emails`; an OpenID provider's verified
    /// ID token (with `nonce` when one was sent), completed by userinfo when it has no email.
    pub(crate) async fn profile(
        &self,
        tokens: &TokenSet,
        nonce: Option<&str>,
    ) -> Result<Profile, ProviderError> {
        let e = self.endpoints().await?;
        match self.config.kind {
            Kind::Github => self.github_profile(&e, tokens).await,
            Kind::Google | Kind::Oidc => self.oidc_profile(&e, tokens, nonce).await,
        }
    }

    /// The user's current profile, fetched with an access token alone (account-info): GitHub's
    /// `/user`, an OpenID provider's userinfo endpoint.
    pub(crate) async fn live_profile(&self, access_token: &str) -> Result<Profile, ProviderError> {
        let e = self.endpoints().await?;
        let tokens = TokenSet {
            access_token: Some(SecretString::from(access_token.to_string())),
            refresh_token: None,
            id_token: None,
            expires_in: None,
            refresh_token_expires_in: None,
            scope: None,
        };
        if self.config.kind == Kind::Github {
            return self.github_profile(&e, &tokens).await;
        }
        let bad = |d: String| ProviderError::UserInfo(d);
        let url = e
            .userinfo
            .as_ref()
            .ok_or_else(|| bad("the provider has no userinfo endpoint".into()))?;
        let (status, info) = self
            .http
            .get_json(url, Some(access_token))
            .await
            .map_err(|FetchError(d)| bad(d))?;
        if !status.is_success() {
            return Err(bad(format!("userinfo answered {status}")));
        }
        let sub = info
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("userinfo without sub".into()))?
            .to_string();
        Ok(profile_of_claims(sub, info))
    }

    async fn github_profile(
        &self,
        e: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Profile, ProviderError> {
        let bad = |d: String| ProviderError::UserInfo(d);
        let access = tokens
            .access_token
            .as_ref()
            .map(|t| t.expose_secret())
            .ok_or_else(|| bad("no access token".into()))?;
        let user_url = e
            .userinfo
            .as_ref()
            .ok_or_else(|| bad("no /user URL".into()))?;
        let (status, user) = self
            .http
            .get_json(user_url, Some(access))
            .await
            .map_err(|FetchError(d)| bad(d))?;
        if !status.is_success() {
            return Err(bad(format!("GitHub /user answered {status}")));
        }
        let id = match user.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(bad("GitHub /user without id".into())),
        };
        let mut emails_url = user_url.clone();
        emails_url.set_path(&format!("{}/emails", user_url.path().trim_end_matches('/')));
        let emails = match self.http.get_json(&emails_url, Some(access)).await {
            Ok((status, Value::Array(list))) if status.is_success() => list,
            _ => Vec::new(),
        };
        let entry_email = |v: &Value| v.get("email").and_then(Value::as_str).map(str::to_string);
        let public = user
            .get("email")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let email = public.or_else(|| {
            emails
                .iter()
                .find(|v| v.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| emails.first())
                .and_then(entry_email)
        });
        let email_verified = email.as_deref().is_some_and(|email| {
            emails.iter().any(|v| {
                entry_email(v).is_some_and(|e| e.eq_ignore_ascii_case(email))
                    && v.get("verified").and_then(Value::as_bool) == Some(true)
            })
        });
        let text = |k: &str| {
            user.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Profile {
            id,
            email,
            email_verified,
            name: text("name").or_else(|| text("login")).unwrap_or_default(),
            image: text("avatar_url"),
            raw: user,
        })
    }

    /// The ID token of a refresh answer, kept only if it verifies (no nonce: none was sent)
    /// and names the account's subject.
    pub(crate) async fn refreshed_id_token_ok(&self, token: &str, subject: &str) -> bool {
        match self.verify_id_token(token, None).await {
            Ok(p) => p.id == subject,
            Err(e) => {
                tracing::info!(provider = %self.id(), "refresh: ID token dropped: {e}");
                false
            }
        }
    }

    /// An ID token handed to us directly (sign-in with `idToken`): verified as on a callback;
    /// the profile is its claims.
    pub(crate) async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Profile, ProviderError> {
        if self.config.kind == Kind::Github {
            return Err(ProviderError::UserInfo("GitHub issues no ID tokens".into()));
        }
        let e = self.endpoints().await?;
        let tokens = TokenSet {
            access_token: None,
            refresh_token: None,
            id_token: Some(token.to_string()),
            expires_in: None,
            refresh_token_expires_in: None,
            scope: None,
        };
        self.oidc_profile(&e, &tokens, nonce).await
    }

    async fn oidc_profile(
        &self,
        e: &Endpoints,
        tokens: &TokenSet,
        nonce: Option<&str>,
    ) -> Result<Profile, ProviderError> {
        let bad = |d: String| ProviderError::UserInfo(d);
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| bad("the token answer has no id_token".into()))?;
        let verifier = e
            .id_tokens
            .as_ref()
            .ok_or_else(|| bad("no ID token verifier".into()))?;
        let claims = verifier
            .verify(id_token)
            .await
            .map_err(|err| bad(format!("ID token refused: {}", err.code())))?;
        // OpenID Connect Core §3.1.3.7 beyond what the verifier checks: a subject, an issue
        // time, and with several audiences an `azp` naming us (an `azp` is always ours).
        if claims.sub.is_empty() || claims.iat.is_none() {
            return Err(bad("ID token without sub or iat".into()));
        }
        let several = matches!(claims.all.get("aud"), Some(Value::Array(a)) if a.len() > 1);
        match claims.all.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.config.client_id => {
                return Err(bad("ID token for another party (azp)".into()))
            }
            None if several => {
                return Err(bad("ID token with several audiences and no azp".into()))
            }
            _ => {}
        }
        let mut all = Value::Object(claims.all);
        match (nonce, all.get("nonce").and_then(Value::as_str)) {
            (Some(want), Some(got)) if want == got => {}
            (Some(_), _) => return Err(bad("ID token nonce does not match".into())),
            (None, _) => {}
        }
        let sub = claims.sub;
        if all.get("email").and_then(Value::as_str).is_none() {
            if let (Some(url), Some(access)) = (&e.userinfo, &tokens.access_token) {
                let (status, info) = self
                    .http
                    .get_json(url, Some(access.expose_secret()))
                    .await
                    .map_err(|FetchError(d)| bad(d))?;
                if !status.is_success() {
                    return Err(bad(format!("userinfo answered {status}")));
                }
                if info.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
                    return Err(bad("userinfo sub differs from the ID token's".into()));
                }
                all = info;
            }
        }
        Ok(profile_of_claims(sub, all))
    }
}

/// An OpenID profile from ID token or userinfo claims. `email_verified` may be a boolean or
/// the strings "true"/"false" (some providers send strings).
fn profile_of_claims(sub: String, all: Value) -> Profile {
    let text = |k: &str| {
        all.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let email_verified = match all.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Profile {
        id: sub,
        email: text("email"),
        email_verified,
        name: text("name").unwrap_or_default(),
        image: text("picture"),
        raw: all,
    }
}

/// The per-request parts of an authorization URL.
pub(crate) struct AuthorizationRequest<'a> {
    pub(crate) state: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) login_hint: Option<&'a str>,
    pub(crate) extra_scopes: &'a [String],
}
