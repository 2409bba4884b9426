//! The proxy's request-target check and the upstream URI it builds.
//!
//! Input: `METHOD\nTARGET` (or just a target, with GET). A target the check lets through
//! must stay below the upstream's prefix however the upstream decodes and normalises it.
#![no_main]

use http::{Method, Uri};
use latchkey_api::config::Upstream;
use latchkey_api::fuzzing::{check_target, path_is_safe, upstream_uri};
use libfuzzer_sys::fuzz_target;

/// One layer of `%XX` decoding (a `%` without two hex digits stays).
fn decode(bytes: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(bytes).collect()
}

/// No layer of decoding holds a dot segment, a backslash, a control character or an
/// encoded separator; decoding ends within a few layers.
fn assert_safe_layers(path: &str) {
    let mut layer = path.as_bytes().to_vec();
    for _ in 0..8 {
        let text = String::from_utf8_lossy(&layer).to_string();
        assert!(
            !layer.contains(&b'\\'),
            "backslash in {text:?} (from {path:?})"
        );
        assert!(
            !layer.iter().any(|&b| b < 0x20 || b == 0x7f),
            "control character in {text:?} (from {path:?})"
        );
        let lower = text.to_ascii_lowercase();
        assert!(
            !lower.contains("%2f") && !lower.contains("%5c"),
            "encoded separator in {text:?} (from {path:?})"
        );
        for segment in layer.split(|&b| b == b'/') {
            let cut = segment.split(|&b| b == b';').next().unwrap();
            let trimmed: &[u8] = {
                let mut end = cut.len();
                while end > 0 && matches!(cut[end - 1], b' ' | b'\t') {
                    end -= 1;
                }
                &cut[..end]
            };
            assert!(
                trimmed.is_empty() || trimmed.iter().any(|&b| b != b'.'),
                "dot segment {:?} in {text:?} (from {path:?})",
                String::from_utf8_lossy(segment)
            );
        }
        // What a WHATWG URL parser (browsers, many frameworks) makes of this layer stays
        // below the prefix: it resolves `.`/`..` (also `%2e`), takes `\` for `/` and drops
        // tabs and newlines.
        if let Ok(url) = url::Url::parse(&format!("http://up.example/app{text}")) {
            assert!(
                url.path() == "/app" || url.path().starts_with("/app/"),
                "{text:?} (from {path:?}) normalises to {}",
                url.path()
            );
        }
        let next = decode(&layer);
        if next == layer {
            return;
        }
        layer = next;
    }
    panic!("{path:?} still decodes after 8 layers");
}

fuzz_target!(|data: &[u8]| {
    let (method, target) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"GET"[..], data),
    };
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let verdict = check_target(&method, &uri);
    let name = method.as_str();
    if ["CONNECT", "TRACE", "TRACK"]
        .iter()
        .any(|m| name.eq_ignore_ascii_case(m))
    {
        assert_eq!(verdict, Err("METHOD_NOT_ALLOWED"));
        return;
    }
    let path = uri.path();
    assert_eq!(verdict.is_ok(), path_is_safe(path));
    if verdict.is_err() {
        assert_eq!(verdict, Err("INVALID_PATH"));
        // Plain names are never refused.
        assert!(
            !(path.starts_with('/')
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_~".contains(&b))),
            "refused {path:?}"
        );
        return;
    }
    assert!(path.starts_with('/'));
    assert_safe_layers(path);

    // The upstream URI: same authority, the prefix, then the target verbatim.
    for prefix in ["", "/app", "/a/b"] {
        let upstream = Upstream {
            scheme: "http".into(),
            authority: "up.example:8080".into(),
            prefix: prefix.into(),
        };
        let built = upstream_uri(&upstream, &uri).expect("a checked target builds");
        assert_eq!(built.scheme_str(), Some("http"));
        assert_eq!(
            built.authority().map(|a| a.as_str()),
            Some("up.example:8080")
        );
        assert_eq!(built.path(), format!("{prefix}{path}"));
        assert_eq!(built.query(), uri.query());
    }
});
