//! Child processes that must not outlive the test binary.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
//! Test threads come and go, so every long-lived child is forked from one dedicated thread
//! that never returns ([`spawn_tied`]). The prctl runs in `pre_exec`, which std runs after
//! its own `setgid`/`setuid` (a credential change clears the death signal, so the order
//! matters; `tests/harness.rs` checks it).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

fn spawner() -> &'static mpsc::Sender<Job> {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("latchkey-e2e-spawner".into())
            .spawn(move || {
                // Never exits: the sender lives in a static.
                while let Ok(job) = rx.recv() {
                    job();
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("cannot start the spawner thread");
        tx
    })
}

/// Arranges for `sig` to be delivered to the child when its forking thread dies, and refuses
/// to start it if this process is already gone by then.
pub fn set_pdeathsig(cmd: &mut Command, sig: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::other("parent already exited"));
            }
            Ok(())
        });
    }
}

/// Spawns `cmd` on the current thread with a parent-death signal (see [`spawn_tied`] for the
/// variant that survives the calling thread).
pub fn spawn_with_pdeathsig(mut cmd: Command, sig: libc::c_int) -> io::Result<Child> {
    set_pdeathsig(&mut cmd, sig);
    cmd.spawn()
}

/// Spawns `cmd` from the never-exiting spawner thread, so that `sig` reaches the child only
/// when the whole test process dies.
pub fn spawn_tied(cmd: Command, sig: libc::c_int) -> io::Result<Child> {
    let (tx, rx) = mpsc::sync_channel(1);
    spawner()
        .send(Box::new(move || {
            let _ = tx.send(spawn_with_pdeathsig(cmd, sig));
        }))
        .expect("spawner thread is gone");
    rx.recv().expect("spawner thread dropped the request")
}

/// The `postgres` system user's uid and gid, if we are root and must drop privileges.
pub fn postgres_user_if_root() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy out immediately.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        panic!(
            "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
             system user to run it as (install the postgresql package, or run the tests as an \
             ordinary user)"
        );
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some((uid, gid))
}

/// Runs `cmd` as the given user (no-op for `None`).
pub fn run_as(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

pub fn chown(path: &std::path::Path, user: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits for `child` up to `timeout`; `None` if it is still running.
pub fn wait_timeout(
    child: &mut Child,
    timeout: std::time::Duration,
) -> io::Result<Option<std::process::ExitStatus>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
