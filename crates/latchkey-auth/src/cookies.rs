//! Better-Auth's signed cookies (spec §5) and bearer tokens (spec §8).
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

pub const SESSION_TOKEN: &str = "session_token";
pub const SESSION_DATA: &str = "session_data";
pub const DONT_REMEMBER: &str = "dont_remember";

/// Signs and reads Better-Auth cookies with the current secret.
pub struct CookieSigner {
    secret: SecretString,
    prefix: String,
    secure: bool,
}

impl CookieSigner {
    pub fn new(secret: SecretString, secure: bool) -> Self {
        let prefix = if secure {
            "__Secure-better-auth."
        } else {
            "better-auth."
        };
        Self {
            secret,
            prefix: prefix.to_string(),
            secure,
        }
    }

    pub fn name(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// `value.signature`, not yet percent-encoded (the `set-auth-token` header form).
    pub fn sign(&self, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        format!("{value}.{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Checks `value.signature` and returns the value. Like Better-Auth, the signature must be
    /// 44 characters ending in `=`; either base64 alphabet is accepted.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
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
    pub fn set_cookie(&self, short: &str, signed_value: &str, max_age: Option<i64>) -> String {
        let mut out = format!(
            "{}={}",
            self.name(short),
            utf8_percent_encode(signed_value, URI_COMPONENT)
        );
        if let Some(age) = max_age {
            out.push_str(&format!("; Max-Age={age}"));
        }
        out.push_str("; Path=/; HttpOnly");
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=Lax");
        out
    }

    /// The three deletions Better-Auth sends on sign-out and on an invalid session.
    pub fn expire_all(&self) -> Vec<String> {
        [SESSION_TOKEN, SESSION_DATA, DONT_REMEMBER]
            .iter()
            .map(|short| self.set_cookie(short, "", Some(0)))
            .collect()
    }
}

/// Finds a cookie in a `Cookie` header: first occurrence wins, quotes stripped, value
/// percent-decoded.
pub fn find_cookie(header: &str, name: &str) -> Option<String> {
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

    fn signer() -> CookieSigner {
        CookieSigner::new(SecretString::from(SECRET.to_string()), false)
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
        let other = CookieSigner::new(SecretString::from("x".repeat(40)), false);
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
        let s = CookieSigner::new(SecretString::from(SECRET.to_string()), true);
        let c = s.set_cookie(SESSION_TOKEN, "v", Some(1));
        assert!(c.starts_with("__Secure-better-auth.session_token=v; Max-Age=1; Path=/; HttpOnly; Secure; SameSite=Lax"));
    }
}
