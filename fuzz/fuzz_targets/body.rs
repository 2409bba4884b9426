//! The request-body extractor: JSON and form bodies through `Req::body` into every typed
//! body, with Better-Auth's validation messages.
//!
//! Input: one byte choosing the endpoint and the `Content-Type`, then the body.
#![no_main]

use latchkey_auth::fuzzing::{
    looks_like_email, parse_body, parse_every_field, BodyError, Endpoint, EVERY_FIELD_NAMES,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some(" Application/JSON ;x=y"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    None,
    Some("multipart/form-data; boundary=x"),
    Some(""),
];

/// The media type as the extractor compares it.
fn media_type(ct: Option<&str>) -> Option<String> {
    ct.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// The body as an object, parsed independently: `Err(())` where the extractor must refuse
/// before looking at fields.
fn model_object(ct: Option<&str>, body: &[u8], forms: bool) -> Result<Map<String, Value>, ()> {
    if body.is_empty() && ct.is_none() {
        return Ok(Map::new());
    }
    match media_type(ct).as_deref() {
        Some("application/json") => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Map::new());
            }
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(()),
            }
        }
        Some("application/x-www-form-urlencoded") if forms => {
            let mut m = Map::new();
            for (k, v) in url::form_urlencoded::parse(body) {
                let v = match &*v {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    s => Value::String(s.to_string()),
                };
                m.insert(k.into_owned(), v);
            }
            Ok(m)
        }
        _ => Err(()),
    }
}

/// No body value may come back in an error message (nothing of a password, above all). The
/// messages' own text has no digits, so a value with one cannot be there by accident.
fn assert_no_value_echoed(err: &BodyError, map: &Map<String, Value>) {
    for value in map.values() {
        if let Value::String(s) = value {
            if s.len() >= 6 && s.bytes().any(|b| b.is_ascii_digit()) {
                assert!(!err.message.contains(s.as_str()), "{:?} echoed", s);
            }
        }
    }
}

fn assert_error_shape(err: &BodyError, ct: Option<&str>, body: &[u8], forms: bool) {
    let object = model_object(ct, body, forms);
    match (err.status, err.code) {
        (415, Some("UNSUPPORTED_MEDIA_TYPE")) => {
            let mt = media_type(ct);
            assert!(!(body.is_empty() && ct.is_none()));
            assert_ne!(mt.as_deref(), Some("application/json"));
            if forms {
                assert_ne!(mt.as_deref(), Some("application/x-www-form-urlencoded"));
            }
        }
        (400, Some("BAD_REQUEST")) => {
            assert_eq!(err.message, "Invalid JSON in request body");
            assert_eq!(media_type(ct).as_deref(), Some("application/json"));
            assert!(serde_json::from_slice::<Value>(body).is_err());
        }
        (400, Some("VALIDATION_ERROR")) => {
            for issue in err.message.split("; ") {
                assert!(
                    issue.starts_with("[body.") || issue.starts_with("[body]"),
                    "issue {issue:?}"
                );
            }
            if let Ok(map) = &object {
                assert_no_value_echoed(err, map);
            }
        }
        other => panic!("unexpected refusal {other:?}: {err:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let endpoint = Endpoint::ALL[selector as usize % Endpoint::ALL.len()];
    let ct = CONTENT_TYPES[(selector as usize / Endpoint::ALL.len()) % CONTENT_TYPES.len()];

    // Every real typed body: a client error of the right shape, never anything else.
    if let Err(err) = parse_body(endpoint, ct, body) {
        assert_error_shape(&err, ct, body, endpoint.takes_forms());
    }

    // Every accessor of `Fields`, against the rules written out.
    for forms in [false, true] {
        let result = parse_every_field(ct, body, forms);
        let object = model_object(ct, body, forms);
        let map = match (&result, object) {
            (Err(err), Err(())) => {
                assert_error_shape(err, ct, body, forms);
                if err.code == Some("VALIDATION_ERROR") {
                    // JSON that is no object: the one body-level issue.
                    assert!(err
                        .message
                        .starts_with("[body] Invalid input: expected object"));
                }
                continue;
            }
            (_, Err(())) => panic!("accepted a body that is no object: {result:?}"),
            (_, Ok(map)) => map,
        };
        let string = |k: &str| match map.get(k) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let stored_ok = |s: &str| !s.contains('\0');
        let optional_ok = |k: &str| match map.get(k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => stored_ok(s),
            Some(_) => false,
        };
        let valid = string("name").is_some_and(stored_ok)
            && string("email").is_some_and(looks_like_email)
            && string("password").is_some()
            && optional_ok("image")
            && optional_ok("callbackURL")
            && matches!(
                map.get("rememberMe"),
                None | Some(Value::Null | Value::Bool(_))
            );
        match result {
            Ok(fields) => {
                assert!(valid, "accepted {map:?}");
                assert_eq!(Some(fields.name.as_str()), string("name"));
                assert_eq!(Some(fields.email.as_str()), string("email"));
                assert_eq!(Some(fields.password.as_str()), string("password"));
                assert_eq!(fields.image.as_deref(), string("image"));
                let callback = match map.get("callbackURL") {
                    None => None,
                    Some(Value::Null) => Some(None),
                    Some(_) => Some(string("callbackURL")),
                };
                assert_eq!(fields.callback.as_ref().map(|c| c.as_deref()), callback);
                assert_eq!(
                    fields.remember,
                    map.get("rememberMe").and_then(Value::as_bool)
                );
                assert_eq!(fields.has_token, map.contains_key("token"));
            }
            Err(err) => {
                assert!(!valid, "refused {map:?}: {err:?}");
                assert_eq!((err.status, err.code), (400, Some("VALIDATION_ERROR")));
                assert_error_shape(&err, ct, body, forms);
                // Each issue names a field that was read.
                for issue in err.message.split("; ") {
                    let name = issue
                        .strip_prefix("[body.")
                        .and_then(|r| r.split_once(']'))
                        .map(|(n, _)| n)
                        .unwrap_or_else(|| panic!("issue {issue:?}"));
                    assert!(EVERY_FIELD_NAMES.contains(&name), "{name}");
                }
            }
        }
    }
});
