//! Examines library clips no job has examined yet (direct uploads, imports, and saved
//! uploads whose job failed first): probe, highlight analysis and thumbnail, in the media
//! sandbox like any job. A clip that is not usable video is REJECTED with the reason; a
//! failure of ours leaves it PENDING for a later pass.

use std::{path::Path, sync::Arc};

use db::models::ClipRow;
use domain::error::ServiceError;
use engine::tasks::{Pass, Task as BackgroundTask};

use crate::process::{record_examination, WorkerContext};
use crate::sandbox::{ClipInput, ClipReport, SandboxError};

/// How long a clip taken for examination is this worker's before another may take it.
const HOLD_MINUTES: i64 = 10;

pub struct Examination {
    pub context: Arc<WorkerContext>,
}

impl BackgroundTask for Examination {
    const NAME: &'static str = "clip examination";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let hold = chrono::Duration::minutes(HOLD_MINUTES);
        let Some(clip) = self.context.clips.take_pending(1, hold).await?.pop() else {
            return Ok(Pass::Idle);
        };
        examine(&self.context, &clip).await;
        Ok(Pass::More)
    }
}

/// What examining a clip came to, other than a report.
enum Refusal {
    /// Not usable video: the owner reads why.
    Rejected(String),
    /// Ours (storage, the sandbox): try again later.
    Failed(String),
}

async fn examine(context: &WorkerContext, clip: &ClipRow) {
    let scratch = context.scratch_dir.join(format!("clip-{}", clip.id));
    let thumbnail = scratch.join("thumbnail.jpg");
    let outcome = examine_in(context, clip, &scratch, &thumbnail).await;
    let outcome = match outcome {
        Ok(report) => {
            telemetry::metrics::clip_analysis(false);
            record_examination(context, clip, report, Some(&thumbnail)).await;
            Ok(())
        }
        Err(Refusal::Rejected(reason)) => {
            tracing::info!(clip_id = %clip.id, %reason, "clip rejected");
            context.clips.reject(clip, reason).await
        }
        Err(Refusal::Failed(why)) => {
            tracing::warn!(clip_id = %clip.id, %why, "could not examine a clip; will retry");
            Ok(())
        }
    };
    if let Err(err) = outcome {
        tracing::warn!(clip_id = %clip.id, error = %err, "could not record a clip's rejection");
    }
    let _ = tokio::fs::remove_dir_all(&scratch).await;
}

async fn examine_in(
    context: &WorkerContext,
    clip: &ClipRow,
    scratch: &Path,
    thumbnail: &Path,
) -> Result<ClipReport, Refusal> {
    let failed = |err: &dyn std::fmt::Display| Refusal::Failed(err.to_string());
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|e| failed(&e))?;
    let path = scratch.join("clip");
    context
        .storage
        .download_to(&clip.storage_key, &path)
        .await
        .map_err(|e| failed(&e))?;
    let clip_input = ClipInput {
        path,
        label: clip.label.clone(),
        analysis: None,
        thumbnail: Some(thumbnail.to_owned()),
        facecam: None,
    };
    // No formats: examine only.
    let request = context.own_media_request(clip.id, vec![clip_input], scratch, Vec::new());
    match context.run_own_media(&request).await {
        Ok(Ok(mut done)) => done.clips.pop().ok_or_else(|| failed(&"no report")),
        Ok(Err(SandboxError::Failed { message, .. } | SandboxError::Crashed(message))) => {
            Err(Refusal::Rejected(message))
        }
        Ok(Err(err)) => Err(failed(&err)),
        Err(_) => Err(Refusal::Rejected(format!(
            "{} could not be examined within {} s",
            clip.label,
            context.job_timeout.as_secs()
        ))),
    }
}
