//! One throwaway PostgreSQL cluster per test process, one fresh database per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::proc;

const DIR_PREFIX: &str = "latchkey-pg-";

pub struct Cluster {
    pub port: u16,
    /// Holds `data/`, the Unix socket and `postgres.log`.
    pub dir: PathBuf,
    child: Mutex<Child>,
    pid: std::sync::atomic::AtomicU32,
    /// How postgres was started, to start it again in [`Cluster::restart`].
    command: PostgresCommand,
    /// The server certificate (its own CA) when the cluster serves TLS; `None` without openssl.
    ssl_cert: Option<PathBuf>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// A role that must log in with a password (SCRAM-SHA-256) over TLS (`hostssl` only).
pub const SCRAM_USER: &str = "scram_user";
pub const SCRAM_PASSWORD: &str = "scram-pw-0123";

/// The process-wide cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// Path of a PostgreSQL server binary: `$LATCHKEY_PG_BIN/<name>`, else the highest
/// `/usr/lib/postgresql/<version>/bin/<name>`, else `<name>` from `PATH`.
pub fn pg_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LATCHKEY_PG_BIN") {
        return Path::new(&dir).join(name);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin").join(name);
            bin.exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, path)) => path,
        None => PathBuf::from(name),
    }
}

/// Removes `/tmp/latchkey-pg-<pid>-*` directories left by test processes that are gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !proc::pid_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

extern "C" fn stop_cluster_at_exit() {
    if let Some(c) = CLUSTER.get() {
        proc::signal(
            c.pid.load(std::sync::atomic::Ordering::SeqCst),
            libc::SIGQUIT,
        );
        if let Ok(mut child) = c.child.try_lock() {
            let _ = proc::wait_timeout(&mut child, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

impl Cluster {
    fn start() -> Cluster {
        remove_stale_dirs();
        let user = proc::postgres_user_if_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Under /tmp, never under the repository: a CI clone may sit in a 0700 directory
        // that the postgres user cannot enter.
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the cluster directory");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        proc::chown(&dir, user).expect("cannot chown the cluster directory to postgres");
        let data = dir.join("data");

        let initdb = pg_bin("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D")
            .arg(&data)
            .args([
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        proc::run_as(&mut cmd, user);
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); install PostgreSQL (apt-get install postgresql) or set \
                 LATCHKEY_PG_BIN",
                initdb.display()
            )
        });
        if !out.status.success() {
            panic!(
                "initdb failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        // One role logs in with a password (SCRAM-SHA-256) over TLS only, for the tests of
        // channel binding; every other connection is trusted.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(
            &hba,
            format!("hostssl all {SCRAM_USER} 127.0.0.1/32 scram-sha-256\n{rules}"),
        )
        .expect("cannot write pg_hba.conf");

        // TLS alongside plaintext, so that tests can connect with sslmode=verify-full.
        let ssl_cert = match crate::tls::TestCert::localhost(&dir.join("ssl")) {
            Ok(cert) => {
                use std::os::unix::fs::PermissionsExt;
                for p in [&dir.join("ssl"), &cert.cert, &cert.key] {
                    proc::chown(p, user).expect("cannot chown the TLS files");
                }
                std::fs::set_permissions(&cert.key, std::fs::Permissions::from_mode(0o600))
                    .expect("cannot restrict the TLS key");
                Some(cert)
            }
            Err(e) => {
                eprintln!("Postgres without TLS: {e}");
                None
            }
        };
        let log_path = dir.join("postgres.log");
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = crate::free_port();
            let mut args: Vec<String> = vec![
                "-D".into(),
                data.display().to_string(),
                "-p".into(),
                port.to_string(),
                "-k".into(),
                dir.display().to_string(),
            ];
            for setting in [
                "listen_addresses=127.0.0.1",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "max_connections=300",
                "shared_buffers=32MB",
            ] {
                args.extend(["-c".to_string(), setting.to_string()]);
            }
            if let Some(c) = &ssl_cert {
                for setting in [
                    "ssl=on".to_string(),
                    format!("ssl_cert_file={}", c.cert.display()),
                    format!("ssl_key_file={}", c.key.display()),
                ] {
                    args.extend(["-c".to_string(), setting]);
                }
            }
            let command = PostgresCommand {
                args,
                dir: dir.clone(),
                user,
                log_path: log_path.clone(),
            };
            let child = command.spawn(true);
            let pid = child.id();
            let cluster = Cluster {
                port,
                dir: dir.clone(),
                child: Mutex::new(child),
                pid: pid.into(),
                command,
                ssl_cert: ssl_cert.as_ref().map(|c| c.ca.clone()),
            };
            match cluster.wait_ready(Duration::from_secs(30)) {
                Ok(()) => {
                    cluster.create_scram_role();
                    // SAFETY: registering a plain extern "C" fn.
                    unsafe { libc::atexit(stop_cluster_at_exit) };
                    return cluster;
                }
                Err(e) => {
                    proc::signal(pid, libc::SIGQUIT);
                    let _ = proc::wait_timeout(
                        &mut cluster.child.lock().unwrap(),
                        Duration::from_secs(5),
                    );
                    last_err = e;
                }
            }
        }
        panic!("{last_err}");
    }

    /// Stops postgres (fast shutdown: open connections are cut, as in a real outage). Tests in
    /// the same process share the cluster, so only a test binary of its own should call this,
    /// and [`Cluster::start_again`] must follow.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap();
        proc::signal(child.id(), libc::SIGINT);
        proc::wait_timeout(&mut child, Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("postgres did not stop within 30 s");
    }

    /// Starts postgres again on the same port and data directory after [`Cluster::stop`].
    pub fn start_again(&self) {
        let mut child = self.child.lock().unwrap();
        *child = self.command.spawn(false);
        self.pid
            .store(child.id(), std::sync::atomic::Ordering::SeqCst);
        drop(child);
        self.wait_ready(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`Cluster::stop`] then [`Cluster::start_again`].
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    fn create_scram_role(&self) {
        if let Ok(mut admin) =
            postgres::Client::connect(&self.admin_conninfo("postgres"), postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "CREATE ROLE {SCRAM_USER} LOGIN SUPERUSER PASSWORD '{SCRAM_PASSWORD}'"
            ));
        }
    }

    /// The CA to verify the server with, when it serves TLS.
    pub fn ssl_ca(&self) -> Option<&std::path::Path> {
        self.ssl_cert.as_deref()
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let log_path = self.dir.join("postgres.log");
        loop {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                return Err(format!(
                    "postgres exited ({status}) before accepting connections; log:\n{}",
                    tail(&log_path, 4000)
                ));
            }
            match postgres::Client::connect(&self.admin_conninfo("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "postgres not ready after {timeout:?} ({e}); log:\n{}",
                        tail(&log_path, 4000)
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn admin_conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5",
            self.port
        )
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database for one test; dropped (with FORCE) when the guard goes.
    pub fn create_db(&self) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            crate::random_string(6).to_ascii_lowercase()
        );
        let mut admin =
            postgres::Client::connect(&self.admin_conninfo("postgres"), postgres::NoTls)
                .expect("cannot connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("CREATE DATABASE failed");
        TestDb {
            url: match crate::pooler::pooler() {
                Some(pooler) => pooler.url(&name),
                None => self.url(&name),
            },
            conninfo: self.admin_conninfo(&name),
            name,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }
}

/// One test's database.
pub struct TestDb {
    pub name: String,
    /// URL for the daemons' `DATABASE_URL`.
    pub url: String,
    conninfo: String,
}

impl TestDb {
    /// A fresh synchronous connection.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Vec<postgres::Row> {
        self.client()
            .query(sql, params)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"))
    }

    /// A single `bigint` (`count(*)` and the like).
    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql, &[])[0].get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(c) = CLUSTER.get() {
            if let Ok(mut admin) =
                postgres::Client::connect(&c.admin_conninfo("postgres"), postgres::NoTls)
            {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ));
            }
        }
    }
}

/// The postgres server command line of a cluster.
struct PostgresCommand {
    args: Vec<String>,
    dir: PathBuf,
    user: Option<(u32, u32)>,
    log_path: PathBuf,
}

impl PostgresCommand {
    fn spawn(&self, fresh_log: bool) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh_log)
            .truncate(fresh_log)
            .open(&self.log_path)
            .expect("cannot open postgres.log");
        let mut cmd = Command::new(pg_bin("postgres"));
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        proc::run_as(&mut cmd, self.user);
        proc::spawn_tied(cmd, libc::SIGQUIT).expect("cannot start postgres")
    }
}
