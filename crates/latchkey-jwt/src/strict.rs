//! The parsing rules a token's parts must follow before any of their content is trusted:
//! canonical base64url and JSON objects without duplicate keys.
//!
//! Two parsers that disagree on a token are an attack surface: with `{"sub":"a","sub":"b"}`,
//! serde_json keeps the last value, other JSON libraries the first, and a gateway that checked
//! one value may let the backend act on the other. So a duplicate key anywhere in the header
//! or the claims (at any depth, after unescaping: `"\u0073ub"` is `"sub"`) makes the token
//! malformed, as does any base64url text that is not the one canonical encoding of its bytes
//! (padding, `+` or `/`, non-zero trailing bits).

use std::fmt;

use base64::Engine;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Decodes unpadded base64url, refusing every non-canonical form: `=` padding, the standard
/// alphabet's `+` and `/`, whitespace, and non-zero bits after the last full byte (so that
/// each byte string has exactly one accepted encoding).
pub(crate) fn b64url(part: &str) -> Option<Vec<u8>> {
    // base64 0.22's URL_SAFE_NO_PAD is exactly that (padding RequireNone, trailing bits
    // refused); the unit tests below pin it in case a dependency upgrade changes defaults.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
}

/// A JSON object with no duplicate key at any depth; `None` for anything else (not JSON, not
/// an object, trailing data, a duplicate key).
pub(crate) fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A `serde_json::Value` whose objects were checked for duplicate keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_base64url_decodes() {
        // "ab" is YWI; "ab?" is YWI_ in base64url and YWI/ in standard base64.
        assert_eq!(b64url("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(b64url("YWI_").as_deref(), Some(&b"ab?"[..]));
        assert_eq!(b64url("").as_deref(), Some(&b""[..]));
        assert_eq!(b64url("YQ").as_deref(), Some(&b"a"[..]));
        for bad in [
            "YWI=",  // padding
            "YWI/",  // standard alphabet
            "YW+_",  // standard alphabet
            "YWJ",   // same bytes as YWI, non-zero trailing bits
            "YR",    // "a" again, non-zero trailing bits
            "YQ==",  // "a", padded
            "YWI ",  // whitespace
            "Y WI",  // whitespace inside
            "YWI\n", // newline
            "Y",     // impossible length
            "YWI%3D",
        ] {
            assert_eq!(b64url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(object(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_some());
        for bad in [
            &br#"{"sub":"a","sub":"b"}"#[..],
            br#"{"sub":"a","\u0073ub":"b"}"#,
            br#"{"a":{"x":1,"x":1}}"#,
            br#"{"a":[{"x":1,"x":2}]}"#,
            br#"{"a":1} {"b":2}"#,
            br#"{"a":1}x"#,
            br#"[{"a":1}]"#,
            br#""str""#,
            br#"{"a":1"#,
            b"\xff",
            br#"{"a":"\ud800"}"#,
        ] {
            assert_eq!(object(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // Same key in different objects is fine; whitespace around the object too.
        let m = object(b" {\"a\":{\"k\":1},\"b\":{\"k\":2.5},\"c\":null} \n").unwrap();
        assert_eq!(m["b"]["k"], 2.5);
        assert_eq!(m["c"], Value::Null);
    }
}
