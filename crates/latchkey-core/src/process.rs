//! Process-wide hardening done first thing in `main`, before any secret is read.

/// Makes the process non-dumpable: no core dump is written for it (with the kernel's default
/// `suid_dumpable=0`), no debugger can attach as the same user and `/proc/<pid>/mem` is closed
/// to that user; a core dump would otherwise hold the secret, the database URL and the
/// passwords of requests in flight. The shipped units also set `LimitCORE=0`.
///
/// `setrlimit(RLIMIT_CORE)` is left to the units on purpose: the sandbox filters the
/// `@resources` system calls, and with `SystemCallErrorNumber=kill` the call would kill us.
pub fn harden() {
    // SAFETY: prctl with constant arguments only changes this process's own attribute.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        // Logging is not set up yet.
        eprintln!(
            "warning: cannot make the process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_is_no_longer_dumpable() {
        super::harden();
        // SAFETY: reads this process's own flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}
