//! Trusted-origin patterns: one list serves the auth daemon's origin check, its callback-URL
//! check and CORS in both daemons, so that "trusted" means the same thing everywhere
//! (docs/compatibility.md#origins-and-csrf).

/// Origins as configured: exact origins (`https://app.example.com`), wildcard patterns
/// (`https://*.example.com`, `*`) and custom schemes (`myapp://`). Compared ASCII
/// case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct OriginPatterns {
    patterns: Vec<String>,
}

impl OriginPatterns {
    /// Normalises each entry: trimmed, trailing `/` dropped, a plain http(s) URL reduced to
    /// its origin (so `https://app.example.com/` and `https://APP.example.com:443` are the
    /// same entry); empty entries are skipped.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = entries
            .into_iter()
            .filter_map(|entry| {
                let p = entry.as_ref().trim().trim_end_matches('/');
                if p.is_empty() {
                    return None;
                }
                let normal = url::Url::parse(p)
                    .ok()
                    .filter(|_| !p.contains('*'))
                    .map(|u| u.origin().ascii_serialization())
                    .filter(|o| o != "null")
                    .unwrap_or_else(|| p.to_string());
                Some(normal)
            })
            .collect();
        Self { patterns }
    }

    /// A comma-separated setting (`BETTER_AUTH_TRUSTED_ORIGINS`) as a list of entries.
    pub fn parse_list(value: &str) -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(String::as_str)
    }

    /// Does a serialised origin (`scheme://host[:port]`, as browsers send in `Origin`) match
    /// an entry? The opaque origin `null` never does, whatever the patterns say.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if origin.is_empty() || origin.eq_ignore_ascii_case("null") {
            return false;
        }
        self.patterns.iter().any(|p| glob(p, origin))
    }
}

/// `*` matches any run of characters; everything else literally (ASCII case-insensitive).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_normalised() {
        let o = OriginPatterns::new([
            " https://APP.example.com:443/ ",
            "",
            "https://*.example.org",
            "myapp://",
        ]);
        let list: Vec<&str> = o.iter().collect();
        assert_eq!(
            list,
            ["https://app.example.com", "https://*.example.org", "myapp:"]
        );
        assert!(o.allows_origin("https://app.example.com"));
        assert!(o.allows_origin("https://a.b.example.org"));
        assert!(!o.allows_origin("https://example.org"));
        assert!(!o.allows_origin("https://example.org.evil.com"));
        assert!(!o.allows_origin("http://app.example.com"));
        assert!(!OriginPatterns::new(["*"]).allows_origin("null"));
    }

    #[test]
    fn globbing() {
        assert!(glob("https://*.example.org", "https://a.b.example.org"));
        assert!(!glob("https://*.example.org", "https://example.org"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
    }

    #[test]
    fn lists() {
        assert_eq!(
            OriginPatterns::parse_list(" a, ,b ,"),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
