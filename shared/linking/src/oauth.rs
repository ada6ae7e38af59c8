//! The OAuth 2.0 pieces the platforms share: PKCE (S256), states, the code exchange and
//! token revocation, over plain HTTP forms. (The `oauth2` crate's token response cannot read
//! Twitch's, whose `scope` is a JSON array.)

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use serde::Deserialize;
use settings::OAuthClientConfig;
use sha2::{Digest, Sha256};

/// 32 random bytes, base64url: a state or a PKCE verifier.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the table keeps of a state: its hash, never the value.
pub fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// The S256 challenge of a PKCE verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The platform's authorisation page for this request.
pub fn authorize_url(
    client: &OAuthClientConfig,
    redirect_uri: &str,
    state: &str,
    verifier: &str,
) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(&client.authorize_url)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair(client.client_id_field, &client.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &client.scopes.join(client.scope_separator))
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce_challenge(verifier))
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(client.consent_params);
    Ok(url.into())
}

/// A token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds.
    pub expires_in: Option<i64>,
    /// Space-separated (RFC 6749), or a list (Twitch).
    #[serde(default, deserialize_with = "scopes")]
    pub scope: Vec<String>,
}

fn scopes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        Spaced(String),
        Listed(Vec<String>),
    }
    Ok(match Option::<Scopes>::deserialize(deserializer)? {
        // TikTok separates them with commas.
        Some(Scopes::Spaced(text)) => text
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Scopes::Listed(list)) => list,
        None => Vec::new(),
    })
}

/// Why a platform call failed, for the log (the user reads only that the platform refused).
#[derive(Debug)]
pub struct PlatformError(pub String);

impl<E: std::fmt::Display> From<E> for PlatformError {
    fn from(err: E) -> Self {
        Self(err.to_string())
    }
}

/// Posts `form` to the token endpoint, with the client's credentials in the body (Twitch
/// wants them there; the others accept it).
pub async fn token_request(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    form: &[(&str, &str)],
) -> Result<Tokens, PlatformError> {
    let credentials = [
        (client.client_id_field, client.client_id.as_str()),
        ("client_secret", client.client_secret.as_str()),
    ];
    let response = http
        .post(&client.token_url)
        .form(&[form, &credentials].concat())
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(PlatformError(format!(
            "token endpoint answered {status}: {body:.200}"
        )));
    }
    Ok(response.json().await?)
}

/// Revokes `token` at the platform, where it has a place for that.
pub async fn revoke(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    token: &str,
) -> Result<(), PlatformError> {
    let Some(url) = &client.revoke_url else {
        return Ok(());
    };
    let response = http
        .post(url)
        .form(&[
            (client.client_id_field, client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("token", token),
        ])
        .send()
        .await?;
    // 400 for a token already invalid: nothing left to revoke.
    if response.status().is_success() || response.status() == reqwest::StatusCode::BAD_REQUEST {
        Ok(())
    } else {
        Err(PlatformError(format!(
            "revocation answered {}",
            response.status()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scopes_come_spaced_or_listed() {
        let spaced: Tokens = serde_json::from_str(r#"{"access_token":"a","scope":"a b"}"#).unwrap();
        let commas: Tokens = serde_json::from_str(r#"{"access_token":"a","scope":"a,b"}"#).unwrap();
        assert_eq!(commas.scope, ["a", "b"]);
        let listed: Tokens =
            serde_json::from_str(r#"{"access_token":"a","scope":["a","b"]}"#).unwrap();
        let none: Tokens = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(spaced.scope, ["a", "b"]);
        assert_eq!(listed.scope, ["a", "b"]);
        assert!(none.scope.is_empty());
    }
}
