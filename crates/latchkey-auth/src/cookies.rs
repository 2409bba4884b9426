//! Better-Auth's signed cookies and bearer tokens (docs/compatibility.md#cookies,
//! docs/compatibility.md#bearer-tokens), under the cookie policy of Better-Auth's options.
//!
//! A signed value is `value.base64(HMAC-SHA256(secret, value))`, with standard padded base64;
//! in a cookie the whole thing is percent-encoded like JS `encodeURIComponent`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What `encodeURIComponent` leaves alone besides alphanumerics.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// JavaScript's `encodeURIComponent` (cookie values, and query values of mailed links).
pub(crate) fn encode_uri_component(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

pub(crate) const SESSION_TOKEN: &str = "session_token";
pub(crate) const SESSION_DATA: &str = "session_data";
pub(crate) const DONT_REMEMBER: &str = "dont_remember";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SameSite {
    Lax,
    Strict,
    None,
}

/// Names and attributes of every cookie we set, as Better-Auth's options shape them:
/// `advanced.cookiePrefix`, `useSecureCookies`, `defaultCookieAttributes.sameSite`,
/// `crossSubDomainCookies.domain`.
#[derive(Debug, Clone)]
pub(crate) struct CookiePolicy {
    pub(crate) prefix: String,
    /// The `__Secure-` name prefix and the `Secure` attribute.
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) domain: Option<String>,
}

/// Signs and reads Better-Auth cookies with the current secret.
pub(crate) struct CookieSigner {
    secret: SecretString,
    /// `[__Secure-]<prefix>.`
    name_prefix: String,
    /// `[; Domain=d]; Path=/; HttpOnly[; Secure]; SameSite=X`, after the optional `Max-Age`.
    attributes: String,
}

impl CookieSigner {
    pub(crate) fn new(secret: SecretString, policy: &CookiePolicy) -> Self {
        let name_prefix = format!(
            "{}{}.",
            if policy.secure { "__Secure-" } else { "" },
            policy.prefix
        );
        let mut attributes = String::new();
        if let Some(domain) = &policy.domain {
            attributes.push_str(&format!("; Domain={domain}"));
        }
        attributes.push_str("; Path=/; HttpOnly");
        // Browsers drop `SameSite=None` cookies that are not `Secure`; Better-Auth forces it
        // too, without the name prefix, which follows `secure` alone.
        if policy.secure || policy.same_site == SameSite::None {
            attributes.push_str("; Secure");
        }
        attributes.push_str(match policy.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
            SameSite::None => "; SameSite=None",
        });
        Self {
            secret,
            name_prefix,
            attributes,
        }
    }

    pub(crate) fn name(&self, short: &str) -> String {
        format!("{}{short}", self.name_prefix)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// `value.signature`, not yet percent-encoded (the `set-auth-token` header form).
    pub(crate) fn sign(&self, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        format!("{value}.{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Checks `value.signature` and returns the value. Like Better-Auth, the signature must be
    /// 44 characters ending in `=`; either base64 alphabet is accepted.
    pub(crate) fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, sig) = signed.rsplit_once('.')?;
        if sig.len() != 44 || !sig.ends_with('=') {
            return None;
        }
        let raw = STANDARD
            .decode(sig)
            .or_else(|_| URL_SAFE.decode(sig))
            .ok()?;
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        mac.verify_slice(&raw).ok()?;
        Some(value)
    }

    /// A `Set-Cookie` value. `max_age: None` makes a browser-session cookie.
    pub(crate) fn set_cookie(
        &self,
        short: &str,
        signed_value: &str,
        max_age: Option<i64>,
    ) -> String {
        let mut out = format!(
            "{}={}",
            self.name(short),
            encode_uri_component(signed_value)
        );
        if let Some(age) = max_age {
            out.push_str(&format!("; Max-Age={age}"));
        }
        out.push_str(&self.attributes);
        out
    }

    /// The three deletions Better-Auth sends on sign-out and on an invalid session.
    pub(crate) fn expire_all(&self) -> Vec<String> {
        [SESSION_TOKEN, SESSION_DATA, DONT_REMEMBER]
            .iter()
            .map(|short| self.set_cookie(short, "", Some(0)))
            .collect()
    }
}

/// The session token of an `Authorization` header: `None` when it is no bearer credential
/// (the cookie is looked at then), else the bearer's verdict, which the cookie cannot
/// overturn: `Some(Some(token))` for a valid signed token (percent-encoded or not, as
/// `set-auth-token` gives it), `Some(None)` for anything else. An unsigned (raw) token is
/// accepted, as Better-Auth does, only when `require_signed` is false.
pub(crate) fn bearer_token(
    authorization: &str,
    signer: &CookieSigner,
    require_signed: bool,
) -> Option<Option<String>> {
    let (scheme, value) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let value = value.trim();
    if !value.contains('.') {
        // A raw token: what list-sessions (with `all`) and response bodies show, so
        // accepting it lets one leaked listing open every session.
        let allowed = !require_signed && !value.is_empty();
        return Some(allowed.then(|| value.to_string()));
    }
    let decoded = if value.contains('%') {
        match percent_decode_str(value).decode_utf8() {
            Ok(decoded) => decoded.into_owned(),
            Err(_) => return Some(None),
        }
    } else {
        value.to_string()
    };
    Some(signer.verify(&decoded).map(str::to_string))
}

/// Finds a cookie in a `Cookie` header: first occurrence wins, quotes stripped, value
/// percent-decoded.
pub(crate) fn find_cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(v);
        percent_decode_str(v)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF-test-secret";

    fn policy(secure: bool) -> CookiePolicy {
        CookiePolicy {
            prefix: "better-auth".into(),
            secure,
            same_site: SameSite::Lax,
            domain: None,
        }
    }

    fn signer() -> CookieSigner {
        CookieSigner::new(SecretString::from(SECRET.to_string()), &policy(false))
    }

    #[test]
    fn spec_vector_session_cookie() {
        let s = signer();
        let signed = s.sign("GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw");
        assert_eq!(
            signed,
            "GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw.jbtBibwm1GqeLTDgWKBCL1cPAkSMzwJ+Ea0eMfC11/M="
        );
        assert_eq!(
            s.set_cookie(SESSION_TOKEN, &signed, Some(604800)),
            "better-auth.session_token=GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw.jbtBibwm1GqeLTDgWKBCL1cPAkSMzwJ%2BEa0eMfC11%2FM%3D; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(s.verify(&signed), Some("GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw"));
    }

    #[test]
    fn spec_vector_dont_remember() {
        let s = signer();
        let cookie = s.set_cookie(DONT_REMEMBER, &s.sign("true"), None);
        assert_eq!(
            cookie,
            "better-auth.dont_remember=true.h3rQQkcEDYPdPp42EgA3AN9Y0EjeWcN%2BQ59bMSzZLFE%3D; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn tampering_and_odd_shapes_are_rejected() {
        let s = signer();
        let signed = s.sign("GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw");
        assert_eq!(s.verify(&signed.replacen('G', "H", 1)), None);
        assert_eq!(s.verify("no-dot-here"), None);
        assert_eq!(s.verify("a.short="), None);
        let other = CookieSigner::new(SecretString::from("x".repeat(40)), &policy(false));
        assert_eq!(other.verify(&signed), None);
        // URL-safe alphabet is accepted too, as Better-Auth's bearer plugin does.
        let url_safe = signed.replace('+', "-").replace('/', "_");
        assert_eq!(
            s.verify(&url_safe),
            Some("GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw")
        );
    }

    #[test]
    fn cookie_header_parsing() {
        let h = "a=1; better-auth.session_token=\"x%2By.z%3D\"; better-auth.session_token=second";
        assert_eq!(
            find_cookie(h, "better-auth.session_token").as_deref(),
            Some("x+y.z=")
        );
        assert_eq!(find_cookie(h, "missing"), None);
    }

    #[test]
    fn secure_cookies_get_prefix_and_attribute() {
        let s = CookieSigner::new(SecretString::from(SECRET.to_string()), &policy(true));
        let c = s.set_cookie(SESSION_TOKEN, "v", Some(1));
        assert_eq!(
            c,
            "__Secure-better-auth.session_token=v; Max-Age=1; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
    }

    /// The option variants Better-Auth was observed with, attribute order included.
    #[test]
    fn better_auth_option_variants() {
        let secret = || SecretString::from(SECRET.to_string());
        let with = |f: fn(&mut CookiePolicy)| {
            let mut p = policy(false);
            f(&mut p);
            CookieSigner::new(secret(), &p).set_cookie(SESSION_TOKEN, "v", Some(604800))
        };
        assert_eq!(
            with(|p| p.prefix = "myapp".into()),
            "myapp.session_token=v; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            with(|p| p.domain = Some("example.test".into())),
            "better-auth.session_token=v; Max-Age=604800; Domain=example.test; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            with(|p| p.same_site = SameSite::None),
            "better-auth.session_token=v; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=None"
        );
        assert_eq!(
            with(|p| {
                p.secure = true;
                p.prefix = "myapp".into();
                p.domain = Some(".example.test".into());
                p.same_site = SameSite::None;
            }),
            "__Secure-myapp.session_token=v; Max-Age=604800; Domain=.example.test; Path=/; HttpOnly; Secure; SameSite=None"
        );
        assert_eq!(
            with(|p| p.same_site = SameSite::Strict),
            "better-auth.session_token=v; Max-Age=604800; Path=/; HttpOnly; SameSite=Strict"
        );
    }
}
