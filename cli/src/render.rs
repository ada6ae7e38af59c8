//! `montage render` and `montage download`: the upload (a bar per file), the job followed
//! live, and the outputs saved.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use domain::sniff;
use futures::TryStreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{header, Method};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api::{call, data, refusal, text, Api};
use crate::error::CliError;
use crate::follow;
use crate::report::Report;

/// The job's options; the service's defaults for any left out.
#[derive(clap::Args)]
pub struct Options {
    /// cinematic, gaming, energetic or chill.
    #[arg(long)]
    pub style: Option<String>,
    /// landscape, portrait, or both separated by a comma.
    #[arg(long)]
    pub formats: Option<String>,
    /// Seconds of montage.
    #[arg(long)]
    pub duration: Option<u32>,
    /// A track from `montage music`: the cuts land on its beat.
    #[arg(long)]
    pub music: Option<String>,
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
    let created = data(call(api.request(Method::POST, "/api/v2/jobs").multipart(form)).await?)?;
    let job_id = text(&created, "job_id")?.to_owned();
    report.line(&format!("job {job_id} created"));
    let Some(output) = output else {
        report.job(&created);
        return Ok(ExitCode::SUCCESS);
    };
    let view = follow::until_done(api, report, &job_id).await?;
    let status = view["status"].as_str().unwrap_or_default();
    if status != "SUCCESS" {
        return Err(CliError::JobFailed {
            job_id,
            status: status.to_owned(),
            code: view["error"]["code"].as_str().unwrap_or(status).to_owned(),
            message: view["error"]["message"]
                .as_str()
                .unwrap_or("the job did not finish")
                .to_owned(),
        });
    }
    let files = download(api, report, &view, None, output).await?;
    report.done(&json!({"job_id": job_id, "status": status, "files": files}));
    Ok(ExitCode::SUCCESS)
}

/// The job form: options first, then each clip streamed from disk with its own bar.
async fn form(report: &Report, clips: &[PathBuf], options: &Options) -> Result<Form, CliError> {
    let mut form = Form::new();
    if let Some(style) = &options.style {
        form = form.text("style", style.clone());
    }
    if let Some(formats) = &options.formats {
        form = form.text("formats", formats.clone());
    }
    if let Some(duration) = options.duration {
        form = form.text("target_duration", duration.to_string());
    }
    if let Some(music) = &options.music {
        form = form.text("music_id", music.clone());
    }
    for path in clips {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|err| CliError::local(path.display(), err))?;
        sniff(path, &mut file).await?;
        let size = file
            .metadata()
            .await
            .map_err(|err| CliError::local(path.display(), err))?
            .len();
        let name = path
            .file_name()
            .map_or_else(|| "clip".into(), |n| n.to_string_lossy().into_owned());
        let bar = report.transfer(&name, size);
        let stream = tokio_util::io::ReaderStream::new(file).inspect_ok(move |chunk| {
            bar.inc(chunk.len() as u64);
            if bar.position() >= size {
                bar.finish();
            }
        });
        let body = reqwest::Body::wrap_stream(stream);
        form = form.part(
            "files",
            Part::stream_with_length(body, size).file_name(name),
        );
    }
    Ok(form)
}

/// Refuses a file that is not a video the service reads, as the service would at its first
/// bytes, but before anything is sent; leaves the file at its start.
async fn sniff(path: &Path, file: &mut tokio::fs::File) -> Result<(), CliError> {
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    let local = |err| CliError::local(path.display(), err);
    (&mut *file)
        .take(sniff::SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .await
        .map_err(local)?;
    file.rewind().await.map_err(local)?;
    match sniff::container(&head) {
        Some(_) => Ok(()),
        None => Err(CliError::local(
            path.display(),
            format!(
                "not a video file the service can read ({}); nothing was uploaded",
                sniff::ACCEPTED
            ),
        )),
    }
}

/// Saves the job's outputs (or the one in `format`) into `dir`; their paths.
pub async fn download(
    api: &Api,
    report: &Report,
    view: &Value,
    format: Option<&str>,
    dir: &Path,
) -> Result<Vec<String>, CliError> {
    let job_id = text(view, "job_id")?;
    let listed: Vec<String> = view["outputs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o["format"].as_str().map(str::to_owned))
        .collect();
    // Without outputs, asking for one gets the service's own reason (not ready, expired).
    let formats = match format {
        Some(format) => vec![format.to_owned()],
        None if listed.is_empty() => vec!["landscape".to_owned()],
        None => listed,
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|err| CliError::local(dir.display(), err))?;
    let mut saved = Vec::new();
    for format in formats {
        let path = dir.join(format!("{job_id}-{format}.mp4"));
        let route = format!("/api/v2/jobs/{job_id}/download?format={format}");
        save(api, report, &route, &path).await?;
        report.line(&format!("saved {}", path.display()));
        saved.push(path.display().to_string());
    }
    Ok(saved)
}

/// Follows the download route's redirect (to a short-lived storage link, which gets no
/// bearer token) and streams the file to `path`.
async fn save(api: &Api, report: &Report, route: &str, path: &Path) -> Result<(), CliError> {
    let redirect = api.request(Method::GET, route).send().await?;
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
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let bar = report.transfer(&name, response.content_length().unwrap_or(0));
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
