//! What the command tells its user: progress bars on a terminal, plain progress lines
//! otherwise, and results as text or (with `--json`) one JSON document on standard output.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::error::CliError;

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

    /// The result of a command: `value` as JSON, or its fields as lines.
    pub fn done(&self, value: &Value) {
        if self.json {
            println!("{value}");
            return;
        }
        if let Some(fields) = value.as_object() {
            for (key, value) in fields {
                match value {
                    Value::String(text) => println!("{key}: {text}"),
                    Value::Array(items) => {
                        for item in items {
                            println!(
                                "{key}: {}",
                                item.as_str().map_or(item.to_string(), str::to_owned)
                            );
                        }
                    }
                    other => println!("{key}: {other}"),
                }
            }
        }
    }

    /// One job, as the API shows it.
    pub fn job(&self, view: &Value) {
        if self.json {
            println!("{view}");
        } else {
            println!("{}", summary(view));
        }
    }

    /// A page of jobs.
    /// The music catalogue: one track a line, its id first.
    pub fn music(&self, catalogue: &Value) {
        if self.json {
            println!("{catalogue}");
            return;
        }
        let tracks = catalogue["tracks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for track in tracks {
            println!(
                "{:<28} {:<30} {:<10} {:>4} BPM  {:>3.0} s  {}",
                track["id"].as_str().unwrap_or_default(),
                track["title"].as_str().unwrap_or_default(),
                track["mood"].as_str().unwrap_or_default(),
                track["bpm"],
                track["duration_seconds"].as_f64().unwrap_or_default(),
                track["licence"].as_str().unwrap_or_default(),
            );
        }
        println!("{} tracks", tracks.len());
    }

    pub fn jobs(&self, page: &Value) {
        if self.json {
            println!("{page}");
            return;
        }
        let jobs = page["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for job in jobs {
            println!("{}", summary(job));
        }
        println!("{} of {} jobs", jobs.len(), page["total"]);
    }
}

/// `id  STATUS  stage  percent  created`.
fn summary(job: &Value) -> String {
    format!(
        "{}  {:<10} {:<11} {:>3}%  {}",
        job["job_id"].as_str().unwrap_or("?"),
        job["status"].as_str().unwrap_or("?"),
        job["stage"].as_str().unwrap_or("-"),
        job["progress"]["percent"].as_u64().unwrap_or(0),
        job["created_at"].as_str().unwrap_or(""),
    )
}
