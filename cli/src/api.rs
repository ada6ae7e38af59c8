//! The service's public API as this command uses it: sign-in, token refresh, JSON calls,
//! and the error envelope turned into a [`CliError`](crate::error::CliError).

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::credentials::Credentials;
use crate::error::CliError;

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
