//! Real processes for fault-injection tests: the worker binary, and private Redis and S3
//! servers that a test may stop and restart without disturbing the shared ones.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A binary of the workspace (`worker`, `api`), next to this test binary. `scripts/test`
/// builds them first (`cargo build -p worker --bin worker -p api --bin api`); test runners
/// build only test targets.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p {name} --bin {name}` (scripts/test does)",
        binary.display()
    );
    binary
}

pub fn worker_binary() -> PathBuf {
    workspace_binary("worker")
}

/// A child process that is killed when the test ends, however it ends.
pub struct Process {
    child: Child,
    /// What it has logged so far, when its output is followed ([`Process::follow_log`]).
    log: Option<Arc<Mutex<String>>>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Keeps the lines the process writes to stdout (its log), passing them on to ours.
    fn follow_log(mut self) -> Self {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        self.log = Some(log);
        self
    }

    /// The lines logged so far that contain `needle`.
    pub fn logged_lines(&self, needle: &str) -> Vec<String> {
        let log = self.log.as_ref().expect("the process's log is followed");
        let log = log.lock().unwrap();
        log.lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Waits up to `limit` for `needle` to have been logged `times` times.
    pub async fn logged_within(&self, needle: &str, times: usize, limit: Duration) -> bool {
        let log = self.log.as_ref().expect("the process's log is followed");
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if log.lock().unwrap().matches(needle).count() >= times {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the worker binary with the test app's settings; its log is followed. It logs
/// warnings and errors, unless the settings or the test's environment set `RUST_LOG`.
pub fn spawn_worker(settings: &HashMap<String, String>) -> Process {
    let filter = settings.get("RUST_LOG").cloned();
    let child = Command::new(worker_binary())
        .envs(settings)
        .env(
            "RUST_LOG",
            filter.unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or("warn".into())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("worker binary starts");
    Process { child, log: None }.follow_log()
}

/// Makes `path` look an hour old, as a long-dead worker's scratch directory is.
pub fn make_old(path: &std::path::Path) {
    let aged = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(path)
        .status()
        .unwrap();
    assert!(aged.success());
}

/// Waits until something accepts connections on `port`.
async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// A server of our own that can be stopped and started again on the same port and data.
pub struct PrivateServer {
    pub port: u16,
    dir: tempfile::TempDir,
    kind: ServerKind,
    process: Option<Process>,
}

#[derive(Clone, Copy)]
pub enum ServerKind {
    /// Redis without persistence: a restart loses the queue, as a crashed Redis may.
    Redis,
    /// The development S3 server over a directory, with the development credentials.
    S3,
}

impl PrivateServer {
    pub async fn start(kind: ServerKind) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            kind,
            process: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        match self.kind {
            ServerKind::Redis => format!("redis://127.0.0.1:{}/", self.port),
            ServerKind::S3 => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.sigkill();
        }
    }

    pub async fn resume(&mut self) {
        let port = self.port.to_string();
        let mut command = match self.kind {
            ServerKind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no"])
                    .arg("--dir")
                    .arg(self.dir.path());
                c
            }
            ServerKind::S3 => {
                let mut c = Command::new("s3-dev-server");
                c.args(["--host", "127.0.0.1", "--port", &port])
                    .args([
                        "--access-key",
                        "montage-dev",
                        "--secret-key",
                        "montage-dev-secret",
                    ])
                    .arg(self.dir.path());
                c
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server binary installed by scripts/test");
        self.process = Some(Process { child, log: None });
        wait_for_port(self.port).await;
    }
}

/// A PostgreSQL cluster of our own, to restart under load. It runs as the `postgres` user
/// when the tests run as root, as PostgreSQL requires.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

fn postgres_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed by scripts/test")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin").join(tool)))
        .filter(|path| path.exists())
        .collect();
    versions.sort();
    versions.pop().expect("PostgreSQL binaries")
}

/// Runs a PostgreSQL tool as the cluster's owner.
fn as_postgres_owner(tool: &str, args: &[&str]) {
    let running_as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if running_as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(postgres_bin(tool));
        c
    } else {
        Command::new(postgres_bin(tool))
    };
    let output = command.args(args).stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The postgres user must be able to enter and own the cluster directory.
        Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().to_str().unwrap().to_owned();
        as_postgres_owner(
            "initdb",
            &["-D", &data, "-U", "montage", "--auth=trust", "-E", "UTF8"],
        );
        let server = Self {
            port: free_port(),
            dir,
        };
        server.resume();
        let admin = server.url("postgres");
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::PgConnection::establish(&admin).unwrap();
            diesel::sql_query("CREATE DATABASE montage")
                .execute(&mut conn)
                .unwrap();
        })
        .await
        .unwrap();
        server
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://montage@127.0.0.1:{}/{database}", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().to_str().unwrap().to_owned()
    }

    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.data()
        );
        let log = format!("{}/server.log", self.data());
        as_postgres_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    pub fn stop(&self) {
        as_postgres_owner("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(postgres_bin("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = Command::new(postgres_bin("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}
