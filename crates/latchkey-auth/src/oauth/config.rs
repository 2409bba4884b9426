//! The providers of social sign-in, read once at start-up: `[providers.<id>]` tables in the
//! config file, `LATCHKEY_PROVIDER_<ID>_<KEY>` in the environment (the same keys, upper case),
//! and Better-Auth's documented shortcuts `GITHUB_CLIENT_ID`/`GITHUB_CLIENT_SECRET` and
//! `GOOGLE_CLIENT_ID`/`GOOGLE_CLIENT_SECRET`. Client secrets are secrets: the environment, a
//! `*_FILE` or a systemd credential, never the file.

use std::collections::BTreeMap;

use latchkey_core::config::{toml_scalar, ConfigError, Source, PROVIDERS_TABLE, PROVIDER_PREFIX};
use secrecy::SecretString;
use url::Url;

/// What kind of provider a table configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// OAuth2 plus GitHub's `/user` and `/user/emails`.
    Github,
    /// OpenID Connect at Google (discovery at the issuer, by default accounts.google.com).
    Google,
    /// Any OpenID Connect provider, by discovery.
    Oidc,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Post,
    Basic,
}

#[derive(Debug, Clone)]
pub(crate) struct ProviderConfig {
    /// The table's name: `/callback/<id>`, the `providerId` of its accounts.
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    /// Requested on every sign-in (the request's `scopes` are added).
    pub(crate) scopes: Vec<String>,
    pub(crate) client_auth: ClientAuth,
    /// GitHub: authorize and token under `<base_url>/login/oauth/`.
    pub(crate) base_url: Option<Url>,
    /// GitHub: `<api_url>/user` and `<api_url>/user/emails`.
    pub(crate) api_url: Option<Url>,
    /// OpenID Connect: discovery at `<issuer>/.well-known/openid-configuration`.
    pub(crate) issuer: Option<Url>,
}

/// Keys of a provider table (and, upper-cased, of `LATCHKEY_PROVIDER_<ID>_<KEY>`).
const KEYS: &[&str] = &[
    "type",
    "client_id",
    "client_secret",
    "scopes",
    "token_endpoint_auth",
    "base_url",
    "api_url",
    "issuer",
];

/// Every configured provider, by id.
pub(crate) fn load(src: &Source) -> Result<Vec<ProviderConfig>, ConfigError> {
    let mut raw: BTreeMap<String, BTreeMap<&'static str, String>> = BTreeMap::new();
    if let Some(tables) = src.file_table(PROVIDERS_TABLE)? {
        for (id, table) in tables {
            let setting = format!("providers.{id}");
            let toml::Value::Table(table) = table else {
                return Err(ConfigError::new(setting, "must be a table"));
            };
            check_id(id, &setting)?;
            let entry = raw.entry(id.clone()).or_default();
            for (key, value) in table {
                let name = format!("{setting}.{key}");
                let Some(known) = KEYS.iter().find(|k| **k == key.as_str()) else {
                    return Err(ConfigError::new(
                        name,
                        format!("unknown key (known: {})", KEYS.join(", ")),
                    ));
                };
                if *known == "client_secret" {
                    return Err(ConfigError::new(
                        name,
                        format!(
                            "secrets may not be set in the config file; use {PROVIDER_PREFIX}{}_CLIENT_SECRET \
                             (environment, *_FILE or a systemd credential)",
                            id.to_ascii_uppercase()
                        ),
                    ));
                }
                let value = toml_scalar(value)
                    .ok_or_else(|| ConfigError::new(name, "must be a string or a list"))?;
                entry.insert(known, value);
            }
        }
    }
    // The environment: LATCHKEY_PROVIDER_<ID>_<KEY>, the key found as a suffix.
    for name in src.env_names_with_prefix(PROVIDER_PREFIX) {
        let rest = &name[PROVIDER_PREFIX.len()..];
        let (rest, is_file) = match rest.strip_suffix("_FILE") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let found = KEYS.iter().find_map(|key| {
            let upper = format!("_{}", key.to_ascii_uppercase());
            rest.strip_suffix(&upper)
                .filter(|id| !id.is_empty())
                .map(|id| (id.to_ascii_lowercase(), *key))
        });
        let Some((id, key)) = found else {
            return Err(ConfigError::new(
                name,
                format!(
                    "unknown setting: expected {PROVIDER_PREFIX}<ID>_<KEY> with KEY one of {}",
                    KEYS.iter()
                        .map(|k| k.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if key == "client_secret" {
            raw.entry(id).or_default();
            continue;
        }
        if is_file {
            return Err(ConfigError::new(
                name,
                "only the client secret is read from a file (_CLIENT_SECRET_FILE); give this value itself",
            ));
        }
        if let Some(value) = src.get(&name)? {
            raw.entry(id).or_default().insert(key, value);
        }
    }
    // Better-Auth's shortcuts.
    for id in ["github", "google"] {
        let upper = id.to_ascii_uppercase();
        if let Some(client_id) = src.get(&format!("{upper}_CLIENT_ID"))? {
            raw.entry(id.to_string())
                .or_default()
                .entry("client_id")
                .or_insert(client_id);
        }
    }

    let mut providers = Vec::new();
    for (id, keys) in raw {
        providers.push(provider(src, &id, &keys)?);
    }
    Ok(providers)
}

/// Ids that name something else in the `account` table: `credential` is the password account
/// (a provider of that name would match password rows by user id).
const RESERVED_IDS: &[&str] = &["credential"];

fn check_id(id: &str, setting: &str) -> Result<(), ConfigError> {
    if RESERVED_IDS.contains(&id) {
        return Err(ConfigError::new(
            setting,
            format!("{id:?} is reserved (the password account's providerId); name the provider otherwise"),
        ));
    }
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            "a provider id is lower-case letters, digits and _ (it is a URL segment and an environment name)",
        ))
    }
}

fn provider(
    src: &Source,
    id: &str,
    keys: &BTreeMap<&'static str, String>,
) -> Result<ProviderConfig, ConfigError> {
    let upper = id.to_ascii_uppercase();
    let setting = |key: &str| format!("providers.{id}.{key}");
    check_id(id, &format!("providers.{id}"))?;
    let kind = match keys.get("type").map(String::as_str) {
        Some("github") => Kind::Github,
        Some("google") => Kind::Google,
        Some("oidc") => Kind::Oidc,
        None if id == "github" => Kind::Github,
        None if id == "google" => Kind::Google,
        None => {
            return Err(ConfigError::new(
                setting("type"),
                "is required for a provider not named github or google: github, google or oidc",
            ))
        }
        Some(other) => {
            return Err(ConfigError::new(
                setting("type"),
                format!("unknown type {other:?}: github, google or oidc"),
            ))
        }
    };
    let client_id = keys
        .get("client_id")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError::new(setting("client_id"), "is required"))?;
    let mut client_secret = src.secret(&format!("{PROVIDER_PREFIX}{upper}_CLIENT_SECRET"))?;
    if client_secret.is_none() && matches!(id, "github" | "google") {
        client_secret = src.secret(&format!("{upper}_CLIENT_SECRET"))?;
    }
    if client_secret.is_none() && kind != Kind::Oidc {
        return Err(ConfigError::new(
            format!("{PROVIDER_PREFIX}{upper}_CLIENT_SECRET"),
            "is required (the client secret the provider issued)",
        ));
    }
    let url_or = |key: &str, default: Option<&str>| -> Result<Option<Url>, ConfigError> {
        keys.get(key)
            .map(String::as_str)
            .or(default)
            .map(|raw| parse_url(raw).map_err(|p| ConfigError::new(setting(key), p)))
            .transpose()
    };
    let (base_url, api_url, issuer) = match kind {
        Kind::Github => {
            refuse(keys, &setting, "issuer", "github")?;
            let base = url_or("base_url", Some("https://github.com"))?;
            let api = url_or("api_url", Some("https://api.github.com"))?;
            (base, api, None)
        }
        Kind::Google | Kind::Oidc => {
            for key in ["base_url", "api_url"] {
                refuse(keys, &setting, key, "an OpenID Connect provider")?;
            }
            let default = (kind == Kind::Google).then_some("https://accounts.google.com");
            let issuer = url_or("issuer", default)?
                .ok_or_else(|| ConfigError::new(setting("issuer"), "is required"))?;
            (None, None, Some(issuer))
        }
    };
    let scopes = match keys.get("scopes") {
        Some(list) => list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => match kind {
            Kind::Github => vec!["read:user".into(), "user:email".into()],
            Kind::Google => vec!["email".into(), "profile".into(), "openid".into()],
            Kind::Oidc => vec!["openid".into(), "email".into(), "profile".into()],
        },
    };
    let client_auth = match keys.get("token_endpoint_auth").map(String::as_str) {
        None | Some("client_secret_post") => ClientAuth::Post,
        Some("client_secret_basic") => ClientAuth::Basic,
        Some(other) => {
            return Err(ConfigError::new(
                setting("token_endpoint_auth"),
                format!("unknown method {other:?}: client_secret_post or client_secret_basic"),
            ))
        }
    };
    Ok(ProviderConfig {
        id: id.to_string(),
        kind,
        client_id,
        client_secret,
        scopes,
        client_auth,
        base_url,
        api_url,
        issuer,
    })
}

fn refuse(
    keys: &BTreeMap<&'static str, String>,
    setting: &dyn Fn(&str) -> String,
    key: &str,
    what: &str,
) -> Result<(), ConfigError> {
    if keys.contains_key(key) {
        return Err(ConfigError::new(
            setting(key),
            format!("does not apply to {what}"),
        ));
    }
    Ok(())
}

/// An `https://` URL, or `http://` to a loopback host (local test peers); no query or fragment.
pub(crate) fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid URL {raw:?}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{raw:?} is plain http: use https (http only to a loopback address)"
            ))
        }
        _ => return Err(format!("{raw:?} is not an http(s) URL")),
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?}: expected https://host[/path]"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn source(env: &[(&str, &str)], toml: &str) -> Source {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Source::from_parts(env, toml.parse().unwrap(), None)
    }

    #[test]
    fn tables_environment_and_shortcuts() {
        let src = source(
            &[
                ("GITHUB_CLIENT_ID", "gh-id"),
                ("GITHUB_CLIENT_SECRET", "gh-secret"),
                ("LATCHKEY_PROVIDER_CORP_CLIENT_SECRET", "corp-secret"),
                ("LATCHKEY_PROVIDER_MY_IDP_TYPE", "oidc"),
                ("LATCHKEY_PROVIDER_MY_IDP_CLIENT_ID", "x"),
                (
                    "LATCHKEY_PROVIDER_MY_IDP_ISSUER",
                    "https://idp.example.com/realms/a",
                ),
            ],
            r#"
            [providers.corp]
            type = "oidc"
            issuer = "http://127.0.0.1:4000"
            client_id = "corp"
            scopes = ["openid", "email", "offline_access"]
            token_endpoint_auth = "client_secret_basic"
            "#,
        );
        let all = load(&src).unwrap();
        let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["corp", "github", "my_idp"]);
        let corp = &all[0];
        assert_eq!(corp.kind, Kind::Oidc);
        assert_eq!(corp.client_auth, ClientAuth::Basic);
        assert_eq!(corp.scopes, ["openid", "email", "offline_access"]);
        assert!(corp.client_secret.is_some());
        let gh = &all[1];
        assert_eq!(gh.kind, Kind::Github);
        assert_eq!(
            gh.base_url.as_ref().unwrap().as_str(),
            "https://github.com/"
        );
        assert_eq!(gh.scopes, ["read:user", "user:email"]);
        assert!(all[2].client_secret.is_none(), "a public OIDC client");
        src.reject_unknown().unwrap();
    }

    #[test]
    fn mistakes_name_the_setting() {
        let err = |env: &[(&str, &str)], toml: &str| load(&source(env, toml)).unwrap_err().setting;
        assert_eq!(
            err(&[], "[providers.corp]\nclient_id = \"x\""),
            "providers.corp.type"
        );
        assert_eq!(
            err(
                &[],
                "[providers.corp]\ntype = \"oidc\"\nclient_id = \"x\"\nclient_secret = \"s\""
            ),
            "providers.corp.client_secret"
        );
        assert_eq!(
            err(
                &[],
                "[providers.github]\nclient_id = \"x\"\ncolor = \"red\""
            ),
            "providers.github.color"
        );
        assert_eq!(
            err(&[], "[providers.github]\nclient_id = \"x\""),
            "LATCHKEY_PROVIDER_GITHUB_CLIENT_SECRET"
        );
        assert_eq!(
            err(
                &[("LATCHKEY_PROVIDER_CORP_CLIENT_SECRET", "s")],
                "[providers.corp]\ntype = \"oidc\"\nclient_id = \"x\"\nissuer = \"http://idp.example.com\""
            ),
            "providers.corp.issuer"
        );
        assert_eq!(
            err(&[("LATCHKEY_PROVIDER_CORP_COLOUR", "red")], ""),
            "LATCHKEY_PROVIDER_CORP_COLOUR"
        );
        assert_eq!(
            err(&[], "[providers.Corp]\ntype = \"oidc\""),
            "providers.Corp"
        );
        assert_eq!(err(&[], "providers = 3"), "providers");
        assert_eq!(
            err(&[], "[providers.credential]\ntype = \"oidc\""),
            "providers.credential"
        );
        assert_eq!(
            err(&[("LATCHKEY_PROVIDER_X_CLIENT_ID_FILE", "/tmp/id")], ""),
            "LATCHKEY_PROVIDER_X_CLIENT_ID_FILE"
        );
    }
}
