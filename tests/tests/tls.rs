//! TLS as deployments use it: the daemons' own HTTPS listener (with `__Secure-` cookies and an
//! https JWKS fetched by latchkey-api), and Postgres over verified TLS (`sslmode=verify-full`).

use latchkey_e2e::pg::cluster;
use latchkey_e2e::stack::{Api, Auth, PASSWORD};
use latchkey_e2e::tls::{https_request, TestCert};
use latchkey_e2e::{free_port, random_email};
use serde_json::{json, Value};

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "latchkey-{name}-{}-{}",
        std::process::id(),
        free_port()
    ))
}

#[test]
fn auth_over_https_and_api_fetching_its_jwks_over_https() {
    let dir = temp_dir("tls");
    let cert = TestCert::localhost(&dir).expect("test certificate");
    let auth = Auth::start_with(|mut s| {
        let url = format!("https://localhost:{}", s.port);
        s.https_ca = Some(cert.ca.clone());
        s.env("LATCHKEY_TLS_CERT", cert.cert.display().to_string())
            .env("LATCHKEY_TLS_KEY", cert.key.display().to_string())
            .env("BETTER_AUTH_URL", url)
    });
    let port = auth.daemon.port();
    let call = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
        https_request(port, &cert.ca, "localhost", method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} over TLS: {e}"))
    };

    let email = random_email();
    let body = json!({"name": "Tess", "email": email, "password": PASSWORD}).to_string();
    let r = call("POST", "/api/auth/sign-up/email", &[], Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    // An https public URL means Better-Auth's secure cookie names and attributes.
    let cookie = r
        .headers_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Secure-better-auth.session_token="))
        .unwrap_or_else(|| panic!("no __Secure- session cookie: {:?}", r.headers))
        .to_string();
    assert!(cookie.contains("; Secure;"), "{cookie}");
    let bearer = r.headers_all("set-auth-token")[0].to_string();

    let r = call(
        "GET",
        "/api/auth/token",
        &[("Authorization", &format!("Bearer {bearer}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let jwt = serde_json::from_str::<Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let claims = latchkey_e2e::jwt::decode(&jwt).payload;
    assert_eq!(claims["iss"], format!("https://localhost:{port}"));

    // latchkey-api trusts the test CA for the JWKS fetch; issuer/audience come from the https URL.
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_JWKS_CA_FILE", cert.ca.display().to_string())
    });
    api.wait_ready();
    let me = api.me(&jwt);
    me.expect(200);
    assert_eq!(me.json()["email"], email.to_lowercase());

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = latchkey_e2e::http::Client::new(&format!("http://127.0.0.1:{port}"))
        .get("/healthz")
        .try_send();
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_over_verified_tls() {
    let ca = cluster()
        .ssl_ca()
        .expect("the test cluster serves TLS (needs the openssl command)")
        .to_path_buf();
    let auth = Auth::start_with(|mut s| {
        // Straight to the cluster, also in the suite's pooler runs: this is about TLS to
        // Postgres itself (the test PgBouncer offers clients no TLS).
        let db = s
            .env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .and_then(|(_, v)| v.rsplit('/').next().map(str::to_string))
            .expect("DATABASE_URL");
        let plain = cluster().url(&db);
        // verify-full checks the certificate against the CA and the host name (with SNI).
        let tls = format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            plain.replace("@127.0.0.1:", "@localhost:"),
            ca.display()
        );
        s.set_env("DATABASE_URL", tls);
        s
    });
    let session = auth.new_user();
    assert_eq!(session.token.len(), 32);
    let encrypted = auth.db.count(
        "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid)
         where a.datname = current_database() and s.ssl",
    );
    assert!(encrypted > 0, "the daemon's connections are not TLS");
    let plain = auth.db.count(
        "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid)
         where a.datname = current_database() and not s.ssl and a.pid <> pg_backend_pid()",
    );
    assert_eq!(plain, 0, "the daemon also opened plaintext connections");
}

fn db_name(spec: &latchkey_e2e::DaemonSpec) -> String {
    spec.env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .and_then(|(_, v)| v.rsplit('/').next().map(str::to_string))
        .expect("DATABASE_URL")
}

/// SCRAM-SHA-256-PLUS: `channel_binding=require`, as some providers' connection strings have
/// it, binds the password exchange to the TLS session (it failed with "server did not use
/// channel binding" before: the connector offered no binding data).
#[test]
fn postgres_with_channel_binding_required() {
    let ca = cluster().ssl_ca().expect("TLS cluster").to_path_buf();
    let auth = Auth::start_with(|mut s| {
        let url = format!(
            "postgres://{}:{}@localhost:{}/{}?sslmode=verify-full&sslrootcert={}&channel_binding=require",
            latchkey_e2e::pg::SCRAM_USER,
            latchkey_e2e::pg::SCRAM_PASSWORD,
            cluster().port,
            db_name(&s),
            ca.display()
        );
        s.set_env("DATABASE_URL", url);
        s
    });
    auth.new_user();
    let scram = auth.db.count(&format!(
        "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid)
         where a.datname = current_database() and s.ssl and a.usename = '{}'",
        latchkey_e2e::pg::SCRAM_USER
    ));
    assert!(scram > 0, "no TLS connection of the SCRAM role");
}

/// The key=value form takes libpq's TLS keys; `verify-ca` checks the chain without the host
/// name (reaching the server by a name its certificate does not carry), `verify-full` refuses
/// that name and says what to do; an unknown issuer names the host and `sslrootcert`.
#[test]
fn postgres_tls_modes_in_the_key_value_form_and_their_errors() {
    let ca = cluster().ssl_ca().expect("TLS cluster").to_path_buf();
    let db = cluster().create_db();
    let conninfo = |mode: &str, root: bool| {
        let mut s = format!(
            "host=db.wrong-name.test hostaddr=127.0.0.1 port={} user=postgres dbname='{}' sslmode={mode}",
            cluster().port,
            db.name
        );
        if root {
            s.push_str(&format!(" sslrootcert='{}'", ca.display()));
        }
        s
    };
    let migrate = |url: String| {
        let env = vec![
            ("DATABASE_URL".to_string(), url),
            ("BETTER_AUTH_SECRET".to_string(), "k".repeat(40)),
        ];
        latchkey_e2e::run_tool("latchkey-auth", &["migrate"], &env)
    };
    migrate(conninfo("verify-ca", true)).assert_success();
    assert_eq!(
        db.count("select count(*) from information_schema.tables where table_name = 'session'"),
        1,
        "verify-ca connected and migrated"
    );

    let out = migrate(conninfo("verify-full", true));
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr
            .contains("not valid for the name db.wrong-name.test")
            && out.stderr.contains("verify-ca"),
        "{}",
        out.stderr
    );
    let out = migrate(conninfo("require", false));
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("db.wrong-name.test") && out.stderr.contains("sslrootcert="),
        "{}",
        out.stderr
    );
}
