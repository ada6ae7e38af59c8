//! The service's public API as this command uses it: sign-in, token refresh, typed JSON
//! calls (the `contract` crate's types, the same the service answers with), and the error
//! envelope turned into a [`CliError`](crate::error::CliError).

use contract::auth::{Credentials, LoginResponse, MfaLogin, RefreshRequest, TokenResponse};
use contract::{Envelope, ErrorEnvelope};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::credentials::Credentials as Kept;
use crate::error::CliError;

/// A signed-in session with the service.
pub struct Api {
    pub server: String,
    pub http: Client,
    access_token: String,
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

    /// Signs in (with the second step when multi-factor login is on), keeps the refresh
    /// token for later commands, and answers who signed in.
    pub async fn login(
        server: &str,
        email: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<Uuid, CliError> {
        let http = Self::client();
        let login = Credentials {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let answer = call(http.post(format!("{server}/api/auth/login")).json(&login)).await?;
        let tokens: TokenResponse = match answer {
            LoginResponse::Tokens(tokens) => tokens,
            LoginResponse::MfaRequired(challenge) => {
                let code = code.ok_or_else(|| {
                    CliError::Local("this account signs in with a code: add --code 123456".into())
                })?;
                let step = MfaLogin {
                    mfa_token: challenge.mfa_token,
                    code: Some(code.to_owned()),
                    recovery_code: None,
                };
                call(
                    http.post(format!("{server}/api/auth/mfa/login"))
                        .json(&step),
                )
                .await?
            }
        };
        Kept::store(server, &tokens.refresh_token)?;
        Ok(tokens.user_id)
    }

    /// The kept session, with a fresh access token (the refresh token turns over each time).
    pub async fn resume(server: &str) -> Result<Self, CliError> {
        let http = Self::client();
        let body = RefreshRequest {
            refresh_token: Kept::load(server)?,
        };
        let refresh = http.post(format!("{server}/api/auth/refresh")).json(&body);
        let tokens: TokenResponse = match call(refresh).await {
            Err(CliError::Api { status: 401, .. }) => {
                return Err(CliError::NotSignedIn(server.to_owned()))
            }
            other => other?,
        };
        Kept::store(server, &tokens.refresh_token)?;
        Ok(Self {
            server: server.to_owned(),
            http,
            access_token: tokens.access_token,
        })
    }

    /// Ends the kept session on the service and forgets it here.
    pub async fn logout(server: &str) -> Result<(), CliError> {
        let body = RefreshRequest {
            refresh_token: Kept::load(server)?,
        };
        let logout = Self::client()
            .post(format!("{server}/api/auth/logout"))
            .json(&body);
        let ended = logout.send().await;
        Kept::forget(server)?;
        match ended? {
            answer if answer.status().is_success() || answer.status() == 401 => Ok(()),
            refused => Err(refusal(refused).await),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(&self.access_token)
    }

    /// GETs `path`; the envelope's `data`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        data(self.request(Method::GET, path)).await
    }

    /// POSTs to `path` without a body; the envelope's `data`.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        data(self.request(Method::POST, path)).await
    }
}

/// Sends `request`; the `data` of the success envelope, or the error envelope's refusal.
pub async fn data<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, CliError> {
    call::<Envelope<T>>(request).await.map(|answer| answer.data)
}

/// Sends `request`; the JSON body of a success, or the error envelope's refusal.
async fn call<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, CliError> {
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let body = response.bytes().await?;
    serde_json::from_slice(&body).map_err(|err| {
        CliError::Local(format!(
            "the service answered in a form this version does not read ({err}); \
             is `montage` older than the service?"
        ))
    })
}

/// The error a refused request's envelope carries.
pub async fn refusal(response: Response) -> CliError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorEnvelope>(&body) {
        Ok(ErrorEnvelope { error, .. }) => CliError::Api {
            status,
            code: error.code.to_string(),
            message: error.message,
        },
        // Not the service's envelope (a proxy's page, a newer error code).
        Err(_) => CliError::Api {
            status,
            code: "HTTP_ERROR".into(),
            message: "the service refused the request".into(),
        },
    }
}
