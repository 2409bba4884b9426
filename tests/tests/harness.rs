//! Checks of the harness itself (no latchkey daemon involved).

use std::process::Command;
use std::time::Duration;

use latchkey_e2e::{cluster, proc, Client, Upstream};
use serde_json::json;

#[test]
fn each_test_gets_its_own_database() {
    let a = cluster().create_db();
    let b = cluster().create_db();
    assert_ne!(a.name, b.name);
    a.execute("CREATE TABLE only_in_a (x int)");
    assert_eq!(
        a.count("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"),
        1
    );
    assert_eq!(
        b.count("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"),
        0
    );
    // The cluster directory is outside the repository.
    assert!(cluster().dir.starts_with(std::env::temp_dir()));
}

/// The death signal must survive std's setuid (it runs before `pre_exec`), and fire when the
/// *forking thread* exits.
#[test]
fn pdeathsig_fires_when_the_forking_thread_exits_even_after_a_uid_switch() {
    let user = proc::postgres_user_if_root();
    let mut child = std::thread::spawn(move || {
        let mut cmd = Command::new("sleep");
        cmd.arg("60").current_dir("/");
        proc::run_as(&mut cmd, user);
        proc::spawn_with_pdeathsig(cmd, libc::SIGKILL).expect("spawn sleep")
    })
    .join()
    .unwrap();
    let status = proc::wait_timeout(&mut child, Duration::from_secs(5))
        .unwrap()
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("child survived the exit of the thread that forked it")
        });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn tied_children_survive_the_calling_thread() {
    let mut child = std::thread::spawn(|| {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        proc::spawn_tied(cmd, libc::SIGKILL).unwrap()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "tied child died with its caller thread"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn client_and_upstream_round_trip() {
    let up = Upstream::start();
    let c = Client::new(&up.url());
    let r = c
        .post("/echo?q=1")
        .header("x-test", "a")
        .json(&json!({"hello": "world"}))
        .send();
    r.expect(200);
    let v = r.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/echo?q=1");
    assert_eq!(v["headers"]["x-test"], "a");
    assert_eq!(v["body"], r#"{"hello":"world"}"#);
    // Streamed body.
    let data = vec![7u8; 300_000];
    let r = c
        .post("/stream")
        .body_reader("application/octet-stream", std::io::Cursor::new(data))
        .send();
    assert_eq!(r.json()["bodyLength"], 300_000);
    assert_eq!(r.json()["chunked"], true);
    assert_eq!(up.received().len(), 2);
}

#[test]
fn cluster_is_started_once_per_process() {
    let a = cluster();
    let b = cluster();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.port, b.port);
}
