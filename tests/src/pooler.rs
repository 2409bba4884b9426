//! PgBouncer in front of the test cluster, for the pooler runs of the suite: with
//! `LATCHKEY_E2E_POOLER=transaction` (or `session`) every daemon's `DATABASE_URL` goes through
//! it, so the whole suite's flows prove that latchkey works behind a transaction pooler (Neon's,
//! Supabase's, RDS Proxy) with PgBouncer's default settings. The tests' own SQL still goes to
//! Postgres directly.
//!
//! The binary is `$LATCHKEY_PGBOUNCER` (scripts/test unpacks Debian's package under
//! target/tools), else `pgbouncer` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{pg, proc};

pub struct Pooler {
    pub port: u16,
    pub mode: String,
    dir: PathBuf,
    child: Mutex<Child>,
}

static POOLER: OnceLock<Option<Pooler>> = OnceLock::new();

/// The process-wide pooler when `LATCHKEY_E2E_POOLER` asks for one, started on first use.
pub fn pooler() -> Option<&'static Pooler> {
    POOLER
        .get_or_init(|| {
            let mode = std::env::var("LATCHKEY_E2E_POOLER").ok()?;
            let mode = mode.trim().to_string();
            if mode.is_empty() || mode == "off" {
                return None;
            }
            assert!(
                matches!(mode.as_str(), "transaction" | "session"),
                "LATCHKEY_E2E_POOLER={mode}: expected transaction, session or off"
            );
            Some(Pooler::start(&mode, 20))
        })
        .as_ref()
}

fn binary() -> PathBuf {
    std::env::var_os("LATCHKEY_PGBOUNCER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("pgbouncer"))
}

/// Libraries unpacked beside the binary (`<root>/usr/sbin/pgbouncer` → `<root>/usr/lib/...`).
fn library_path(bin: &Path) -> Option<PathBuf> {
    let root = bin.parent()?.parent()?;
    let lib = root.join("lib/x86_64-linux-gnu");
    lib.is_dir().then_some(lib)
}

impl Pooler {
    /// A PgBouncer of its own in front of the test cluster, `pool_size` server connections
    /// per database.
    pub fn start(mode: &str, pool_size: u32) -> Pooler {
        let cluster = pg::cluster();
        let user = proc::postgres_user_if_root();
        let dir = std::env::temp_dir().join(format!(
            "latchkey-pgbouncer-{}-{}",
            std::process::id(),
            crate::random_string(6)
        ));
        std::fs::create_dir_all(&dir).expect("cannot create the pgbouncer directory");
        let port = crate::free_port();
        // Defaults otherwise: no max_prepared_statements (1.18 has none), so a named
        // prepared statement would break here exactly as on a managed pooler.
        let ini = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={pg_port} user=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             max_client_conn = 2000\n\
             default_pool_size = {pool_size}\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            pg_port = cluster.port,
            dir = dir.display(),
        );
        let ini_path = dir.join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).expect("cannot write pgbouncer.ini");

        // Everything in the directory is the postgres user's (logs and pid file are written).
        let chown_all = |dir: &Path| {
            proc::chown(dir, user).expect("cannot chown the pgbouncer directory");
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let _ = proc::chown(&entry.path(), user);
                if entry.path().is_dir() {
                    for inner in std::fs::read_dir(entry.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let _ = proc::chown(&inner.path(), user);
                    }
                }
            }
        };
        // The binary may sit in a clone under a 0700 directory that the postgres user cannot
        // enter: run a copy (with its libraries) from the pooler's own directory.
        let source = binary();
        let bin = dir.join("pgbouncer");
        if source.components().count() > 1 {
            std::fs::copy(&source, &bin).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} ({e}); scripts/test installs it (ensure_pgbouncer)",
                    source.display()
                )
            });
            if let Some(lib) = library_path(&source) {
                let libs = dir.join("lib");
                std::fs::create_dir_all(&libs).expect("lib dir");
                for entry in std::fs::read_dir(&lib).expect("read lib dir").flatten() {
                    // Symlinks are followed: the copies are plain files.
                    let _ = std::fs::copy(entry.path(), libs.join(entry.file_name()));
                }
            }
        }
        let bin = if bin.exists() { bin } else { source };
        chown_all(&dir);
        let mut cmd = Command::new(&bin);
        cmd.arg(&ini_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if dir.join("lib").is_dir() {
            cmd.env("LD_LIBRARY_PATH", dir.join("lib"));
        }
        // PgBouncer refuses to run as root.
        proc::run_as(&mut cmd, user);
        let child = proc::spawn_tied(cmd, libc::SIGTERM).unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); scripts/test installs it (ensure_pgbouncer)",
                bin.display()
            )
        });
        let pooler = Pooler {
            port,
            mode: mode.to_string(),
            dir,
            child: Mutex::new(child),
        };
        pooler.wait_ready(Duration::from_secs(20));
        eprintln!("e2e: PgBouncer ({mode} mode) on 127.0.0.1:{port}");
        pooler
    }

    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5",
            self.port
        );
        loop {
            if let Ok(Some(status)) = self.child.lock().map(|mut c| c.try_wait().ok().flatten()) {
                panic!("pgbouncer exited ({status}); log:\n{}", self.log());
            }
            match postgres::Client::connect(&conninfo, postgres::NoTls) {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "pgbouncer not ready after {timeout:?} ({e}); log:\n{}",
                        self.log()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>` through the pooler.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}
