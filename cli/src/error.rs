//! What can go wrong, and the exit code each gives.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("not signed in to {0}: run `montage login` first")]
    NotSignedIn(String),
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot talk to the service: {0}")]
    Network(#[from] reqwest::Error),
    #[error("{0}")]
    Local(String),
    #[error("job {job_id} {status}: {message} ({code})")]
    JobFailed {
        job_id: String,
        status: String,
        code: String,
        message: String,
    },
}

impl CliError {
    /// 1: the job failed or was cancelled; 3: the service or a file said no; 4: not signed
    /// in. (Wrong arguments exit with 2.)
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::JobFailed { .. } => 1,
            Self::NotSignedIn(_) => 4,
            Self::Api { .. } | Self::Network(_) | Self::Local(_) => 3,
        })
    }

    pub fn local(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Local(format!("{what}: {err}"))
    }
}
