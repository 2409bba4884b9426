//! The cookie and bearer-token parsers: `find_cookie`, `CookieSigner::verify` and the
//! bearer decoding of `State::session_token`.
//!
//! Input: `NAME\nREST`. `NAME` is the cookie name looked for in the `Cookie` header `REST`;
//! `REST` is also taken as a signed value and as an `Authorization` header value.
#![no_main]

use latchkey_auth::fuzzing::{find_cookie, Cookies};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

const SECRET: &str = "fuzzing-secret-0123456789abcdefghijklmnop";

/// What JS `encodeURIComponent` leaves alone besides alphanumerics (how cookie values and
/// `set-auth-token` are encoded).
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The documented rule, written out independently: the first `name=value` pair (split at
/// `;`, key trimmed) whose value, trimmed and unquoted, percent-decodes to UTF-8.
fn model_find(header: &str, name: &str) -> Option<String> {
    for pair in header.split(';') {
        let Some(eq) = pair.find('=') else { continue };
        if pair[..eq].trim() != name {
            continue;
        }
        let mut v = pair[eq + 1..].trim();
        if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v = &v[1..v.len() - 1];
        }
        if let Ok(s) = percent_decode_str(v).decode_utf8() {
            return Some(s.into_owned());
        }
    }
    None
}

/// Both spellings of a signature Better-Auth accepts: standard and URL-safe base64.
fn url_safe(signed: &str) -> String {
    let (value, sig) = signed.rsplit_once('.').unwrap();
    format!("{value}.{}", sig.replace('+', "-").replace('/', "_"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cookies = Cookies::new(SECRET);
    let (name, rest) = text
        .split_once('\n')
        .unwrap_or(("better-auth.session_token", text));

    // find_cookie: never a value for a name that is not a key of the header.
    let found = find_cookie(rest, name);
    assert_eq!(
        found,
        model_find(rest, name),
        "find_cookie({rest:?}, {name:?})"
    );
    if found.is_some() {
        assert!(rest.contains(name.trim()));
        assert!(!name.contains(';') && !name.contains('='));
        assert_eq!(
            name,
            name.trim(),
            "a padded name cannot equal a trimmed key"
        );
    }

    // verify: Some only for exactly what sign() makes (either base64 alphabet).
    if let Some(value) = cookies.verify(rest) {
        let expected = cookies.sign(value);
        assert!(
            rest == expected || rest == url_safe(&expected),
            "verify accepted {rest:?}, sign gives {expected:?}"
        );
    }
    // sign/verify round trip, and a changed value never verifies with the old signature.
    let signed = cookies.sign(rest);
    assert_eq!(cookies.verify(&signed), Some(rest));
    assert_eq!(cookies.verify(&url_safe(&signed)), Some(rest));
    let (_, sig) = signed.rsplit_once('.').unwrap();
    assert_eq!(cookies.verify(&format!("{rest}x.{sig}")), None);
    // A signed cookie in a header comes back out.
    let encoded = percent_encoding::utf8_percent_encode(&signed, URI_COMPONENT).to_string();
    let header = format!("a=b; better-auth.session_token={encoded}; c=d");
    let back = find_cookie(&header, "better-auth.session_token").unwrap();
    assert_eq!(cookies.verify(&back), Some(rest));

    // The bearer decoding.
    for require_signed in [true, false] {
        let token = cookies.bearer_token(rest, require_signed);
        let scheme_is_bearer = rest
            .split_once(' ')
            .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"));
        assert_eq!(token.is_some(), scheme_is_bearer, "{rest:?}");
        let Some(Some(token)) = token else { continue };
        let credential = rest.split_once(' ').unwrap().1.trim();
        if credential.contains('.') {
            // A signed token: the credential (percent-decoded) is exactly sign(token).
            let decoded = percent_decode_str(credential).decode_utf8().unwrap();
            let expected = cookies.sign(&token);
            assert!(
                decoded == expected || decoded == url_safe(&expected),
                "bearer {credential:?} gave {token:?}"
            );
        } else {
            // A raw token: only when raw tokens are allowed, and then verbatim.
            assert!(!require_signed, "raw bearer token accepted: {credential:?}");
            assert_eq!(token, credential);
            assert!(!token.is_empty());
        }
    }
    // What `set-auth-token` hands out works as a bearer token, encoded or not.
    let bearer = cookies.bearer_token(&format!("Bearer {signed}"), true);
    if !rest.contains('%')
        || percent_decode_str(&signed).decode_utf8().ok().as_deref() == Some(&signed)
    {
        if rest.trim() == rest && !rest.is_empty() {
            assert_eq!(bearer, Some(Some(rest.to_string())), "{signed:?}");
        }
    }
    let bearer = cookies.bearer_token(&format!("bearer {encoded}"), true);
    if rest.trim() == rest && !rest.is_empty() {
        assert_eq!(bearer, Some(Some(rest.to_string())), "{encoded:?}");
    }
});
