//! The scale bench's stand-in for a render (`scripts/bench scale`): the attempt goes through
//! everything the engine does (delivery, claim, lease renewal, progress and its events, the
//! end), and only the media work is replaced by a wait with progress ticks. Built only with
//! the `scale-bench` feature.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use domain::error::ServiceError;
use uuid::Uuid;

use crate::sandbox::SandboxError;
use crate::stop::Stop;

/// Progress is reported as often as the media process's is: twice a second.
const TICK: Duration = Duration::from_millis(500);

pub struct SimulatedRender {
    /// How long each render takes.
    length: Duration,
    /// Where each finished render appends its job's id: the bench counts a job found twice
    /// as a job run twice. Appended before the job's end is written.
    effects: Mutex<std::fs::File>,
}

impl SimulatedRender {
    pub fn new(length: Duration, effects: PathBuf) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(effects)?;
        Ok(Self {
            length,
            effects: Mutex::new(file),
        })
    }

    /// Waits out the render, reporting its percent each tick, unless the job is stopped.
    pub(crate) async fn wait<F, Fut>(&self, stop: &Stop, mut report: F) -> Result<(), SandboxError>
    where
        F: FnMut(u8) -> Fut,
        Fut: Future<Output = Result<(), ServiceError>>,
    {
        let ticks = (self.length.as_millis() / TICK.as_millis()).max(1) as u32;
        for tick in 1..=ticks {
            tokio::time::sleep(TICK).await;
            stop.check()?;
            if let Err(err) = report(5 + (85 * tick / ticks) as u8).await {
                tracing::warn!(error = %err, "could not record progress");
            }
        }
        Ok(())
    }

    /// Notes that `job_id`'s render finished.
    pub(crate) fn record_effect(&self, job_id: Uuid) -> std::io::Result<()> {
        let mut effects = self.effects.lock().expect("no writer panics");
        effects.write_all(format!("{job_id}\n").as_bytes())
    }
}
