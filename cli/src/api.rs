//! The service's public API as this command uses it: sign-in, token refresh, JSON calls,
//! and the error envelope turned into a [`CliError`].

use std::process::ExitCode;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::credentials::Credentials;

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

/// A signed-in session with the service.
pub struct Api {
    pub server: String,
    pub http: Client,
    access_token: String,
}

/// Who signed in.
pub struct Session {
    pub user_id: String,
}

impl Api {
    fn client() -> Client {
        Client::builder()
            // Downloads redirect to storage; `render::save` follows them without the token.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("montage-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds")
    }

    /// Signs in (with the second step when multi-factor login is on) and keeps the
    /// refresh token for later commands.
    pub async fn login(
        server: &str,
        email: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<Session, CliError> {
        let http = Self::client();
        let login = json!({"email": email, "password": password});
        let mut tokens = call(http.post(format!("{server}/api/auth/login")).json(&login)).await?;
        if tokens["mfa_required"] == true {
            let code = code.ok_or_else(|| {
                CliError::Local("this account signs in with a code: add --code 123456".into())
            })?;
            let step = json!({"mfa_token": tokens["mfa_token"], "code": code});
            tokens = call(
                http.post(format!("{server}/api/auth/mfa/login"))
                    .json(&step),
            )
            .await?;
        }
        Credentials::store(server, text(&tokens, "refresh_token")?)?;
        Ok(Session {
            user_id: text(&tokens, "user_id")?.to_owned(),
        })
    }

    /// The kept session, with a fresh access token (the refresh token turns over each time).
    pub async fn resume(server: &str) -> Result<Self, CliError> {
        let refresh = Credentials::load(server)?;
        let http = Self::client();
        let body = json!({"refresh_token": refresh});
        let tokens = match call(http.post(format!("{server}/api/auth/refresh")).json(&body)).await {
            Err(CliError::Api { status: 401, .. }) => {
                return Err(CliError::NotSignedIn(server.to_owned()))
            }
            other => other?,
        };
        Credentials::store(server, text(&tokens, "refresh_token")?)?;
        Ok(Self {
            server: server.to_owned(),
            http,
            access_token: text(&tokens, "access_token")?.to_owned(),
        })
    }

    /// Ends the kept session on the service and forgets it here.
    pub async fn logout(server: &str) -> Result<(), CliError> {
        let refresh = Credentials::load(server)?;
        let body = json!({"refresh_token": refresh});
        let ended = call(
            Self::client()
                .post(format!("{server}/api/auth/logout"))
                .json(&body),
        )
        .await;
        Credentials::forget(server)?;
        match ended {
            Ok(_) | Err(CliError::Api { status: 401, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(&self.access_token)
    }

    /// GETs `path`; the envelope's `data`.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        data(call(self.request(Method::GET, path)).await?)
    }

    /// POSTs to `path` without a body; the envelope's `data`.
    pub async fn post(&self, path: &str) -> Result<Value, CliError> {
        data(call(self.request(Method::POST, path)).await?)
    }
}

/// Sends `request`; the JSON body of a success, or the envelope's error.
pub async fn call(request: RequestBuilder) -> Result<Value, CliError> {
    let response = request.send().await?;
    if response.status().is_success() {
        Ok(response.json().await?)
    } else {
        Err(refusal(response).await)
    }
}

/// The error a refused request's envelope carries.
pub async fn refusal(response: Response) -> CliError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    let field = |name: &str| body["error"][name].as_str().map(str::to_owned);
    CliError::Api {
        status,
        code: field("code").unwrap_or_else(|| "HTTP_ERROR".into()),
        message: field("message").unwrap_or_else(|| "the service refused the request".into()),
    }
}

/// The `data` of an envelope.
pub fn data(mut body: Value) -> Result<Value, CliError> {
    match body.get_mut("data") {
        Some(data) => Ok(data.take()),
        None => Err(CliError::Local(format!("unexpected answer: {body}"))),
    }
}

pub fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, CliError> {
    body[field]
        .as_str()
        .ok_or_else(|| CliError::Local(format!("the answer has no {field}: {body}")))
}
