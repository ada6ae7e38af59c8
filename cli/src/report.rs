//! What the command tells its user: progress bars on a terminal, plain progress lines
//! otherwise, and results as text or (with `--json`) one JSON document on standard output.

use std::io::IsTerminal;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use contract::jobs::{JobCreated, JobList, JobView, Progress};
use contract::music::MusicList;
use domain::jobs::{JobStatus, OutputFormat};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::error::CliError;

/// What `render` and `download` end with.
#[derive(Serialize)]
pub struct Saved {
    pub job_id: Uuid,
    pub files: Vec<SavedFile>,
}

/// One output on disk.
#[derive(Serialize)]
pub struct SavedFile {
    pub format: OutputFormat,
    pub path: PathBuf,
    pub width: i32,
    pub height: i32,
    pub duration: f64,
    pub size: i64,
}

pub struct Report {
    json: bool,
    /// Standard error is a terminal: draw bars; otherwise print a line per change.
    interactive: bool,
    bars: MultiProgress,
}

impl Report {
    pub fn new(json: bool) -> Self {
        let interactive = std::io::stderr().is_terminal();
        let target = if interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            json,
            interactive,
            bars: MultiProgress::with_draw_target(target),
        }
    }

    /// A bar of `bytes` for `label` (an upload or a download).
    pub fn transfer(&self, label: &str, bytes: u64) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(bytes));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        bar
    }

    /// A bar of percent for a job's stages.
    pub fn stages(&self) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(100));
        bar.set_style(
            ProgressStyle::with_template("{msg:24!} [{bar:30}] {pos}%")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    }

    /// A line on standard error where no bar is drawn (pipes, CI logs, tests).
    pub fn line(&self, text: &str) {
        if !self.interactive {
            eprintln!("{text}");
        }
    }

    pub fn error(&self, err: &CliError) {
        if self.json {
            let code = match err {
                CliError::Api { code, .. } | CliError::JobFailed { code, .. } => Some(code),
                _ => None,
            };
            println!(
                "{}",
                json!({"error": {"message": err.to_string(), "code": code}})
            );
        } else {
            eprintln!("error: {err}");
        }
    }

    /// `value` as one JSON document, or `text` when not asked for JSON.
    fn answer<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string(value).expect("a JSON value"));
        } else {
            println!("{}", text());
        }
    }

    pub fn signed_in(&self, email: &str, user_id: Uuid) {
        let outcome = json!({"signed_in": email, "user_id": user_id});
        self.answer(&outcome, || format!("signed in as {email}"));
    }

    pub fn signed_out(&self) {
        self.answer(&json!({"signed_out": true}), || "signed out".into());
    }

    /// A job just made.
    pub fn created(&self, job: &JobCreated) {
        self.answer(job, || {
            format!("{}  {:<10} {}", job.job_id, job.status, job.created_at)
        });
    }

    /// One job, as the API shows it.
    pub fn job(&self, view: &JobView) {
        self.answer(view, || {
            summary(view.job_id, view.status, &view.progress, view.created_at)
        });
    }

    /// The music catalogue: one track a line, its id first.
    pub fn music(&self, catalogue: &MusicList) {
        self.answer(catalogue, || {
            let mut lines: Vec<String> = catalogue
                .tracks
                .iter()
                .map(|track| {
                    format!(
                        "{:<28} {:<30} {:<10} {:>4} BPM  {:>3.0} s  {}",
                        track.id,
                        track.title,
                        track.mood,
                        track.bpm.map_or_else(|| "?".into(), |bpm| bpm.to_string()),
                        track.duration_seconds,
                        track.licence,
                    )
                })
                .collect();
            lines.push(format!("{} tracks", catalogue.tracks.len()));
            lines.join("\n")
        });
    }

    /// A page of jobs.
    pub fn jobs(&self, page: &JobList) {
        self.answer(page, || {
            let mut lines: Vec<String> = page
                .jobs
                .iter()
                .map(|job| summary(job.job_id, job.status, &job.progress, job.created_at))
                .collect();
            lines.push(format!("{} of {} jobs", page.jobs.len(), page.total));
            lines.join("\n")
        });
    }

    /// The files a job's outputs were saved to: a line each, with what they hold.
    pub fn saved(&self, saved: &Saved) {
        self.answer(saved, || {
            let mut lines = vec![format!("montage {} saved:", saved.job_id)];
            lines.extend(saved.files.iter().map(|file| {
                format!(
                    "  {:<9} {}x{}  {:.1} s  {:.1} MB  {}",
                    file.format,
                    file.width,
                    file.height,
                    file.duration,
                    file.size as f64 / 1e6,
                    file.path.display(),
                )
            }));
            lines.join("\n")
        });
    }
}

/// `id  STATUS  stage  percent  created`.
fn summary(
    job_id: Uuid,
    status: JobStatus,
    progress: &Progress,
    created_at: DateTime<Utc>,
) -> String {
    format!(
        "{job_id}  {status:<10} {:<11} {:>3}%  {created_at}",
        progress
            .stage
            .map_or_else(|| "-".into(), |stage| stage.to_string()),
        progress.percent,
    )
}
