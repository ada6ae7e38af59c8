//! `montage`: render clips into a montage, follow jobs and download them, through the
//! service's public API only (the same calls any client makes).

mod api;
mod credentials;
mod error;
mod follow;
mod render;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use domain::jobs::OutputFormat;
use uuid::Uuid;

use api::Api;
use error::CliError;
use report::Report;

#[derive(Parser)]
#[command(
    name = "montage",
    version,
    about = "Gaming-clip montages from the command line"
)]
struct Cli {
    /// The service's address.
    #[arg(
        long,
        env = "MONTAGE_SERVER",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    server: String,
    /// One JSON document on standard output instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in and keep the session (the password comes from MONTAGE_PASSWORD, or is asked).
    Login {
        #[arg(long, env = "MONTAGE_EMAIL")]
        email: String,
        /// The 6-digit code of an authenticator app, when multi-factor login is on.
        #[arg(long)]
        code: Option<String>,
    },
    /// End the session kept by `login`.
    Logout,
    /// Upload clips, render the montage, follow it live and download the outputs.
    Render {
        /// Video files, in the order they happened.
        #[arg(required = true)]
        clips: Vec<PathBuf>,
        #[command(flatten)]
        options: render::Options,
        /// Where the outputs go.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Return once the job is created, without following it.
        #[arg(long)]
        no_wait: bool,
    },
    /// List your jobs, newest first.
    Jobs {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Download a finished job's outputs.
    Download {
        job: Uuid,
        /// Only this format.
        #[arg(long, value_parser = render::format)]
        format: Option<OutputFormat>,
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
    },
    /// Cancel a waiting or running job.
    Cancel { job: Uuid },
    /// List the music a montage can be cut to (`render --music ID`).
    Music,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let report = Report::new(cli.json);
    match run(cli, &report).await {
        Ok(code) => code,
        Err(err) => {
            report.error(&err);
            err.exit_code()
        }
    }
}

async fn run(cli: Cli, report: &Report) -> Result<ExitCode, CliError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = cli.server.trim_end_matches('/').to_owned();
    match cli.command {
        Command::Login { email, code } => {
            let password = credentials::password()?;
            let user_id = Api::login(&server, &email, &password, code.as_deref()).await?;
            report.signed_in(&email, user_id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout => {
            Api::logout(&server).await?;
            report.signed_out();
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            clips,
            options,
            output,
            no_wait,
        } => {
            let api = Api::resume(&server).await?;
            let wait = (!no_wait).then_some(output.as_path());
            render::run(&api, report, &clips, &options, wait).await
        }
        Command::Jobs { limit, offset } => {
            let page = format!("/api/v2/jobs?limit={limit}&offset={offset}");
            report.jobs(&Api::resume(&server).await?.get(&page).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Download {
            job,
            format,
            output,
        } => {
            let api = Api::resume(&server).await?;
            let view = api.get(&format!("/api/v2/jobs/{job}")).await?;
            report.saved(&render::download(&api, report, &view, format, &output).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { job } => {
            let api = Api::resume(&server).await?;
            let view = api.post(&format!("/api/v2/jobs/{job}/cancel")).await?;
            report.job(&view);
            Ok(ExitCode::SUCCESS)
        }
        Command::Music => {
            report.music(&Api::resume(&server).await?.get("/api/v2/music").await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
