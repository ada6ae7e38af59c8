//! `montage render` and `montage download`: the upload (a bar per file), the job followed
//! live, and the outputs saved.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use contract::jobs::{JobCreated, JobOutputView, JobView};
use domain::facecam::Facecam;
use domain::jobs::{FrameRate, JobStatus, OutputFormat, Style};
use domain::music::TrackId;
use domain::sniff;
use domain::title::Title;
use futures::TryStreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{header, Method};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api::{data, refusal, Api};
use crate::error::CliError;
use crate::follow;
use crate::report::{Report, Saved, SavedFile};

/// The job's options; the service's defaults for any left out.
#[derive(clap::Args)]
pub struct Options {
    /// cinematic, gaming, energetic or chill.
    #[arg(long, value_parser = style)]
    pub style: Option<Style>,
    /// landscape, portrait, or both separated by a comma.
    #[arg(long, value_parser = format, value_delimiter = ',')]
    pub formats: Vec<OutputFormat>,
    /// Seconds of montage.
    #[arg(long)]
    pub duration: Option<u32>,
    /// A track from `montage music`: the cuts land on its beat.
    #[arg(long, value_parser = track)]
    pub music: Option<TrackId>,
    /// Or your own track (MP3, AAC/M4A, Opus/Ogg, FLAC, WAV), uploaded with the clips.
    #[arg(long, value_name = "FILE", conflicts_with = "music")]
    pub music_file: Option<PathBuf>,
    /// Where your camera sits in the clips, x,y,w,h in fractions of the frame (say
    /// 0.75,0.05,0.2,0.3): the portrait cut shows it in its top third.
    #[arg(long, value_parser = facecam)]
    pub facecam: Option<Facecam>,
    /// One line of up to 40 characters shown over the first seconds.
    #[arg(long, value_parser = title)]
    pub title: Option<Title>,
    /// 30 or 60 frames per second; by default 60 when most of the clips are 50 fps or more.
    #[arg(long, value_parser = fps)]
    pub fps: Option<FrameRate>,
}

fn fps(raw: &str) -> Result<FrameRate, String> {
    FrameRate::parse_field("fps", raw).map_err(|err| err.message)
}

fn title(raw: &str) -> Result<Title, String> {
    Title::parse("title", raw).map_err(|err| err.message)
}

fn facecam(raw: &str) -> Result<Facecam, String> {
    Facecam::parse("facecam", raw).map_err(|err| err.message)
}

fn style(raw: &str) -> Result<Style, String> {
    Style::parse_field("style", raw).map_err(|err| err.message)
}

pub fn format(raw: &str) -> Result<OutputFormat, String> {
    OutputFormat::parse_field("format", raw).map_err(|err| err.message)
}

fn track(raw: &str) -> Result<TrackId, String> {
    TrackId::parse("music", raw).map_err(|err| err.message)
}

/// Uploads `clips` as one job; with `output`, follows it and saves its outputs there.
pub async fn run(
    api: &Api,
    report: &Report,
    clips: &[PathBuf],
    options: &Options,
    output: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let form = form(report, clips, options).await?;
    let created: JobCreated =
        data(api.request(Method::POST, "/api/v2/jobs").multipart(form)).await?;
    report.line(&format!("job {} created", created.job_id));
    let Some(output) = output else {
        report.created(&created);
        return Ok(ExitCode::SUCCESS);
    };
    let view = follow::until_done(api, report, created.job_id).await?;
    if view.status != JobStatus::Success {
        let (code, message) = view.error.map_or_else(
            || (view.status.to_string(), "the job did not finish".to_owned()),
            |failure| (failure.code.to_string(), failure.message),
        );
        return Err(CliError::JobFailed {
            job_id: view.job_id.to_string(),
            status: view.status.to_string(),
            code,
            message,
        });
    }
    let saved = download(api, report, &view, None, output).await?;
    report.saved(&saved);
    Ok(ExitCode::SUCCESS)
}

/// The job form: options first, then each clip streamed from disk with its own bar.
async fn form(report: &Report, clips: &[PathBuf], options: &Options) -> Result<Form, CliError> {
    let mut form = Form::new();
    if let Some(style) = options.style {
        form = form.text("style", style.as_str());
    }
    for format in &options.formats {
        form = form.text("formats", format.as_str());
    }
    if let Some(duration) = options.duration {
        form = form.text("target_duration", duration.to_string());
    }
    if let Some(music) = &options.music {
        form = form.text("music_id", music.to_string());
    }
    if let Some(facecam) = options.facecam {
        form = form.text("facecam", facecam.to_string());
    }
    if let Some(title) = &options.title {
        form = form.text("title", title.to_string());
    }
    if let Some(fps) = options.fps {
        form = form.text("fps", fps.fps().to_string());
    }
    for path in clips {
        form = form.part("files", file_part(report, path, &CLIP).await?);
    }
    if let Some(path) = &options.music_file {
        form = form.part("music", file_part(report, path, &MUSIC).await?);
    }
    Ok(form)
}

/// What a file sent with a job must be, recognised as the service recognises it.
struct Kind {
    sniff_len: usize,
    recognised: fn(&[u8]) -> bool,
    refusal: &'static str,
    accepted: &'static str,
}

const CLIP: Kind = Kind {
    sniff_len: sniff::SNIFF_LEN,
    recognised: |head| sniff::container(head).is_some(),
    refusal: "not a video file the service can read",
    accepted: sniff::ACCEPTED,
};

const MUSIC: Kind = Kind {
    sniff_len: sniff::AUDIO_SNIFF_LEN,
    recognised: |head| sniff::audio(head).is_some(),
    refusal: "not an audio file the service can read",
    accepted: sniff::AUDIO_ACCEPTED,
};

/// One file, checked and streamed from disk with its own bar.
async fn file_part(report: &Report, path: &Path, kind: &Kind) -> Result<Part, CliError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|err| CliError::local(path.display(), err))?;
    sniff(path, &mut file, kind).await?;
    let size = file
        .metadata()
        .await
        .map_err(|err| CliError::local(path.display(), err))?
        .len();
    let name = path
        .file_name()
        .map_or_else(|| "clip".into(), |n| n.to_string_lossy().into_owned());
    let bar = report.transfer(&format!("upload {name}"), size);
    let stream = tokio_util::io::ReaderStream::new(file).inspect_ok(move |chunk| {
        bar.inc(chunk.len() as u64);
        if bar.position() >= size {
            bar.finish();
        }
    });
    let body = reqwest::Body::wrap_stream(stream);
    Ok(Part::stream_with_length(body, size).file_name(name))
}

/// Refuses a file the service would refuse at its first bytes, but before anything is
/// sent; leaves the file at its start.
async fn sniff(path: &Path, file: &mut tokio::fs::File, kind: &Kind) -> Result<(), CliError> {
    let mut head = Vec::with_capacity(kind.sniff_len);
    let local = |err| CliError::local(path.display(), err);
    (&mut *file)
        .take(kind.sniff_len as u64)
        .read_to_end(&mut head)
        .await
        .map_err(local)?;
    file.rewind().await.map_err(local)?;
    if (kind.recognised)(&head) {
        return Ok(());
    }
    Err(CliError::local(
        path.display(),
        format!("{} ({}); nothing was uploaded", kind.refusal, kind.accepted),
    ))
}

/// Saves the job's outputs (or the one in `format`) into `dir`.
pub async fn download(
    api: &Api,
    report: &Report,
    view: &JobView,
    format: Option<OutputFormat>,
    dir: &Path,
) -> Result<Saved, CliError> {
    let wanted = |output: &&JobOutputView| format.is_none_or(|format| output.format == format);
    let outputs: Vec<&JobOutputView> = view.outputs.iter().filter(wanted).collect();
    if outputs.is_empty() {
        // Nothing to save: the service says why (not ready, expired, not rendered).
        let format = format.unwrap_or(OutputFormat::Landscape);
        let route = format!("/api/v2/jobs/{}/download?format={format}", view.job_id);
        let answer = api.request(Method::GET, &route).send().await?;
        return Err(refusal(answer).await);
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|err| CliError::local(dir.display(), err))?;
    let mut files = Vec::new();
    for output in outputs {
        let path = dir.join(format!("{}-{}.mp4", view.job_id, output.format));
        save(api, report, output, &path).await?;
        report.line(&format!("saved {}", path.display()));
        files.push(SavedFile {
            format: output.format,
            path,
            width: output.width,
            height: output.height,
            duration: output.duration,
            size: output.size,
        });
    }
    Ok(Saved {
        job_id: view.job_id,
        files,
    })
}

/// Follows the download route's redirect (to a short-lived storage link, which gets no
/// bearer token) and streams the file to `path`.
async fn save(
    api: &Api,
    report: &Report,
    output: &JobOutputView,
    path: &Path,
) -> Result<(), CliError> {
    let redirect = api
        .request(Method::GET, &output.download_url)
        .send()
        .await?;
    if !redirect.status().is_redirection() {
        return Err(refusal(redirect).await);
    }
    let location = redirect
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| CliError::Local("the download answer had no Location".into()))?
        .to_owned();
    let response = reqwest::get(&location).await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let label = format!("download {}", output.format);
    let bar = report.transfer(&label, response.content_length().unwrap_or(0));
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|err| CliError::local(path.display(), err))?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.try_next().await? {
        file.write_all(&chunk)
            .await
            .map_err(|err| CliError::local(path.display(), err))?;
        bar.inc(chunk.len() as u64);
    }
    file.flush()
        .await
        .map_err(|err| CliError::local(path.display(), err))?;
    bar.finish();
    Ok(())
}
