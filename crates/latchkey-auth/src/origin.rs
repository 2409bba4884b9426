//! Origin and CSRF checks and callback URLs, as Better-Auth does them
//! (docs/compatibility.md#origins-and-csrf).

use latchkey_core::origins::{glob, OriginPatterns};

use crate::error::AuthError;
use crate::request::Req;

/// The trusted origins: the public URL's origin plus configured ones; `*` is a wildcard.
#[derive(Debug, Clone)]
pub(crate) struct Origins {
    patterns: OriginPatterns,
}

impl Origins {
    pub(crate) fn new(patterns: OriginPatterns) -> Self {
        Self { patterns }
    }

    /// Is this absolute URL (or bare origin) on a trusted origin? http(s) URLs compare by
    /// origin; a custom scheme (`myapp://`, for mobile apps) only when a trusted pattern names
    /// that scheme literally, so that `*` can never admit `javascript:` and friends.
    pub(crate) fn trusts_url(&self, candidate: &str) -> bool {
        let Ok(url) = url::Url::parse(candidate) else {
            return false;
        };
        match url.scheme() {
            "http" | "https" => self
                .patterns
                .allows_origin(&url.origin().ascii_serialization()),
            "javascript" | "data" | "vbscript" | "file" | "blob" => false,
            scheme => {
                let prefix = format!("{scheme}:");
                let target = format!("{scheme}://{}", url.host_str().unwrap_or(""));
                self.patterns
                    .iter()
                    .filter(|p| p.to_ascii_lowercase().starts_with(&prefix))
                    .any(|p| p.eq_ignore_ascii_case(&prefix) || glob(p, &target))
            }
        }
    }

    /// A callback URL is fine when it is a path on our own site or on a trusted origin.
    /// Browsers drop tabs and newlines from URLs and treat `\` as `/`, so `"/\t/evil.com"`
    /// would become `//evil.com`: any such character disqualifies the value.
    pub(crate) fn trusts_callback(&self, value: &str) -> bool {
        if value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return false;
        }
        if value.starts_with('/') {
            return !value.starts_with("//");
        }
        self.trusts_url(value)
    }

    /// Rule 1: a state-changing request that carries cookies must come from a trusted origin.
    pub(crate) fn check_cookie_request(&self, req: &Req) -> Result<(), AuthError> {
        if req.headers.contains_key("cookie") {
            self.require_trusted_origin(req)?;
        }
        Ok(())
    }

    /// Rule 3, sign-in and sign-up only: block login CSRF even without cookies.
    pub(crate) fn check_login_request(&self, req: &Req) -> Result<(), AuthError> {
        if req.headers.contains_key("cookie") {
            return self.require_trusted_origin(req);
        }
        let fetch_meta = ["sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"]
            .iter()
            .any(|h| req.headers.contains_key(*h));
        if fetch_meta {
            if req.header("sec-fetch-site") == Some("cross-site")
                && req.header("sec-fetch-mode") == Some("navigate")
            {
                return Err(AuthError::forbidden(
                    "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
                    "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
                ));
            }
            return self.require_trusted_origin(req);
        }
        if req.header("origin").is_some() || req.header("referer").is_some() {
            return self.require_trusted_origin(req);
        }
        Ok(())
    }

    fn require_trusted_origin(&self, req: &Req) -> Result<(), AuthError> {
        let origin = req.header("origin").or_else(|| req.header("referer"));
        match origin {
            None | Some("null") | Some("") => Err(AuthError::forbidden(
                "MISSING_OR_NULL_ORIGIN",
                "Missing or null Origin",
            )),
            Some(o) if self.trusts_url(o) => Ok(()),
            Some(_) => Err(AuthError::forbidden("INVALID_ORIGIN", "Invalid origin")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        Origins::new(OriginPatterns::new([
            "http://127.0.0.1:3000",
            "https://app.example.com/",
            "https://*.example.org",
            "myapp://",
        ]))
    }

    #[test]
    fn trusted_urls() {
        let o = origins();
        assert!(o.trusts_url("http://127.0.0.1:3000/some/page"));
        assert!(o.trusts_url("https://app.example.com"));
        assert!(o.trusts_url("https://a.example.org/x"));
        assert!(!o.trusts_url("https://example.org.evil.com"));
        assert!(!o.trusts_url("http://app.example.com"));
        assert!(!o.trusts_url("https://evil.com"));
        assert!(!o.trusts_url("not a url"));
    }

    #[test]
    fn callbacks() {
        let o = origins();
        for sneaky in [
            "/\t/evil.com",
            "/\n/evil.com",
            "/\\evil.com",
            "/ /evil.com",
            "\t//evil.com",
        ] {
            assert!(!o.trusts_callback(sneaky), "{sneaky:?}");
        }
        let wildcard = Origins::new(OriginPatterns::new([
            "http://127.0.0.1:3000",
            "*",
            "*.example.org",
        ]));
        assert!(!wildcard.trusts_callback("javascript://x.example.org/%0aalert(1)"));
        assert!(!wildcard.trusts_callback("data:text/html,hi"));
        assert!(o.trusts_callback("myapp://callback"));
        assert!(!o.trusts_callback("otherapp://callback"));
        assert!(o.trusts_callback("/dashboard"));
        assert!(!o.trusts_callback("//evil.com/x"));
        assert!(!o.trusts_callback("https://evil.com/cb"));
        assert!(o.trusts_callback("https://app.example.com/cb"));
    }
}
