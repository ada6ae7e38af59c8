//! Media mode (`worker media`): the fork server. Starting a process that links libav costs
//! about 80 ms of CPU (mapping and relocating some 220 shared libraries), more than a trivial
//! job's whole work. So one process per worker starts once, loads libav, never touches a
//! clip, and forks: each job still gets a fresh process of its own, copied from a clean one.
//!
//! The worker sends one [`Launch`] per job on a SEQPACKET socket (this process's stdin), with
//! three descriptors: the job's stdout and stderr pipes and its control socket. The server
//! forks the media process and watches it (a pidfd). It kills the process as soon as the
//! worker writes to or closes the control socket, and writes the raw wait status there when
//! the process ends. The server is single-threaded (so forking it is safe) and the only one
//! to reap its children, so a kill can never reach a recycled pid.

use std::{
    io::{self, IoSlice, IoSliceMut, Write as _},
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    panic::{catch_unwind, AssertUnwindSafe},
    process::ExitCode,
};

use rustix::{
    event::{poll, PollFd, PollFlags},
    net::{
        recvmsg, send, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
        SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    },
    process::{getpid, getppid, pidfd_open, Pid, PidfdFlags},
};
use serde::{Deserialize, Serialize};

use super::{child::serve, MediaRequest, SandboxLimits};

/// The largest [`Launch`] message; a job's request is a few KiB.
pub(super) const MAX_LAUNCH_BYTES: usize = 256 * 1024;
/// stdout, stderr, control.
const LAUNCH_FDS: usize = 3;
/// Exit code of a media process that panicked.
const PANICKED: i32 = 101;

/// One job for the fork server.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Launch {
    pub request: MediaRequest,
    pub limits: SandboxLimits,
}

/// The descriptors a job's media process gets, in the order they travel.
pub(super) struct LaunchFds<'a> {
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub control: BorrowedFd<'a>,
}

/// Sends one launch to the fork server over `socket`.
pub(super) fn send_launch(
    socket: BorrowedFd<'_>,
    launch: &[u8],
    fds: LaunchFds<'_>,
) -> io::Result<()> {
    if launch.len() > MAX_LAUNCH_BYTES {
        return Err(io::Error::other(
            "media request too large for the fork server",
        ));
    }
    let fds = [fds.stdout, fds.stderr, fds.control];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(LAUNCH_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        socket,
        &[IoSlice::new(launch)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// The entry point of `worker media`: serves launches until the worker goes away.
pub fn run_media_mode() -> ExitCode {
    telemetry::logs::init_stderr("warn");
    crate::media::init();
    let socket = io::stdin();
    let mut buffer = vec![0u8; MAX_LAUNCH_BYTES];
    let mut running: Vec<Running> = Vec::new();
    loop {
        let (launch_waiting, events) = match wait_for_events(socket.as_fd(), &running) {
            Ok(ready) => ready,
            Err(err) => {
                tracing::error!(error = %err, "the fork server cannot wait for events");
                return ExitCode::FAILURE;
            }
        };
        for (index, event) in events.into_iter().enumerate().rev() {
            match event {
                Event::Quiet => {}
                Event::StopAsked => running[index].kill(),
                Event::Exited => running.swap_remove(index).report(),
            }
        }
        if launch_waiting {
            match receive(socket.as_fd(), &mut buffer) {
                Ok(Some((launch, fds))) => match fork_media(&launch, fds) {
                    Ok(process) => running.push(process),
                    Err(err) => tracing::error!(error = %err, "could not fork a media process"),
                },
                // The worker is gone: so are its jobs.
                Ok(None) => {
                    running.iter_mut().for_each(Running::kill);
                    return ExitCode::SUCCESS;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => tracing::warn!(error = %err, "unusable launch message"),
            }
        }
    }
}

/// A media process the server has forked and not yet reaped.
struct Running {
    pid: libc::pid_t,
    /// Readable once the process has ended.
    exited: OwnedFd,
    control: OwnedFd,
    killed: bool,
}

/// What happened to one running process while the server waited.
enum Event {
    Quiet,
    StopAsked,
    Exited,
}

impl Running {
    fn kill(&mut self) {
        if !self.killed {
            // SAFETY: an unreaped child of ours: the pid cannot have been recycled.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.killed = true;
        }
    }

    /// Reaps the process and tells the worker how it ended.
    fn report(self) {
        let mut status = 0;
        // SAFETY: waiting for our own child, which has ended, with a valid out pointer.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } == -1
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        // Nobody may be listening any more: a stopped job has moved on.
        let _ = send(&self.control, &status.to_le_bytes(), SendFlags::NOSIGNAL);
    }
}

/// Blocks until the socket or a running process has something: whether a launch waits,
/// and one event per process.
fn wait_for_events(socket: BorrowedFd<'_>, running: &[Running]) -> io::Result<(bool, Vec<Event>)> {
    let mut fds = vec![PollFd::from_borrowed_fd(socket, PollFlags::IN)];
    // Which process, and whether it is its control socket, for each entry after the first.
    let mut owners = Vec::with_capacity(2 * running.len());
    for (index, process) in running.iter().enumerate() {
        fds.push(PollFd::new(&process.exited, PollFlags::IN));
        owners.push((index, false));
        // A killed process's control socket would stay readable; only its exit matters now.
        if !process.killed {
            fds.push(PollFd::new(&process.control, PollFlags::IN));
            owners.push((index, true));
        }
    }
    loop {
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
            Ok(_) => break,
        }
    }
    let mut events: Vec<Event> = running.iter().map(|_| Event::Quiet).collect();
    for (fd, &(index, is_control)) in fds[1..].iter().zip(&owners) {
        match (fd.revents().is_empty(), is_control) {
            (true, _) => {}
            (false, false) => events[index] = Event::Exited,
            // A byte, an EOF or an error: the job is to stop, or nobody waits for it.
            (false, true) if !matches!(events[index], Event::Exited) => {
                events[index] = Event::StopAsked;
            }
            (false, true) => {}
        }
    }
    Ok((!fds[0].revents().is_empty(), events))
}

/// The next launch; `None` when the worker has closed the socket.
fn receive(
    socket: BorrowedFd<'_>,
    buffer: &mut [u8],
) -> io::Result<Option<(Launch, [OwnedFd; 3])>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(LAUNCH_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message = recvmsg(
        socket,
        &mut [IoSliceMut::new(buffer)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let fds: Vec<OwnedFd> = control
        .drain()
        .filter_map(|message| match message {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds),
            _ => None,
        })
        .flatten()
        .collect();
    if message.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if message.flags.contains(ReturnFlags::TRUNC) || message.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::other("launch message truncated"));
    }
    let fds: [OwnedFd; LAUNCH_FDS] = fds
        .try_into()
        .map_err(|_| io::Error::other("a launch needs exactly three descriptors"))?;
    let launch = serde_json::from_slice(&buffer[..message.bytes]).map_err(io::Error::other)?;
    Ok(Some((launch, fds)))
}

/// Forks the job's media process; the server's copies of stdout and stderr close on return.
fn fork_media(launch: &Launch, [stdout, stderr, control]: [OwnedFd; 3]) -> io::Result<Running> {
    let server = getpid();
    // SAFETY: this process is single-threaded, so the child may do anything it could.
    let pid = match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {
            let code = catch_unwind(AssertUnwindSafe(|| {
                media_process(server, launch, stdout, stderr)
            }));
            // SAFETY: ending the forked process without running the server's exit handlers.
            unsafe { libc::_exit(code.unwrap_or(PANICKED)) }
        }
        pid => pid,
    };
    let exited = Pid::from_raw(pid)
        .ok_or(rustix::io::Errno::SRCH)
        .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()));
    match exited {
        Ok(exited) => Ok(Running {
            pid,
            exited,
            control,
            killed: false,
        }),
        Err(err) => {
            // Unwatchable, so it must not run; the worker reads the closed control as a failure.
            // SAFETY: our unreaped child, as in `Running::kill`.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            Err(err.into())
        }
    }
}

/// The media process: its own stdio, the scratch directory, the caps, then the job.
fn media_process(server: Pid, launch: &Launch, stdout: OwnedFd, stderr: OwnedFd) -> i32 {
    let setup = move || -> io::Result<()> {
        detach_stdin()?;
        redirect(&stdout, libc::STDOUT_FILENO)?;
        redirect(&stderr, libc::STDERR_FILENO)?;
        drop((stdout, stderr));
        close_the_rest()?;
        std::env::set_current_dir(&launch.request.scratch)?;
        die_with_parent(server)?;
        cap(launch.limits)
    };
    if let Err(err) = setup() {
        let _ = writeln!(io::stderr(), "media process setup failed: {err}");
        return 1;
    }
    // Every message is flushed as it is sent.
    serve(&launch.request);
    0
}

fn redirect(from: &OwnedFd, to: i32) -> io::Result<()> {
    // SAFETY: dup2 onto a standard descriptor this process owns.
    if unsafe { libc::dup2(from.as_raw_fd(), to) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor above stderr: the server's, other jobs' control sockets and
/// pidfds. No exec follows the fork, so close-on-exec does not do it.
fn close_the_rest() -> io::Result<()> {
    // SAFETY: close_range(2) on descriptors this process owns; none is used afterwards.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts /dev/null where the server's socket was, so no job process holds it.
fn detach_stdin() -> io::Result<()> {
    let null = OwnedFd::from(std::fs::File::open("/dev/null")?);
    redirect(&null, libc::STDIN_FILENO)
}

/// SIGKILL when the parent dies, and no window where it already has.
pub(super) fn die_with_parent(parent: Pid) -> io::Result<()> {
    // SAFETY: prctl with a signal number.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if getppid() != Some(parent) {
        return Err(io::Error::other("the parent is already gone"));
    }
    Ok(())
}

/// The media process's caps: address space, CPU time, no core files.
fn cap(limits: SandboxLimits) -> io::Result<()> {
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
    set(libc::RLIMIT_CORE, 0, 0)
}
