//! Each style's short sample, which the web app plays beside the style's name: rendered by
//! the service itself, in the media sandbox like any job, from generated clips the scripts
//! and the Dockerfile install, and kept in storage, so it is made once per deployment (and
//! again when `STYLE_SAMPLES_PREFIX` changes). Two workers starting together may both render
//! a sample; the second upload replaces the first with the same thing.

use std::{path::Path, path::PathBuf, sync::Arc};

use domain::error::ServiceError;
use domain::jobs::{style_sample_key, FrameRate, OutputFormat, Style, STYLE_SAMPLES_PREFIX};
use engine::tasks::{Pass, Task as BackgroundTask};
use uuid::Uuid;

use crate::process::WorkerContext;
use crate::sandbox::{ClipInput, MediaRequest};

pub struct StyleSamples {
    pub context: Arc<WorkerContext>,
    /// The generated clips the samples are cut from.
    pub clips: PathBuf,
}

impl BackgroundTask for StyleSamples {
    const NAME: &'static str = "style samples";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let storage = &self.context.storage;
        let kept = storage
            .keys_under(STYLE_SAMPLES_PREFIX)
            .await
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let missing = Style::ALL
            .iter()
            .copied()
            .find(|style| !kept.contains(&style_sample_key(*style)));
        let Some(style) = missing else {
            return Ok(Pass::Idle);
        };
        let scratch = self.context.scratch_dir.join(format!("sample-{style}"));
        let rendered = render(&self.context, &self.clips, style, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        rendered?;
        tracing::info!(%style, "style sample rendered");
        Ok(Pass::More)
    }
}

/// Renders `style`'s sample from the clips in `clips` and stores it.
async fn render(
    context: &WorkerContext,
    clips: &Path,
    style: Style,
    scratch: &Path,
) -> Result<(), ServiceError> {
    let failed = |err: &dyn std::fmt::Display| {
        ServiceError::internal(format!("the {style} sample could not be rendered: {err}"))
    };
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|e| failed(&e))?;
    let clips = sample_clips(clips).await.map_err(|e| failed(&e))?;
    let request = MediaRequest {
        style,
        fps: Some(FrameRate::Thirty),
        ..context.own_media_request(Uuid::nil(), clips, scratch, vec![OutputFormat::Landscape])
    };
    let done = context
        .run_own_media(&request)
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&e))?;
    let output = done.outputs.first().ok_or_else(|| failed(&"no output"))?;
    context
        .storage
        .put_file(&style_sample_key(style), &output.path, "video/mp4")
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}

/// The generated clips (the directory's `.mp4` files), in name order.
async fn sample_clips(dir: &Path) -> std::io::Result<Vec<ClipInput>> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    let mut paths = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_some_and(|extension| extension == "mp4") {
            paths.push(path);
        }
    }
    paths.sort();
    let clips = paths.into_iter().map(|path| ClipInput {
        label: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        path,
        analysis: None,
        thumbnail: None,
        facecam: None,
    });
    Ok(clips.collect())
}
