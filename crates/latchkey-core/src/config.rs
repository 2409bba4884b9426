//! Where settings come from, in order of precedence: systemd credentials and `*_FILE` files
//! (secrets only), the environment, then an optional TOML file.
//!
//! Each daemon reads its own typed config struct out of a [`Source`] once at start-up; a bad
//! value becomes a [`ConfigError`] naming the setting, printed as one line before exiting.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// A setting that could not be loaded. `Display` is the one line an operator sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The raw inputs of a configuration: environment variables, the TOML file's table and the
/// systemd credentials directory. Settings are named by their environment variable; the TOML
/// key is the same name in lower case (`LATCHKEY_LISTEN` → `latchkey_listen`), or the
/// shorter form without the `LATCHKEY_` prefix (`listen`).
#[derive(Default)]
pub struct Source {
    env: HashMap<String, String>,
    file: toml::Table,
    credentials_dir: Option<PathBuf>,
    /// Every name a daemon asked for, checked against [`KNOWN_SETTINGS`].
    asked: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// Every setting of either daemon. A deployment may give both daemons one environment or one
/// TOML file, so each accepts the other's settings; anything else under `LATCHKEY_` or in
/// the file is a typo, refused at start with the nearest known name (a mistyped
/// `jwt_expire_in = 60` used to be ignored silently).
pub const KNOWN_SETTINGS: &[&str] = &[
    "BETTER_AUTH_SECRET",
    "BETTER_AUTH_TRUSTED_ORIGINS",
    "BETTER_AUTH_URL",
    "DATABASE_URL",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "LATCHKEY_APP_NAME",
    "LATCHKEY_AUDIT_RETENTION",
    "LATCHKEY_AUTO_SIGN_IN_AFTER_VERIFICATION",
    "LATCHKEY_CHANGE_EMAIL",
    "LATCHKEY_CONFIG",
    "LATCHKEY_COOKIE_DOMAIN",
    "LATCHKEY_COOKIE_PREFIX",
    "LATCHKEY_COOKIE_SAME_SITE",
    "LATCHKEY_CORS",
    "LATCHKEY_CORS_ALLOW_HEADERS",
    "LATCHKEY_CORS_ORIGINS",
    "LATCHKEY_DB_IDLE_TIMEOUT",
    "LATCHKEY_DB_POOL_SIZE",
    "LATCHKEY_DB_STATEMENTS",
    "LATCHKEY_DB_TIMEOUT",
    "LATCHKEY_DELETE_TOKEN_EXPIRES_IN",
    "LATCHKEY_DELETE_USER",
    "LATCHKEY_ENCRYPT_OAUTH_TOKENS",
    "LATCHKEY_HASH_CONCURRENCY",
    "LATCHKEY_HASH_QUEUE_TIMEOUT",
    "LATCHKEY_HEADER_TIMEOUT",
    "LATCHKEY_IDLE_TIMEOUT",
    "LATCHKEY_JWKS_CA_FILE",
    "LATCHKEY_JWKS_REFRESH",
    "LATCHKEY_JWKS_URL",
    "LATCHKEY_JWT_ALG",
    "LATCHKEY_JWT_AUDIENCE",
    "LATCHKEY_JWT_CACHE_SIZE",
    "LATCHKEY_JWT_EXPIRES_IN",
    "LATCHKEY_JWT_ISSUER",
    "LATCHKEY_JWT_MAX_LIFETIME",
    "LATCHKEY_KEY_GRACE_PERIOD",
    "LATCHKEY_KEY_RELOAD_INTERVAL",
    "LATCHKEY_KEY_ROTATION_INTERVAL",
    "LATCHKEY_LISTEN",
    "LATCHKEY_LIST_SESSION_TOKENS",
    "LATCHKEY_LOG",
    "LATCHKEY_LOG_FORMAT",
    "LATCHKEY_MAIL_FROM",
    "LATCHKEY_MAIL_TEMPLATES",
    "LATCHKEY_MAIL_TRANSPORT",
    "LATCHKEY_MAX_BODY_BYTES",
    "LATCHKEY_MAX_CONNECTIONS",
    "LATCHKEY_MAX_CONNECTIONS_PER_IP",
    "LATCHKEY_METRICS_LISTEN",
    "LATCHKEY_PASSWORD_HASH",
    "LATCHKEY_RATE_LIMIT",
    "LATCHKEY_RATE_LIMIT_MAX",
    "LATCHKEY_RATE_LIMIT_WINDOW",
    "LATCHKEY_REQUIRE_EMAIL_VERIFICATION",
    "LATCHKEY_REQUIRE_SIGNED_BEARER",
    "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
    "LATCHKEY_RESET_TOKEN_EXPIRES_IN",
    "LATCHKEY_REVOCATION",
    "LATCHKEY_REVOCATION_CACHE_TTL",
    "LATCHKEY_REVOKE_SESSIONS_ON_PASSWORD_RESET",
    "LATCHKEY_SECURE_COOKIES",
    "LATCHKEY_SEND_VERIFICATION_ON_SIGN_IN",
    "LATCHKEY_SEND_VERIFICATION_ON_SIGN_UP",
    "LATCHKEY_SESSION_EXPIRES_IN",
    "LATCHKEY_SESSION_FRESH_AGE",
    "LATCHKEY_SESSION_UPDATE_AGE",
    "LATCHKEY_SHUTDOWN_DELAY",
    "LATCHKEY_SMTP_URL",
    "LATCHKEY_TLS_CERT",
    "LATCHKEY_TLS_KEY",
    "LATCHKEY_TRUSTED_PROXIES",
    "LATCHKEY_TRUSTED_PROVIDERS",
    "LATCHKEY_UPSTREAM",
    "LATCHKEY_UPSTREAM_CORS",
    "LATCHKEY_UPSTREAM_TIMEOUT",
    "LATCHKEY_VERIFICATION_TOKEN_EXPIRES_IN",
];

/// Per-provider settings of social sign-in: `LATCHKEY_PROVIDER_<ID>_<KEY>` in the environment
/// and `[providers.<id>]` tables in the file. Their names depend on the provider ids, so they
/// are not in [`KNOWN_SETTINGS`]; latchkey-auth checks them when it reads its providers.
pub const PROVIDER_PREFIX: &str = "LATCHKEY_PROVIDER_";
/// The TOML table of provider tables.
pub const PROVIDERS_TABLE: &str = "providers";

/// The setting a TOML key names: lower-case, with or without `latchkey_`.
fn setting_of_key(key: &str) -> String {
    let upper = key.trim().to_ascii_uppercase();
    if KNOWN_SETTINGS.contains(&upper.as_str()) || upper.starts_with("LATCHKEY_") {
        upper
    } else {
        let prefixed = format!("LATCHKEY_{upper}");
        if KNOWN_SETTINGS.contains(&prefixed.as_str()) {
            prefixed
        } else {
            upper
        }
    }
}

/// The known setting closest to a mistyped name, if one is close.
fn nearest(name: &str) -> Option<&'static str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let here = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(here + 1);
                prev = here;
            }
        }
        row[b.len()]
    };
    // Compared without the prefix: `jwt_expire_in` is one letter from LATCHKEY_JWT_EXPIRES_IN.
    let short = |n: &'static str| n.strip_prefix("LATCHKEY_").unwrap_or(n);
    let name = name.strip_prefix("LATCHKEY_").unwrap_or(name);
    KNOWN_SETTINGS
        .iter()
        .map(|k| (distance(name, short(k)), *k))
        .min()
        .filter(|(d, _)| *d <= (name.len() / 4).max(2))
        .map(|(_, k)| k)
}

fn unknown(setting: String, place: &str) -> ConfigError {
    let hint = match nearest(&setting_of_key(&setting)) {
        Some(k) => format!("; did you mean {k}?"),
        None => String::new(),
    };
    ConfigError::new(setting, format!("unknown setting {place}{hint}"))
}

impl fmt::Debug for Source {
    // Values may be secrets; only the names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.env.keys().collect();
        keys.sort();
        f.debug_struct("Source")
            .field("env", &keys)
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .field("credentials_dir", &self.credentials_dir)
            .finish()
    }
}

/// Settings that only make sense as secrets: refused in the TOML file (under any spelling),
/// which tends to end up world-readable (in the Nix store, say).
const SECRET_SETTINGS: &[&str] = &[
    "BETTER_AUTH_SECRET",
    "DATABASE_URL",
    "LATCHKEY_SMTP_URL",
    "GITHUB_CLIENT_SECRET",
    "GOOGLE_CLIENT_SECRET",
];

impl Source {
    /// Reads the process environment and, if given (`--config` or `LATCHKEY_CONFIG`), a TOML file.
    pub fn from_process(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let path = config_file
            .map(Path::to_path_buf)
            .or_else(|| env.get("LATCHKEY_CONFIG").map(PathBuf::from));
        let credentials_dir = env.get("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        let mut source = Source::from_parts(env, toml::Table::new(), credentials_dir);
        if let Some(path) = path {
            source.file = read_toml(&path)?;
            for key in source.file.keys() {
                // `latchkey_better_auth_secret` is refused like `better_auth_secret`.
                let upper = key.to_ascii_uppercase();
                let short = upper
                    .strip_prefix("LATCHKEY_")
                    .unwrap_or(&upper)
                    .to_string();
                let prefixed = format!("LATCHKEY_{short}");
                if SECRET_SETTINGS.contains(&short.as_str())
                    || SECRET_SETTINGS.contains(&prefixed.as_str())
                {
                    let upper = if SECRET_SETTINGS.contains(&short.as_str()) {
                        short
                    } else {
                        prefixed
                    };
                    return Err(ConfigError::new(
                        upper,
                        "secrets may not be set in the config file; use the environment, \
                         a *_FILE path or a systemd credential",
                    ));
                }
            }
        }
        Ok(source)
    }

    pub fn from_parts(
        env: HashMap<String, String>,
        file: toml::Table,
        credentials_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            env,
            file,
            credentials_dir,
            asked: Default::default(),
        }
    }

    fn ask(&self, name: &str) {
        if let Ok(mut asked) = self.asked.lock() {
            asked.insert(name.to_string());
        }
    }

    /// Refuses what no daemon reads: `LATCHKEY_*` variables and TOML keys that are not
    /// settings (typos), naming the nearest known one. Called once a daemon has read all of
    /// its settings; a name it asked for that is missing from [`KNOWN_SETTINGS`] is reported
    /// too, so that the list cannot fall behind the code.
    pub fn reject_unknown(&self) -> Result<(), ConfigError> {
        if let Ok(asked) = self.asked.lock() {
            if let Some(name) = asked
                .iter()
                .find(|n| !KNOWN_SETTINGS.contains(&n.as_str()) && !n.starts_with(PROVIDER_PREFIX))
            {
                return Err(ConfigError::new(
                    name.clone(),
                    "read but missing from latchkey_core::config::KNOWN_SETTINGS (a bug)",
                ));
            }
        }
        let mut env: Vec<&String> = self
            .env
            .keys()
            .filter(|k| k.starts_with("LATCHKEY_"))
            .filter(|k| !KNOWN_SETTINGS.contains(&k.as_str()))
            .filter(|k| !k.starts_with(PROVIDER_PREFIX))
            // `<SECRET>_FILE` names the file a secret is read from.
            .filter(|k| {
                k.strip_suffix("_FILE")
                    .is_none_or(|name| !SECRET_SETTINGS.contains(&name))
            })
            .collect();
        env.sort();
        if let Some(name) = env.first() {
            return Err(unknown((*name).clone(), "in the environment"));
        }
        for key in self.file.keys() {
            // Settings are read under lower-case keys only: `BETTER_AUTH_URL = ...` in the
            // file would be ignored, so it is refused instead.
            if *key != key.to_ascii_lowercase() {
                return Err(ConfigError::new(
                    key.clone(),
                    format!(
                        "config file keys are lower case: write {}",
                        key.to_ascii_lowercase()
                    ),
                ));
            }
            if key == PROVIDERS_TABLE {
                continue;
            }
            if !KNOWN_SETTINGS.contains(&setting_of_key(key).as_str()) {
                return Err(unknown(key.clone(), "in the config file"));
            }
        }
        Ok(())
    }

    /// The names of the environment variables that start with `prefix`, sorted.
    pub fn env_names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .env
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// A table of the config file (`[providers]`), if there is one.
    pub fn file_table(&self, key: &str) -> Result<Option<&toml::Table>, ConfigError> {
        match self.file.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err(ConfigError::new(key, "must be a table")),
        }
    }

    /// A plain (non-secret) setting: environment first, then the config file.
    pub fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.ask(name);
        if let Some(v) = self.env.get(name) {
            return Ok(Some(v.clone()));
        }
        let lower = name.to_ascii_lowercase();
        let short = lower.strip_prefix("latchkey_").unwrap_or(&lower);
        for key in [lower.as_str(), short] {
            if let Some(value) = self.file.get(key) {
                return toml_scalar(value)
                    .map(Some)
                    .ok_or_else(|| ConfigError::new(name, "must be a string, number or boolean"));
            }
        }
        Ok(None)
    }

    /// A setting parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name)? {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::new(name, format!("invalid value {raw:?}: {e}"))),
        }
    }

    /// A duration in whole seconds.
    pub fn seconds_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let secs = self.parse_or::<u64>(name, default.as_secs())?;
        Ok(Duration::from_secs(secs))
    }

    /// A duration in whole seconds, at most `max` (so that date arithmetic cannot overflow).
    pub fn seconds_within(
        &self,
        name: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.seconds_or(name, default)?;
        if value > max {
            return Err(ConfigError::new(
                name,
                format!("must be at most {} seconds", max.as_secs()),
            ));
        }
        Ok(value)
    }

    /// Like [`Source::seconds_within`], and at least one second.
    pub fn positive_seconds_within(
        &self,
        name: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.seconds_within(name, default, max)?;
        if value.is_zero() {
            return Err(ConfigError::new(name, "must be at least 1 second"));
        }
        Ok(value)
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name)?.as_deref().map(str::trim) {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("invalid value {other:?}: expected true or false"),
            )),
        }
    }

    pub fn listen_or(&self, name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.get(name)?.unwrap_or_else(|| default.to_string());
        raw.trim().parse().map_err(|_| {
            ConfigError::new(
                name,
                format!("invalid listen address {raw:?}: expected IP:PORT"),
            )
        })
    }

    /// A secret, from the first of: `$CREDENTIALS_DIRECTORY/<NAME>`, the file named by
    /// `<NAME>_FILE`, the variable `<NAME>` itself. Trailing newlines of files are dropped.
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, ConfigError> {
        self.ask(name);
        if let Some(dir) = &self.credentials_dir {
            let path = dir.join(name);
            if path.exists() {
                return read_secret_file(name, &path).map(Some);
            }
        }
        let file_var = format!("{name}_FILE");
        if let Some(path) = self.env.get(&file_var) {
            return read_secret_file(&file_var, Path::new(path)).map(Some);
        }
        Ok(self
            .env
            .get(name)
            .map(|v| SecretString::from(v.trim_end_matches(['\r', '\n']).to_string())))
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("LATCHKEY_CONFIG", format!("{}: {e}", path.display())))?;
    text.parse::<toml::Table>().map_err(|e| {
        let msg = e.message().to_string();
        ConfigError::new("LATCHKEY_CONFIG", format!("{}: {msg}", path.display()))
    })
}

fn read_secret_file(setting: &str, path: &Path) -> Result<SecretString, ConfigError> {
    // The error names the file, never its contents.
    let mut text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            setting,
            format!("cannot read secret file {}: {}", path.display(), e.kind()),
        )
    })?;
    let trimmed = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(trimmed);
    Ok(SecretString::from(text))
}

/// A TOML value as the string a setting is parsed from (arrays comma-joined); `None` for tables.
pub fn toml_scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_scalar)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

/// Optional rustls listener settings, shared by both daemons.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn from_source(src: &Source) -> Result<Option<Self>, ConfigError> {
        let cert = src.get("LATCHKEY_TLS_CERT")?;
        let key = src.get("LATCHKEY_TLS_KEY")?;
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            })),
            (Some(_), None) => Err(ConfigError::new(
                "LATCHKEY_TLS_KEY",
                "must be set together with LATCHKEY_TLS_CERT",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "LATCHKEY_TLS_CERT",
                "must be set together with LATCHKEY_TLS_KEY",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn src(env: &[(&str, &str)], file: &str) -> Source {
        Source::from_parts(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            file.parse().unwrap(),
            None,
        )
    }

    #[test]
    fn typos_are_refused_with_the_nearest_name() {
        let e = src(&[], "jwt_expire_in = 60").reject_unknown().unwrap_err();
        assert_eq!(e.setting, "jwt_expire_in");
        assert!(
            e.to_string()
                .contains("did you mean LATCHKEY_JWT_EXPIRES_IN?"),
            "{e}"
        );
        let e = src(&[("LATCHKEY_SESION_EXPIRES_IN", "1")], "")
            .reject_unknown()
            .unwrap_err();
        assert!(e.to_string().contains("LATCHKEY_SESSION_EXPIRES_IN"), "{e}");
        let e = src(&[("LATCHKEY_WHATEVER_ELSE_ENTIRELY", "1")], "")
            .reject_unknown()
            .unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        // Known ones, in every spelling, and variables of other programs are fine.
        src(
            &[
                ("LATCHKEY_LOG", "info"),
                ("HOME", "/root"),
                ("RUST_LOG", "x"),
            ],
            "listen = \"127.0.0.1:1\"\nlatchkey_cors = false\nbetter_auth_url = \"http://a\"",
        )
        .reject_unknown()
        .unwrap();
        let e = src(&[], "BETTER_AUTH_URL = \"http://a\"")
            .reject_unknown()
            .unwrap_err();
        assert!(e.to_string().contains("write better_auth_url"), "{e}");
        // A name a daemon reads must be in the list.
        let s = src(&[], "");
        let _ = s.get("LATCHKEY_NOT_LISTED");
        assert!(s.reject_unknown().is_err());
    }

    #[test]
    fn environment_overrides_file_and_short_keys_work() {
        let s = src(
            &[("LATCHKEY_LISTEN", "127.0.0.1:1")],
            "listen = \"127.0.0.1:2\"\nlatchkey_workers = 3",
        );
        assert_eq!(
            s.get("LATCHKEY_LISTEN").unwrap().as_deref(),
            Some("127.0.0.1:1")
        );
        assert_eq!(s.get("LATCHKEY_WORKERS").unwrap().as_deref(), Some("3"));
        let s = src(&[], "listen = \"127.0.0.1:2\"");
        assert_eq!(
            s.listen_or("LATCHKEY_LISTEN", "127.0.0.1:3")
                .unwrap()
                .port(),
            2
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let s = src(&[("LATCHKEY_LISTEN", "nonsense")], "");
        let err = s.listen_or("LATCHKEY_LISTEN", "127.0.0.1:3").unwrap_err();
        assert_eq!(err.setting, "LATCHKEY_LISTEN");
        assert!(err
            .to_string()
            .starts_with("configuration error: LATCHKEY_LISTEN:"));
        let s = src(&[("X", "maybe")], "");
        assert_eq!(s.bool_or("X", false).unwrap_err().setting, "X");
    }

    #[test]
    fn secret_from_file_is_trimmed_and_credentials_win() {
        let dir = std::env::temp_dir().join(format!("latchkey-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file-secret"), "from-file\n").unwrap();
        std::fs::write(dir.join("S"), "from-credential\n").unwrap();
        let env: HashMap<String, String> = [
            (
                "S_FILE".to_string(),
                dir.join("file-secret").display().to_string(),
            ),
            ("S".to_string(), "from-env".to_string()),
        ]
        .into();
        let s = Source::from_parts(env.clone(), toml::Table::new(), None);
        assert_eq!(s.secret("S").unwrap().unwrap().expose_secret(), "from-file");
        let s = Source::from_parts(env, toml::Table::new(), Some(dir.clone()));
        assert_eq!(
            s.secret("S").unwrap().unwrap().expose_secret(),
            "from-credential"
        );
        let missing = Source::from_parts(
            [("S_FILE".to_string(), "/nonexistent/x".to_string())].into(),
            toml::Table::new(),
            None,
        );
        let err = missing.secret("S").unwrap_err();
        assert_eq!(err.setting, "S_FILE");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_shows_no_values() {
        let s = src(&[("BETTER_AUTH_SECRET", "hunter2-hunter2")], "");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
