//! Node.js suites driven from Rust tests: `npm ci` done once and cached behind a stamp file,
//! and scripts run with a hard time limit, their output kept in a log file.

use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::proc;

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// `$LATCHKEY_NODE`, else `node`.
pub fn node() -> String {
    tool("LATCHKEY_NODE", "node")
}

/// `$LATCHKEY_NPM`, else `npm`.
pub fn npm() -> String {
    tool("LATCHKEY_NPM", "npm")
}

/// Removes the test process's settings that must not reach a script (Better-Auth reads several
/// of them, e.g. `BETTER_AUTH_URL`, `BASE_URL`, `NODE_ENV`).
pub fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("BETTER_AUTH")
            || k.starts_with("LATCHKEY_")
            || k.ends_with("_AUTH_URL")
            || matches!(k, "DATABASE_URL" | "AUTH_SECRET" | "BASE_URL" | "NODE_ENV")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
}

/// Hex SHA-256 over `parts`, each followed by a NUL.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `cmd` to completion and returns its trimmed stdout; panics with its output otherwise.
pub fn output_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (is it installed and on PATH?)"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Holds an exclusive `flock` on a file until dropped (serialises set-ups across test
/// processes).
pub struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    pub fn acquire(path: &Path) -> FileLock {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let file = std::fs::File::create(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        // SAFETY: flock on an open descriptor; released when the file is closed.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
        FileLock(file)
    }
}

/// `npm ci <args>` in `dir`, unless `dir/node_modules/.latchkey-stamp` says it was done for
/// this `package-lock.json`, Node version and `args`. The caller serialises concurrent calls
/// (see [`FileLock`]). `env` is added to npm's environment.
pub fn npm_ci(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let node_version = output_of(Command::new(node()).arg("--version"), "node --version");
    let lock_path = dir.join("package-lock.json");
    let lockfile = std::fs::read(&lock_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lock_path.display()));
    let joined_args = args.join(" ");
    let want = sha256_hex(&[&lockfile, node_version.as_bytes(), joined_args.as_bytes()]);
    let stamp = dir.join("node_modules/.latchkey-stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return;
    }
    let mut cmd = Command::new(npm());
    cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    output_of(&mut cmd, &format!("npm ci in {}", dir.display()));
    eprintln!(
        "npm ci in {} took {:.1} s",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&stamp, &want).unwrap();
}

/// A finished (or killed) script.
pub struct ScriptRun {
    /// `None` when it was killed at the time limit.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout and stderr.
    pub output: String,
    pub elapsed: Duration,
}

/// Runs `cmd` with stdout and stderr into `log_path`, in a process group of its own; after
/// `timeout` the whole group (the script and anything it started, e.g. a browser) is killed.
pub fn run_logged(mut cmd: Command, log_path: &Path, timeout: Duration) -> ScriptRun {
    let log = std::fs::File::create(log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    let t = Instant::now();
    let mut child = proc::spawn_with_pdeathsig(cmd, libc::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot start a script: {e}"));
    let pgid = child.id() as libc::pid_t;
    let status = proc::wait_timeout(&mut child, timeout).unwrap();
    // Whatever is left of the group (always, on a timeout) goes too.
    // SAFETY: kill has no memory-safety preconditions; a negative pid names the group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if status.is_none() {
        let _ = child.wait();
    }
    ScriptRun {
        status,
        output: std::fs::read_to_string(log_path).unwrap_or_default(),
        elapsed: t.elapsed(),
    }
}

/// The last `max` bytes of a log (on a character boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The tails of the daemons' logs, for a failure message.
pub fn daemon_logs(daemons: &[&crate::Daemon]) -> String {
    daemons
        .iter()
        .map(|d| {
            format!(
                "--- {} log ({}) ---\n{}",
                d.spec.bin,
                d.log_path().display(),
                tail(&d.log(), 4000)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
