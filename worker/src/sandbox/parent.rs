//! Media mode: the worker side. Starts the child with its caps, feeds it the request,
//! relays its progress, and kills it the moment the job must stop.

use std::{
    io,
    os::unix::process::ExitStatusExt as _,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use domain::jobs::{FailureCode, Stage};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::watch,
};

use super::{MediaDone, MediaMessage, MediaRequest, MEDIA_MODE_ARG};

/// How often a running media process is checked for a stop request.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The end of the child's stderr kept for the log when it crashes.
const STDERR_TAIL: usize = 4096;

#[derive(Debug, Clone, Copy)]
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
}

impl MediaSandbox {
    /// `program` defaults to the running binary (the worker), which has a media mode.
    pub fn new(program: Option<PathBuf>, limits: SandboxLimits) -> io::Result<Self> {
        let program = match program {
            Some(program) => program,
            None => std::env::current_exe()?,
        };
        Ok(Self { program, limits })
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
        let mut child = self.spawn(request)?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut line = serde_json::to_vec(request).expect("requests serialise");
        line.push(b'\n');
        stdin.write_all(&line).await?;
        drop(stdin);
        let stderr = tokio::spawn(tail(child.stderr.take().expect("piped")));
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut outcome = None;
        let mut ticker = tokio::time::interval(STOP_POLL);
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => match serde_json::from_str::<MediaMessage>(&line) {
                        Ok(MediaMessage::Progress { stage, percent }) => {
                            progress.send_replace((stage, percent));
                        }
                        Ok(ended) => outcome = Some(ended),
                        Err(err) => tracing::warn!(error = %err, "unreadable line from the media process"),
                    },
                    Ok(None) | Err(_) => break,
                },
                _ = ticker.tick() => if stop.load(Ordering::Acquire) {
                    kill(&mut child).await;
                    return Err(SandboxError::Stopped);
                },
            }
        }
        let status = wait_or_stop(&mut child, stop, &mut ticker).await?;
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

    fn spawn(&self, request: &MediaRequest) -> io::Result<Child> {
        let mut command = Command::new(&self.program);
        command
            .arg(MEDIA_MODE_ARG)
            .arg("--job")
            .arg(request.job_id.to_string())
            .current_dir(&request.scratch)
            // glibc reserves 64 MiB of address space per thread arena; a few arenas are
            // plenty for libav and keep the address-space cap meaningful.
            .env("MALLOC_ARENA_MAX", "2")
            // Frames of a few MiB each would otherwise be mmapped, zeroed by the kernel and
            // unmapped again, frame after frame: keeping them in the heap saved 25 % of the
            // process's system time (measured, docs/performance.md).
            .env("MALLOC_MMAP_THRESHOLD_", "134217728")
            .env("MALLOC_TRIM_THRESHOLD_", "268435456")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let limits = self.limits;
        // SAFETY: only async-signal-safe calls (setrlimit, prctl) between fork and exec.
        unsafe {
            command.pre_exec(move || confine(limits));
        }
        command.spawn()
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

/// Applied in the child between fork and exec.
fn confine(limits: SandboxLimits) -> io::Result<()> {
    let set = |resource, soft: u64, hard: u64| {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    set(libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)?;
    // SIGXCPU at the soft limit; the kernel's SIGKILL a little later if it is ignored.
    set(
        libc::RLIMIT_CPU,
        limits.cpu_seconds,
        limits.cpu_seconds.saturating_add(5),
    )?;
    // No core files of large media processes.
    set(libc::RLIMIT_CORE, 0, 0)?;
    // A worker that dies (even by SIGKILL) takes its media process with it.
    // SAFETY: prctl with a signal number.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

async fn kill(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The exit status, unless a stop comes first.
async fn wait_or_stop(
    child: &mut Child,
    stop: &AtomicBool,
    ticker: &mut tokio::time::Interval,
) -> Result<ExitStatus, SandboxError> {
    loop {
        tokio::select! {
            status = child.wait() => return Ok(status?),
            _ = ticker.tick() => if stop.load(Ordering::Acquire) {
                kill(child).await;
                return Err(SandboxError::Stopped);
            },
        }
    }
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
