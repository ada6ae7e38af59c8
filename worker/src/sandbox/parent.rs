//! The worker side: hands each job to the fork server, relays the media process's
//! progress, and has it killed the moment the job must stop.

use std::{
    io,
    os::{
        fd::{AsFd as _, OwnedFd},
        unix::process::ExitStatusExt as _,
    },
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use domain::jobs::{FailureCode, Stage};
use rustix::{
    net::{socketpair, AddressFamily, SocketFlags, SocketType},
    process::getpid,
};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{
        unix::{pipe, OwnedReadHalf},
        UnixStream,
    },
    process::{Child, Command},
    sync::{watch, Mutex},
};

use super::{
    fork_server::{die_with_parent, send_launch, Launch, LaunchFds},
    MediaDone, MediaMessage, MediaRequest, MEDIA_MODE_ARG,
};

/// How often a running media process is checked for a stop request.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The end of the child's stderr kept for the log when it crashes.
const STDERR_TAIL: usize = 4096;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SandboxLimits {
    /// Address-space cap (RLIMIT_AS).
    pub memory_bytes: u64,
    /// CPU-time cap (RLIMIT_CPU), all threads together.
    pub cpu_seconds: u64,
}

/// How a media run ended, other than with outputs.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The media process reported a failure of the job's input or render.
    #[error("{message}")]
    Failed { code: FailureCode, message: String },
    /// The media process died without reporting (signal, abort, memory or CPU cap).
    #[error("{0}")]
    Crashed(String),
    /// The job was told to stop; the process was killed.
    #[error("stopped")]
    Stopped,
    /// The process could not be started or talked to.
    #[error("media process: {0}")]
    Io(#[from] io::Error),
}

pub struct MediaSandbox {
    program: PathBuf,
    limits: SandboxLimits,
    /// Started on the first job, and again whenever it is found gone.
    server: Mutex<Option<ForkServer>>,
}

/// The worker's fork server: a socket to it, and the process, killed with the worker.
struct ForkServer {
    socket: OwnedFd,
    _process: Child,
}

/// A launched media process, as the worker holds it.
struct Launched {
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
    control: UnixStream,
}

impl MediaSandbox {
    /// `program` defaults to the running binary (the worker), which has a media mode.
    pub fn new(program: Option<PathBuf>, limits: SandboxLimits) -> io::Result<Self> {
        let program = match program {
            Some(program) => program,
            None => std::env::current_exe()?,
        };
        Ok(Self {
            program,
            limits,
            server: Mutex::new(None),
        })
    }

    /// Runs one job's media work. Progress goes to `progress`; a raised `stop` kills the
    /// process within [`STOP_POLL`].
    pub async fn run(
        &self,
        request: &MediaRequest,
        stop: &AtomicBool,
        progress: &watch::Sender<(Stage, u8)>,
    ) -> Result<MediaDone, SandboxError> {
        let started = Instant::now();
        let launched = self.launch(request).await?;
        let stderr = tokio::spawn(tail(launched.stderr));
        let (status_half, mut kill_half) = launched.control.into_split();
        let mut exit = tokio::spawn(exit_status(status_half));
        let mut lines = BufReader::new(launched.stdout).lines();
        let (mut outcome, mut reading) = (None, true);
        let mut ticker = tokio::time::interval(STOP_POLL);
        let status = loop {
            tokio::select! {
                line = lines.next_line(), if reading => match line {
                    Ok(Some(line)) => match serde_json::from_str::<MediaMessage>(&line) {
                        Ok(MediaMessage::Progress { stage, percent }) => {
                            progress.send_replace((stage, percent));
                        }
                        Ok(ended) => outcome = Some(ended),
                        Err(err) => tracing::warn!(error = %err, "unreadable line from the media process"),
                    },
                    Ok(None) | Err(_) => reading = false,
                },
                // Only once stdout is drained, so that no line is left behind.
                status = &mut exit, if !reading => break status.map_err(io::Error::other)??,
                _ = ticker.tick() => if stop.load(Ordering::Acquire) {
                    // The fork server kills the process on any byte; wait until it has.
                    let _ = kill_half.write_all(b"k").await;
                    let _ = exit.await;
                    return Err(SandboxError::Stopped);
                },
            }
        };
        match outcome {
            Some(MediaMessage::Done(mut done)) if status.success() => {
                done.timings.count_probe(started);
                Ok(done)
            }
            Some(MediaMessage::Failed { code, message }) => {
                Err(SandboxError::Failed { code, message })
            }
            _ => {
                let stderr = stderr.await.unwrap_or_default();
                tracing::warn!(job_id = %request.job_id, %status, %stderr, "media process crashed");
                Err(SandboxError::Crashed(self.describe_crash(status, &stderr)))
            }
        }
    }

    /// Hands the job to the fork server, starting it first if it is not running.
    async fn launch(&self, request: &MediaRequest) -> io::Result<Launched> {
        let (stdout_writer, stdout) = pipe::pipe()?;
        let (stderr_writer, stderr) = pipe::pipe()?;
        let (control, theirs) = std::os::unix::net::UnixStream::pair()?;
        let (stdout_writer, stderr_writer) = (
            stdout_writer.into_blocking_fd()?,
            stderr_writer.into_blocking_fd()?,
        );
        let launch = serde_json::to_vec(&Launch {
            request: request.clone(),
            limits: self.limits,
        })
        .map_err(io::Error::other)?;
        let fds = || LaunchFds {
            stdout: stdout_writer.as_fd(),
            stderr: stderr_writer.as_fd(),
            control: theirs.as_fd(),
        };
        let mut server = self.server.lock().await;
        let sent = match server.as_ref() {
            Some(running) => send_launch(running.socket.as_fd(), &launch, fds()),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        if let Err(err) = sent {
            if server.is_some() {
                tracing::warn!(error = %err, "the media fork server is gone; starting another");
            }
            let started = server.insert(ForkServer::start(&self.program)?);
            send_launch(started.socket.as_fd(), &launch, fds())?;
        }
        drop(server);
        control.set_nonblocking(true)?;
        Ok(Launched {
            stdout,
            stderr,
            control: UnixStream::from_std(control)?,
        })
    }

    /// Words for the job's owner, from how the process ended.
    fn describe_crash(&self, status: ExitStatus, stderr: &str) -> String {
        let why = if stderr.contains("memory allocation of") {
            format!(
                "ran out of its {} MiB memory limit",
                self.limits.memory_bytes >> 20
            )
        } else {
            match status.signal() {
                Some(libc::SIGXCPU) => {
                    format!("used up its {} s CPU-time limit", self.limits.cpu_seconds)
                }
                Some(signal) => format!("was ended by signal {}", signal_name(signal)),
                None => format!("exited with status {}", status.code().unwrap_or(-1)),
            }
        };
        format!("Processing these clips crashed the media process: it {why}")
    }
}

impl ForkServer {
    fn start(program: &Path) -> io::Result<Self> {
        let (socket, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let mut command = Command::new(program);
        command
            .arg(MEDIA_MODE_ARG)
            // glibc reserves 64 MiB of address space per thread arena; a few arenas are
            // plenty for libav and keep the address-space cap meaningful.
            .env("MALLOC_ARENA_MAX", "2")
            // Frames of a few MiB each would otherwise be mmapped, zeroed by the kernel and
            // unmapped again, frame after frame: keeping them in the heap saved 25 % of the
            // process's system time (measured, docs/performance.md).
            .env("MALLOC_MMAP_THRESHOLD_", "134217728")
            .env("MALLOC_TRIM_THRESHOLD_", "268435456")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let worker = getpid();
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            command.pre_exec(move || die_with_parent(worker));
        }
        Ok(Self {
            socket,
            _process: command.spawn()?,
        })
    }
}

/// The media process's raw wait status, as the fork server reports it.
async fn exit_status(mut control: OwnedReadHalf) -> io::Result<ExitStatus> {
    let mut raw = [0u8; 4];
    control.read_exact(&mut raw).await?;
    Ok(ExitStatus::from_raw(i32::from_le_bytes(raw)))
}

/// The last [`STDERR_TAIL`] bytes the child wrote to stderr.
async fn tail(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stderr.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..read]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        _ => return signal.to_string(),
    };
    name.to_owned()
}
