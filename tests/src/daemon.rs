//! The daemons under test, run as child processes.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::proc;

/// Environment variables of the test process that must not leak into a daemon.
fn is_inherited_setting(name: &str) -> bool {
    name.starts_with("BETTER_AUTH_")
        || name.starts_with("LATCHKEY_")
        || matches!(
            name,
            "DATABASE_URL"
                | "AUTH_SECRET"
                | "BASE_URL"
                | "CREDENTIALS_DIRECTORY"
                | "NOTIFY_SOCKET"
                | "RUST_LOG"
                | "NODE_ENV"
        )
}

/// Directory holding `latchkey-auth` and `latchkey-api`: `$LATCHKEY_BIN_DIR`, else the
/// target directory this test binary lives in (`target/debug/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LATCHKEY_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent dir")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// Path of a daemon binary; panics with a hint when it has not been built.
pub fn bin_path(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} does not exist: run `cargo build --workspace --bins` first (or set \
             LATCHKEY_BIN_DIR)",
            path.display()
        );
    }
    path
}

/// Where daemon logs go: `<bin dir>/e2e-logs/` (kept after the run for post-mortems).
pub fn log_dir() -> PathBuf {
    let dir = bin_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("cannot create the e2e log dir");
    dir
}

fn base_command(bin: &str, args: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin_path(bin));
    cmd.args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .filter(|(k, _)| is_inherited_setting(k))
    {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// What to run: a binary, its arguments and environment, and the port it listens on
/// (`LATCHKEY_LISTEN` is set from it).
#[derive(Clone, Debug)]
pub struct DaemonSpec {
    pub bin: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub port: u16,
    /// Set for a daemon serving HTTPS: the CA to check it with (health checks use it).
    pub https_ca: Option<PathBuf>,
}

impl DaemonSpec {
    pub fn new(bin: &str, port: u16) -> Self {
        // Tests stop daemons all the time: no drain delay unless a test asks for one.
        let mut env = vec![("LATCHKEY_SHUTDOWN_DELAY".to_string(), "0".to_string())];
        if let Ok(statements) = std::env::var("LATCHKEY_E2E_STATEMENTS") {
            env.push(("LATCHKEY_DB_STATEMENTS".to_string(), statements));
        }
        Self {
            bin: bin.to_string(),
            args: Vec::new(),
            env,
            port,
            https_ca: None,
        }
    }

    /// Sets (or replaces) an environment variable.
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.set_env(k, v);
        self
    }

    pub fn set_env(&mut self, k: &str, v: impl Into<String>) {
        self.env.retain(|(name, _)| name != k);
        self.env.push((k.to_string(), v.into()));
    }

    pub fn remove_env(&mut self, k: &str) {
        self.env.retain(|(name, _)| name != k);
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` for an HTTPS daemon.
    pub fn url(&self) -> String {
        match self.https_ca {
            Some(_) => format!("https://localhost:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }
}

/// Why a daemon did not come up.
#[derive(Debug)]
pub struct StartError {
    /// Exit status if the process ended on its own.
    pub status: Option<ExitStatus>,
    pub log: String,
    pub reason: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (status {:?}); log:\n{}",
            self.reason, self.status, self.log
        )
    }
}

/// A running daemon. Dropping it stops it (SIGTERM, then SIGKILL after 3 s).
pub struct Daemon {
    pub spec: DaemonSpec,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits for `GET /healthz` → 200; panics with its log otherwise.
    pub fn start(spec: DaemonSpec) -> Daemon {
        Self::try_start(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(spec: DaemonSpec) -> Result<Daemon, StartError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let log_path = log_dir().join(format!(
            "{}-{}-{}-{}.log",
            spec.bin,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            spec.port
        ));
        let mut d = Daemon {
            spec,
            child: None,
            log_path,
        };
        d.spawn_and_wait()?;
        Ok(d)
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("cannot open daemon log");
        let mut env = self.spec.env.clone();
        env.retain(|(k, _)| k != "LATCHKEY_LISTEN");
        env.push((
            "LATCHKEY_LISTEN".into(),
            format!("127.0.0.1:{}", self.spec.port),
        ));
        let mut cmd = base_command(&self.spec.bin, &self.spec.args, &env);
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        let child = proc::spawn_tied(cmd, libc::SIGKILL)
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", self.spec.bin));
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(30))
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/healthz", self.url());
        let client = crate::http::Client::with_timeout(&self.url(), Duration::from_secs(2));
        loop {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                return Err(StartError {
                    status: Some(status),
                    log: self.log(),
                    reason: format!("{} exited during start-up", self.spec.bin),
                });
            }
            let healthy = match &self.spec.https_ca {
                Some(ca) => crate::tls::https_request(
                    self.spec.port,
                    ca,
                    "localhost",
                    "GET",
                    "/healthz",
                    &[],
                    None,
                )
                .is_ok_and(|r| r.status == 200),
                None => client.get(&url).try_send().is_ok_and(|r| r.status == 200),
            };
            if healthy {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError {
                    status: None,
                    log: self.log(),
                    reason: format!(
                        "{} did not answer GET /healthz 200 within {timeout:?}",
                        self.spec.bin
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        self.spec.url()
    }

    pub fn port(&self) -> u16 {
        self.spec.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the daemon wrote to stdout and stderr so far (all runs, if restarted).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// Sends SIGTERM and waits (up to 20 s) for the exit status. Panics if it hangs.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon is not running");
        proc::signal(child.id(), libc::SIGTERM);
        match proc::wait_timeout(&mut child, Duration::from_secs(20)).unwrap() {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within 20 s of SIGTERM; log:\n{}",
                    self.spec.bin,
                    self.log()
                );
            }
        }
    }

    /// Asserts that SIGTERM makes the daemon exit with status 0.
    pub fn terminate_cleanly(&mut self) {
        let status = self.terminate();
        assert_eq!(
            status.code(),
            Some(0),
            "{} did not exit cleanly on SIGTERM ({status}); log:\n{}",
            self.spec.bin,
            self.log()
        );
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            proc::signal(child.id(), libc::SIGTERM);
            if let Ok(None) = proc::wait_timeout(&mut child, Duration::from_secs(3)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Stops the daemon if it runs, then starts it again (same port, same environment unless
    /// `spec` was changed).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn_and_wait().unwrap_or_else(|e| panic!("{e}"));
    }

    /// What a rolling deploy does: SIGTERM, wait for a clean exit (drain delay and in-flight
    /// requests included), start again on the same port.
    pub fn rolling_restart(&mut self) {
        self.terminate_cleanly();
        self.spawn_and_wait().unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A finished command-line run.
#[derive(Debug)]
pub struct ToolOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the output unless the exit code is 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs a daemon binary as a one-shot tool (`migrate`, `keys rotate`, `check-config`, or a
/// `serve` expected to fail), with a 60 s limit.
pub fn run_tool(bin: &str, args: &[&str], env: &[(String, String)]) -> ToolOutput {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut cmd = base_command(bin, &args, env);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = proc::spawn_with_pdeathsig(cmd, libc::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot spawn {bin}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => {
            let out = out.expect("wait failed");
            ToolOutput {
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            proc::signal(pid, libc::SIGKILL);
            panic!("`{bin} {}` did not finish within 60 s", args.join(" "));
        }
    }
}
