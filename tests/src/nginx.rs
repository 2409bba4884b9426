//! nginx as a round-robin load balancer in front of several daemons, as operators run it:
//! upstream keep-alive connections, retry on the next server when a connection fails
//! (`proxy_next_upstream error timeout`, nginx's default), no active health checks (open-source
//! nginx has none).
//!
//! The binary is `$LATCHKEY_NGINX` (scripts/test unpacks Debian's package under
//! target/tools), else `nginx` on PATH.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc;

pub struct Nginx {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Balances `127.0.0.1:<port>` over the given upstream ports.
    pub fn start(upstreams: &[u16]) -> Nginx {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!(
            "latchkey-nginx-{}-{}",
            std::process::id(),
            crate::random_string(6)
        ));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        // As root, workers would switch to `nobody`, who cannot write here.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
                 access_log {dir}/logs/access.log;\n\
                 client_body_temp_path {dir}/body;\n\
                 proxy_temp_path {dir}/proxy;\n\
                 fastcgi_temp_path {dir}/fastcgi;\n\
                 uwsgi_temp_path {dir}/uwsgi;\n\
                 scgi_temp_path {dir}/scgi;\n\
                 upstream latchkey {{\n{servers}        keepalive 32;\n    }}\n\
                 server {{\n\
                     listen 127.0.0.1:{port};\n\
                     location / {{\n\
                         proxy_pass http://latchkey;\n\
                         proxy_http_version 1.1;\n\
                         proxy_set_header Connection \"\";\n\
                         proxy_set_header X-Forwarded-For $remote_addr;\n\
                         proxy_next_upstream error timeout;\n\
                         proxy_connect_timeout 2s;\n\
                     }}\n\
                 }}\n\
             }}\n",
            dir = dir.display(),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let bin = std::env::var_os("LATCHKEY_NGINX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("nginx"));
        let mut cmd = Command::new(&bin);
        cmd.arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = proc::spawn_tied(cmd, libc::SIGTERM).unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); scripts/test installs it (ensure_nginx)",
                bin.display()
            )
        });
        let mut nginx = Nginx {
            port,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = nginx.child.as_mut().map(|c| c.try_wait()) {
                panic!("nginx exited ({status}): {}", nginx.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx not listening: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            proc::signal(child.id(), libc::SIGQUIT);
            let _ = proc::wait_timeout(&mut child, Duration::from_secs(5));
            let _ = child.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
