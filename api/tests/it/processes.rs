//! Real processes for fault-injection tests: the worker binary, and private Redis and S3
//! servers that a test may stop and restart without disturbing the shared ones.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
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

/// The workspace's `worker` binary, built next to this test binary by `cargo nextest run
/// --workspace` (what `scripts/test` runs).
fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("worker");
    assert!(
        binary.exists(),
        "{} is missing: build the whole workspace (scripts/test does)",
        binary.display()
    );
    binary
}

/// A child process that is killed when the test ends, however it ends.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// Starts the worker binary with the test app's settings.
pub fn spawn_worker(settings: &HashMap<String, String>) -> Process {
    let child = Command::new(worker_binary())
        .envs(settings)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("worker binary starts");
    Process { child }
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
    /// s3s-fs over a directory, with the development credentials.
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
                let mut c = Command::new("s3s-fs");
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
        self.process = Some(Process { child });
        wait_for_port(self.port).await;
    }
}
