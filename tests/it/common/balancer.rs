//! A real load balancer in front of several servers: Debian's nginx, started unprivileged
//! on 127.0.0.1 with a configuration in a temporary directory, round-robin over the
//! servers and naming each client in X-Forwarded-For; stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The nginx binary, if one is installed.
pub fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// The nginx configuration: one upstream over `servers` (`127.0.0.1:PORT` each).
pub fn config(dir: &std::path::Path, listen: &str, servers: &[String]) -> String {
    let upstream: String = servers
        .iter()
        .map(|s| format!("        server {s};\n"))
        .collect();
    let d = dir.display();
    format!(
        "worker_processes 1;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream valyxo {{
{upstream}        keepalive 64;
    }}
    server {{
        listen {listen};
        client_max_body_size 0;
        location / {{
            proxy_pass http://valyxo;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_bind 127.0.0.1;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

impl Nginx {
    /// nginx (`bin`) on a free port of 127.0.0.1, in front of `servers` (their URLs).
    pub fn start(bin: &std::path::Path, servers: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let servers: Vec<String> = servers
            .iter()
            .map(|u| u.trim_start_matches("http://").to_string())
            .collect();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), &listen, &servers)).expect("write nginx.conf");
        // One process (no master and workers): nothing runs as another user, and killing
        // it stops it all.
        let globals = format!(
            "daemon off; master_process off; pid {}/nginx.pid;",
            dir.path().display()
        );
        let log = dir.path().join("error.log");
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g", &globals])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("nginx's log"))
            .spawn()
            .expect("start nginx");
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&listen).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("nginx did not start ({status}): {err}");
            }
            assert!(Instant::now() < end, "nginx did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            url: format!("http://{listen}"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
