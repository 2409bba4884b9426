//! Start-up, configuration, secrets, migrations and shutdown of the daemons.

use latchkey_e2e::stack::{Api, Auth, PASSWORD};
use latchkey_e2e::{cluster, free_port, run_tool, Daemon, TestDb};
use serde_json::json;

fn auth_env(db: &TestDb, secret: &str) -> Vec<(String, String)> {
    Auth::spec(db, secret, free_port()).env
}

fn all_output(out: &latchkey_e2e::ToolOutput) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn short_secret_is_refused_with_one_line() {
    let db = cluster().create_db();
    let secret = "too-short-secret-x"; // 18 chars
    let mut env = auth_env(&db, secret);
    env.push((
        "LATCHKEY_LISTEN".into(),
        format!("127.0.0.1:{}", free_port()),
    ));
    for args in [&[][..], &["serve"][..], &["check-config"][..]] {
        let out = run_tool("latchkey-auth", args, &env);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        let text = all_output(&out);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{text}");
        assert!(lines[0].contains("BETTER_AUTH_SECRET"), "{args:?}: {text}");
        assert!(
            !text.contains(secret),
            "{args:?}: the secret was printed: {text}"
        );
    }
    // Missing altogether.
    env.retain(|(k, _)| k != "BETTER_AUTH_SECRET");
    let out = run_tool("latchkey-auth", &["serve"], &env);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(all_output(&out).contains("BETTER_AUTH_SECRET"), "{out:?}");
}

#[test]
fn check_config_accepts_a_good_configuration() {
    let db = cluster().create_db();
    let out = run_tool(
        "latchkey-auth",
        &["check-config"],
        &auth_env(&db, &"s".repeat(40)),
    );
    out.assert_success();
}

#[test]
fn statement_mode_is_checked_at_start_up() {
    let db = cluster().create_db();
    let mut env = auth_env(&db, &"s".repeat(40));
    env.push(("LATCHKEY_DB_STATEMENTS".into(), "prepared".into()));
    run_tool("latchkey-auth", &["check-config"], &env).assert_success();
    env.retain(|(k, _)| k != "LATCHKEY_DB_STATEMENTS");
    env.push(("LATCHKEY_DB_STATEMENTS".into(), "named".into()));
    let out = run_tool("latchkey-auth", &["check-config"], &env);
    assert_eq!(out.code(), Some(2), "{out:?}");
    let text = all_output(&out);
    assert!(
        text.contains("LATCHKEY_DB_STATEMENTS") && text.contains("unnamed or prepared"),
        "{text}"
    );
}

#[test]
fn secret_from_a_file_is_used() {
    let db = cluster().create_db();
    let secret = format!("file-{}", latchkey_e2e::random_string(40));
    let path = std::env::temp_dir().join(format!(
        "latchkey-e2e-secret-{}",
        latchkey_e2e::random_string(8)
    ));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    let mut spec = Auth::spec(&db, "unused", free_port());
    spec.remove_env("BETTER_AUTH_SECRET");
    spec.set_env("BETTER_AUTH_SECRET_FILE", path.display().to_string());
    let daemon = Daemon::start(spec);
    let auth = Auth {
        daemon,
        db,
        secret: secret.clone(),
    };
    let s = auth.new_user();
    let (token, sig) = s.bearer.rsplit_once('.').unwrap();
    assert_eq!(sig, latchkey_e2e::jwt::cookie_signature(&secret, token));
    drop(auth);
    std::fs::remove_file(path).unwrap();
}

/// Runs the usual flows with both daemons at `LATCHKEY_LOG=<level>` and returns everything
/// they (and the tools) printed, the secret, and the session token used.
fn exercise_and_collect_logs(level: &str) -> (Vec<(&'static str, String)>, String, String) {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_LOG", level));
    let api = Api::start_with(&auth.url(), |s| s.env("LATCHKEY_LOG", level));
    let s = auth.new_user();
    // Every step must really happen, or the logs checked below never saw the secrets.
    auth.sign_in_resp(&s.email(), "a wrong password")
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    auth.sign_in(&s.email(), PASSWORD);
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .cookies(&s.jar)
        .send();
    r.expect(200);
    assert!(r.json()["session"].is_object());
    let token = auth.jwt(&s);
    api.me(&token).expect(200);
    auth.client()
        .post("/api/auth/change-password")
        .bearer(&s.bearer)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "new password 123"}))
        .send()
        .expect(200);
    let rotate = auth.tool(&["keys", "rotate"]);
    rotate.assert_success();
    let check = auth.tool(&["check-config"]);
    check.assert_success();
    let migrate = auth.tool(&["migrate"]);
    migrate.assert_success();
    assert!(
        !auth.daemon.log().is_empty(),
        "the auth daemon logged nothing"
    );
    let logs = vec![
        ("auth log", auth.daemon.log()),
        ("api log", api.daemon.log()),
        ("keys rotate", all_output(&rotate)),
        ("check-config", all_output(&check)),
        ("migrate", all_output(&migrate)),
        ("postgres log", cluster().log()),
    ];
    (logs, auth.secret.clone(), s.token.clone())
}

#[test]
fn the_secret_and_passwords_never_reach_the_logs_even_at_debug() {
    let (logs, secret, _) = exercise_and_collect_logs("debug");
    for (what, text) in &logs {
        assert!(
            !text.contains(&secret),
            "{what} contains BETTER_AUTH_SECRET"
        );
        assert!(!text.contains(PASSWORD), "{what} contains a password");
        assert!(
            !text.contains("new password 123"),
            "{what} contains a password"
        );
    }
}

#[test]
fn session_tokens_never_reach_the_logs_at_info() {
    let (logs, secret, token) = exercise_and_collect_logs("info");
    for (what, text) in &logs {
        assert!(
            !text.contains(&secret),
            "{what} contains BETTER_AUTH_SECRET"
        );
        assert!(!text.contains(&token), "{what} contains a session token");
    }
}

#[test]
fn session_tokens_never_reach_the_logs_even_at_debug() {
    let (logs, _, token) = exercise_and_collect_logs("debug");
    for (what, text) in &logs {
        if let Some(i) = text.find(&token) {
            let line = text[..i].rsplit('\n').next().unwrap_or("");
            panic!("{what} contains a session token, in a line starting: {line:.160}");
        }
    }
}

const TABLES: &str = "('user','session','account','verification','jwks')";

/// Columns, constraints and indexes of Better-Auth's five tables, as text.
fn schema_snapshot(db: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    for row in db.query(
        &format!(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
             coalesce(column_default, '')::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name IN {TABLES} ORDER BY 1, ordinal_position"
        ),
        &[],
    ) {
        let cols: Vec<String> = (0..5).map(|i| row.get::<_, String>(i)).collect();
        out.push(format!("column {}", cols.join(" ")));
    }
    for row in db.query(
        "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid::regclass::text IN ('\"user\"','session','account','verification','jwks') \
         ORDER BY 1, 2",
        &[],
    ) {
        out.push(format!("constraint {} {} {}", row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2)));
    }
    for row in db.query(
        &format!("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN {TABLES} ORDER BY indexname"),
        &[],
    ) {
        out.push(format!("index {}", row.get::<_, String>(0)));
    }
    out
}

#[test]
fn migrate_is_idempotent() {
    let db = cluster().create_db();
    let env = auth_env(&db, &"m".repeat(40));
    run_tool("latchkey-auth", &["migrate"], &env).assert_success();
    let first = schema_snapshot(&db);
    for t in ["user", "session", "account", "verification", "jwks"] {
        assert!(
            first.iter().any(|l| l.starts_with(&format!("column {t} "))),
            "table {t} missing: {first:#?}"
        );
    }
    run_tool("latchkey-auth", &["migrate"], &env).assert_success();
    assert_eq!(first, schema_snapshot(&db));
}

/// docs/compatibility.md#schema: the DDL exactly as Better-Auth's migrator emitted it.
const BETTER_AUTH_DDL: &str = r#"
create table "user" ("id" text not null primary key, "name" text not null, "email" text not null unique, "emailVerified" boolean not null, "image" text, "createdAt" timestamptz default CURRENT_TIMESTAMP not null, "updatedAt" timestamptz default CURRENT_TIMESTAMP not null);
create table "session" ("id" text not null primary key, "expiresAt" timestamptz not null, "token" text not null unique, "createdAt" timestamptz default CURRENT_TIMESTAMP not null, "updatedAt" timestamptz not null, "ipAddress" text, "userAgent" text, "userId" text not null references "user" ("id") on delete cascade);
create table "account" ("id" text not null primary key, "accountId" text not null, "providerId" text not null, "userId" text not null references "user" ("id") on delete cascade, "accessToken" text, "refreshToken" text, "idToken" text, "accessTokenExpiresAt" timestamptz, "refreshTokenExpiresAt" timestamptz, "scope" text, "password" text, "createdAt" timestamptz default CURRENT_TIMESTAMP not null, "updatedAt" timestamptz not null);
create table "verification" ("id" text not null primary key, "identifier" text not null, "value" text not null, "expiresAt" timestamptz not null, "createdAt" timestamptz default CURRENT_TIMESTAMP not null, "updatedAt" timestamptz default CURRENT_TIMESTAMP not null);
create table "jwks" ("id" text not null primary key, "publicKey" text not null, "privateKey" text not null, "createdAt" timestamptz not null, "expiresAt" timestamptz, "alg" text, "crv" text);
create index "session_userId_idx" on "session" ("userId");
create index "account_userId_idx" on "account" ("userId");
create index "verification_identifier_idx" on "verification" ("identifier");
"#;

#[test]
fn migrate_adopts_a_better_auth_database_unchanged() {
    let db = cluster().create_db();
    db.execute(BETTER_AUTH_DDL);
    // A user written by Better-Auth: docs/compatibility.md#passwords test vector (password123).
    db.execute(
        r#"INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
             VALUES ('adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC', 'Bob', 'bob@example.com', false, now(), now());
           INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", "updatedAt")
             VALUES ('acc0000000000000000000000000000a', 'adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC', 'credential',
                     'adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC',
                     'adb3fae70953259d7614bfa09ed21a8b:65f2f44a82ba2250db0f5a26dc34a598ab060c1ed25d68d5cbcee8db8a7943f903b39ecb37659feb68a111f761a76bd29d6571cad35775245ea2a1cee165c00a',
                     now(), now());"#,
    );
    let before = schema_snapshot(&db);
    let secret = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF-test-secret";
    let env = auth_env(&db, secret);
    run_tool("latchkey-auth", &["migrate"], &env).assert_success();
    assert_eq!(
        before,
        schema_snapshot(&db),
        "migrate changed Better-Auth's tables"
    );
    run_tool("latchkey-auth", &["migrate"], &env).assert_success();
    assert_eq!(before, schema_snapshot(&db));

    // And the daemon serves that database: Better-Auth's user signs in with its password.
    let spec = Auth::spec(&db, secret, free_port());
    let auth = Auth {
        daemon: Daemon::start(spec),
        db,
        secret: secret.to_string(),
    };
    let s = auth.sign_in("BOB@example.com", "password123");
    assert_eq!(s.user_id(), "adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC");
    assert_eq!(before, schema_snapshot(&auth.db));
}

#[test]
fn sigterm_shuts_both_daemons_down_cleanly() {
    let mut auth = Auth::start();
    let mut api = Api::start(&auth);
    let s = auth.new_user();
    api.me(&auth.jwt(&s)).expect(200);
    api.daemon.terminate_cleanly();
    auth.daemon.terminate_cleanly();
    // And they start again on the same port.
    auth.daemon.restart();
    auth.client().get("/healthz").send().expect(200);
}

/// `Type=notify`: both daemons tell systemd READY=1 once they serve, and STOPPING=1 on SIGTERM.
#[test]
fn sd_notify_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!(
        "latchkey-notify-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let auth_sock_path = dir.join("auth.sock");
    let auth_sock = UnixDatagram::bind(&auth_sock_path).unwrap();
    auth_sock
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut auth =
        Auth::start_with(|s| s.env("NOTIFY_SOCKET", auth_sock_path.display().to_string()));
    let recv = |sock: &UnixDatagram| {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(recv(&auth_sock), "READY=1");

    let api_sock_path = dir.join("api.sock");
    let api_sock = UnixDatagram::bind(&api_sock_path).unwrap();
    api_sock
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut api = Api::start_with(&auth.url(), |s| {
        s.env("NOTIFY_SOCKET", api_sock_path.display().to_string())
    });
    assert_eq!(recv(&api_sock), "READY=1");

    api.daemon.terminate_cleanly();
    assert_eq!(recv(&api_sock), "STOPPING=1");
    auth.daemon.terminate_cleanly();
    assert_eq!(recv(&auth_sock), "STOPPING=1");
    let _ = std::fs::remove_dir_all(dir);
}

/// The systemd way: secrets as credentials (`$CREDENTIALS_DIRECTORY/<NAME>`), the rest in a
/// TOML file (`--config`); a secret in the TOML file is refused.
#[test]
fn credentials_directory_and_toml_config_file() {
    let db = cluster().create_db();
    let dir = std::env::temp_dir().join(format!(
        "latchkey-creds-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = format!("cred-{}", latchkey_e2e::random_string(40));
    std::fs::write(dir.join("BETTER_AUTH_SECRET"), format!("{secret}\n")).unwrap();
    std::fs::write(dir.join("DATABASE_URL"), &db.url).unwrap();
    let toml = dir.join("latchkey-auth.toml");
    std::fs::write(
        &toml,
        "jwt_expires_in = 60\nbetter_auth_trusted_origins = [\"https://app.example.com\"]\nlatchkey_session_fresh_age = 3600\n",
    )
    .unwrap();

    let mut spec = Auth::spec(&db, "unused", free_port());
    spec.remove_env("BETTER_AUTH_SECRET");
    spec.remove_env("DATABASE_URL");
    // The environment would win over the file.
    spec.remove_env("BETTER_AUTH_TRUSTED_ORIGINS");
    let spec = spec
        .env("CREDENTIALS_DIRECTORY", dir.display().to_string())
        .arg("--config")
        .arg(&toml.display().to_string());
    let daemon = Daemon::start(spec);
    let c = latchkey_e2e::http::Client::new(&daemon.url());

    // The trusted origin from the file is honoured by the origin check.
    let email = latchkey_e2e::random_email();
    let r = c
        .post("/api/auth/sign-up/email")
        .header("origin", "https://app.example.com")
        .json(&json!({"name": "C", "email": email, "password": PASSWORD}))
        .send();
    r.expect(200);
    c.post("/api/auth/sign-up/email")
        .header("origin", "https://other.example.com")
        .json(&json!({"name": "C", "email": latchkey_e2e::random_email(), "password": PASSWORD}))
        .send()
        .expect_error(403, "INVALID_ORIGIN");
    // The JWT lifetime from the file.
    let bearer = r.header("set-auth-token").unwrap().to_string();
    let token = c.get("/api/auth/token").bearer(&bearer).send().json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let claims = latchkey_e2e::jwt::decode(&token).payload;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    // The credential really was the signing secret: the cookie verifies under it.
    let (value, sig) = bearer.rsplit_once('.').unwrap();
    assert_eq!(latchkey_e2e::jwt::cookie_signature(&secret, value), sig);
    assert!(!daemon.log().contains(&secret));

    // A secret in the TOML file is refused at start, naming it.
    std::fs::write(&toml, format!("better_auth_secret = \"{secret}\"\n")).unwrap();
    let out = run_tool(
        "latchkey-auth",
        &["--config", &toml.display().to_string(), "check-config"],
        &[("CREDENTIALS_DIRECTORY".into(), dir.display().to_string())],
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(all_output(&out).contains("BETTER_AUTH_SECRET"), "{out:?}");
    assert!(!all_output(&out).contains(&secret));
    // So is the `latchkey_`-prefixed spelling.
    std::fs::write(
        &toml,
        format!("latchkey_better_auth_secret = \"{secret}\"\n"),
    )
    .unwrap();
    let out = run_tool(
        "latchkey-auth",
        &["--config", &toml.display().to_string(), "check-config"],
        &[("CREDENTIALS_DIRECTORY".into(), dir.display().to_string())],
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(all_output(&out).contains("BETTER_AUTH_SECRET"), "{out:?}");
    assert!(!all_output(&out).contains(&secret));
    // And the social providers' client secrets (Better-Auth's shortcut names).
    for (key, name) in [
        ("github_client_secret", "GITHUB_CLIENT_SECRET"),
        ("latchkey_google_client_secret", "GOOGLE_CLIENT_SECRET"),
    ] {
        std::fs::write(&toml, format!("{key} = \"oauth-client-secret-1\"\n")).unwrap();
        let out = run_tool(
            "latchkey-auth",
            &["--config", &toml.display().to_string(), "check-config"],
            &[("CREDENTIALS_DIRECTORY".into(), dir.display().to_string())],
        );
        assert_eq!(out.code(), Some(2), "{key}: {out:?}");
        assert!(all_output(&out).contains(name), "{key}: {out:?}");
        assert!(
            !all_output(&out).contains("oauth-client-secret-1"),
            "{out:?}"
        );
    }

    // A typo in the file or the environment is refused, naming the setting it resembles
    // (it used to be ignored: "configuration ok" with the default in force).
    std::fs::write(&toml, "jwt_expire_in = 60\n").unwrap();
    let out = run_tool(
        "latchkey-auth",
        &["--config", &toml.display().to_string(), "check-config"],
        &[("CREDENTIALS_DIRECTORY".into(), dir.display().to_string())],
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        all_output(&out).contains("jwt_expire_in")
            && all_output(&out).contains("did you mean LATCHKEY_JWT_EXPIRES_IN"),
        "{out:?}"
    );
    for bin in ["latchkey-auth", "latchkey-api"] {
        let out = run_tool(
            bin,
            &["check-config"],
            &[
                ("CREDENTIALS_DIRECTORY".into(), dir.display().to_string()),
                ("BETTER_AUTH_URL".into(), "http://127.0.0.1:3000".into()),
                ("LATCHKEY_RATE_LIMT".into(), "off".into()),
            ],
        );
        assert_eq!(out.code(), Some(2), "{bin}: {out:?}");
        assert!(
            all_output(&out).contains("did you mean LATCHKEY_RATE_LIMIT"),
            "{bin}: {out:?}"
        );
    }
    // One environment for both daemons: each accepts the other's settings.
    let out = run_tool(
        "latchkey-api",
        &["check-config"],
        &[
            ("BETTER_AUTH_URL".into(), "http://127.0.0.1:3000".into()),
            ("LATCHKEY_COOKIE_PREFIX".into(), "app".into()),
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Our migrations on an empty database make exactly the schema Better-Auth's own migrator
/// makes (docs/compatibility.md#schema): same columns, types, nullability, defaults, constraints and indexes.
#[test]
fn migrations_create_exactly_better_auths_schema() {
    let ours = cluster().create_db();
    run_tool(
        "latchkey-auth",
        &["migrate"],
        &auth_env(&ours, &"s".repeat(40)),
    )
    .assert_success();
    let theirs = cluster().create_db();
    theirs.execute(BETTER_AUTH_DDL);
    let (ours, theirs) = (schema_snapshot(&ours), schema_snapshot(&theirs));
    assert!(ours.len() > 40, "suspiciously small schema: {ours:#?}");
    assert_eq!(ours, theirs);
}

/// Default caps, no settings: a body of 64 KiB passes the cap and one byte more does not; a
/// request head beyond 32 KiB is refused before any handler runs.
#[test]
fn default_body_and_header_caps() {
    let auth = Auth::start();
    let port = auth.daemon.port();
    let exchange = |len: usize| {
        // A JSON object padded with spaces to exactly `len` bytes.
        let core = r#"{"email":"cap@example.com","password":"wrong password"}"#;
        let body = format!("{core}{}", " ".repeat(len - core.len()));
        let head = format!(
            "POST /api/auth/sign-in/email HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
        );
        latchkey_e2e::http::raw_status(&latchkey_e2e::http::raw_exchange(
            port,
            &head,
            body.into_bytes(),
        ))
    };
    assert_eq!(
        exchange(65_536),
        Some(401),
        "a 64 KiB body is within the cap"
    );
    assert_eq!(exchange(65_537), Some(413), "one byte over the cap");
    let head = format!(
        "GET /api/auth/ok HTTP/1.1\r\nhost: 127.0.0.1\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let status =
        latchkey_e2e::http::raw_status(&latchkey_e2e::http::raw_exchange(port, &head, Vec::new()));
    assert_eq!(status, Some(431), "an oversized request head");
    auth.client().get("/api/auth/ok").send().expect(200);
}

/// `latchkey-api check-config`, `LATCHKEY_CONFIG` instead of `--config`, and a secret from
/// `DATABASE_URL_FILE`.
#[test]
fn api_check_config_config_env_and_database_url_file() {
    let db = cluster().create_db();
    let dir = std::env::temp_dir().join(format!(
        "latchkey-apicfg-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("api.toml");
    std::fs::write(
        &toml,
        "better_auth_url = \"http://127.0.0.1:3999\"\nrevocation = \"session\"\n",
    )
    .unwrap();
    let url_file = dir.join("database-url");
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    let env = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env = vec![("LATCHKEY_CONFIG".to_string(), toml.display().to_string())];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    // Revocation needs a database URL: without one, one line naming it, exit 2.
    let out = run_tool("latchkey-api", &["check-config"], &env(&[]));
    assert_eq!(out.code(), Some(2), "{out:?}");
    let text = all_output(&out);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(text.contains("DATABASE_URL"), "{text}");
    let out = run_tool(
        "latchkey-api",
        &["check-config"],
        &env(&[("DATABASE_URL_FILE", url_file.display().to_string())]),
    );
    out.assert_success();
    assert!(out.stdout.contains("configuration ok"), "{out:?}");
    // A bad value in the file is named.
    std::fs::write(
        &toml,
        "better_auth_url = \"http://127.0.0.1:3999\"\nrevocation = \"sometimes\"\n",
    )
    .unwrap();
    let out = run_tool(
        "latchkey-api",
        &["check-config"],
        &env(&[("DATABASE_URL_FILE", url_file.display().to_string())]),
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(all_output(&out).contains("LATCHKEY_REVOCATION"), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `check-config --connect` says what serving would run into, without changing anything:
/// the database, the schema, the signing key (decrypted with this secret), and for
/// latchkey-api the revocation database.
#[test]
fn check_config_connect_says_what_fails() {
    let auth = latchkey_e2e::stack::Auth::start();
    let ok = auth.tool(&["check-config", "--connect"]);
    ok.assert_success();
    assert!(
        ok.stdout.contains("database: connected")
            && ok.stdout.contains("migrations applied [1, 2, 3, 4]")
            && ok.stdout.contains("signing key: decrypted"),
        "{ok:?}"
    );
    // Another secret cannot read the key: said at once, not at the first request.
    let mut env = auth.daemon.spec.env.clone();
    env.retain(|(k, _)| k != "BETTER_AUTH_SECRET");
    env.push(("BETTER_AUTH_SECRET".into(), "x".repeat(40)));
    let out = run_tool("latchkey-auth", &["check-config", "--connect"], &env);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(all_output(&out).contains("another secret"), "{out:?}");
    // No database there.
    let mut env = auth.daemon.spec.env.clone();
    env.retain(|(k, _)| k != "DATABASE_URL");
    env.push(("DATABASE_URL".into(), "postgres://u@127.0.0.1:1/x".into()));
    let out = run_tool("latchkey-auth", &["check-config", "--connect"], &env);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(all_output(&out).contains("database unavailable"), "{out:?}");
    // Without --connect, none of that is tried.
    run_tool("latchkey-auth", &["check-config"], &env).assert_success();

    let api_env = |db: &str| {
        vec![
            ("BETTER_AUTH_URL".to_string(), auth.url()),
            ("LATCHKEY_REVOCATION".to_string(), "session".to_string()),
            ("DATABASE_URL".to_string(), db.to_string()),
        ]
    };
    let out = run_tool(
        "latchkey-api",
        &["check-config", "--connect"],
        &api_env(&auth.db.url),
    );
    out.assert_success();
    assert!(out.stdout.contains("connections ok"), "{out:?}");
    let out = run_tool(
        "latchkey-api",
        &["check-config", "--connect"],
        &api_env("postgres://u@127.0.0.1:1/x"),
    );
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(all_output(&out).contains("revocation database"), "{out:?}");
}
