//! Stopping a running job: why, and the flag its work checks.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::sandbox::SandboxError;

/// Why a running job has to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Cancelled = 1,
    TimedOut = 2,
    /// Another worker took the job over (this one stalled past its lease), or it was deleted.
    LeaseLost = 3,
    /// This worker is shutting down and the grace period ran out.
    ShuttingDown = 4,
}

/// Raised by the watcher, checked by the job between stages and by the renderer every frame.
#[derive(Default)]
pub(crate) struct Stop {
    /// Raised once a stop is requested; the media process watches it every frame.
    pub(crate) flag: AtomicBool,
    reason: AtomicU8,
}

impl Stop {
    pub(crate) fn request(&self, reason: StopReason) {
        self.reason.store(reason as u8, Ordering::Relaxed);
        self.flag.store(true, Ordering::Release);
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::Relaxed) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::TimedOut),
            3 => Some(StopReason::LeaseLost),
            4 => Some(StopReason::ShuttingDown),
            _ => None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), SandboxError> {
        if self.flag.load(Ordering::Acquire) {
            Err(SandboxError::Stopped)
        } else {
            Ok(())
        }
    }
}
