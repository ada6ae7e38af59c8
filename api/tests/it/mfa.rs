//! Multi-factor login, with codes the test computes from the secret by RFC 6238 itself
//! (HMAC-SHA1 over the time step), independently of the service's TOTP library.

use diesel::{prelude::*, sql_query, sql_types::Bytea};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use std::time::Duration;

use crate::helpers::{assert_error, eventually, spawn_app_with, TestApp, TestUser};

/// Decodes RFC 4648 base32 without padding.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let digit = ALPHABET.iter().position(|&a| a == c).expect("base32") as u64;
        value = (value << 5) | digit;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
        }
    }
    out
}

/// The 6-digit code for the time step that holds `unix` seconds, `offset` steps away.
fn totp(secret: &str, offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let step = (now / 30 + offset) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let at = (digest[19] & 0x0f) as usize;
    let number = u32::from_be_bytes(digest[at..at + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", number % 1_000_000)
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

/// Turns MFA on for `user`; answers the secret and the recovery codes.
/// Marks `user`'s address proven, as opening the mailed link does (that flow has tests of
/// its own): factors need a proven address.
async fn prove_address(app: &TestApp, user: &TestUser) {
    let verified = format!(
        "UPDATE users SET email_verified_at = now() WHERE id = '{}'",
        user.user_id
    );
    assert_eq!(app.execute_sql(verified).await, 1);
}

async fn turn_on(app: &TestApp, user: &TestUser) -> (String, Vec<String>) {
    prove_address(app, user).await;
    let token = Some(user.access_token.as_str());
    let setup = json(
        post(app, "/api/auth/mfa/enable", token, json!({})).await,
        200,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let verified = post(
        app,
        "/api/auth/mfa/verify",
        token,
        json!({"code": totp(&secret, 0)}),
    );
    let codes = json(verified.await, 200).await["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn login_challenge(app: &TestApp, user: &TestUser) -> String {
    let body = json(app.login(&user.email, &user.password).await, 200).await;
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_turns_on_with_a_code_and_login_then_takes_a_second_step() {
    let app = spawn_app_with(&[]).await;
    let user = app.user().await;
    prove_address(&app, &user).await;
    let token = Some(user.access_token.as_str());
    let setup = json(
        post(&app, "/api/auth/mfa/enable", token, json!({})).await,
        200,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap();
    assert!(
        setup["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBORw0KGgo"),
        "a PNG data URL"
    );
    let url = setup["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Montage:"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert_eq!(base32_decode(secret).len(), 20);

    // Pending until a code proves the app has the secret.
    let login = json(app.login(&user.email, &user.password).await, 200).await;
    assert!(login["access_token"].is_string(), "still one step: {login}");
    let wrong = post(
        &app,
        "/api/auth/mfa/verify",
        token,
        json!({"code": "000000"}),
    )
    .await;
    assert_error(wrong, 400, "INVALID_MFA_CODE").await;
    let first = totp(secret, 0);
    let verified = post(&app, "/api/auth/mfa/verify", token, json!({"code": first})).await;
    let codes = json(verified, 200).await["recovery_codes"].clone();
    assert_eq!(codes.as_array().unwrap().len(), 10);
    let me = app.user_json("/api/auth/me", &user).await;
    assert_eq!(me["mfa_enabled"], true);

    // The secret is sealed at rest: its bytes are not in the row.
    let stored = stored_secret(&app, &user.user_id);
    let raw = base32_decode(secret);
    assert!(stored.len() > raw.len() && !stored.windows(raw.len()).any(|w| w == raw));

    let mfa_token = login_challenge(&app, &user).await;
    let as_access = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(&mfa_token);
    assert_eq!(
        as_access.send().await.unwrap().status(),
        401,
        "not an access token"
    );
    let second_step = |body: Value| post(&app, "/api/auth/mfa/login", None, body);
    let replayed = second_step(json!({"mfa_token": mfa_token, "code": first})).await;
    assert_error(replayed, 400, "INVALID_MFA_CODE").await;
    let too_far = second_step(json!({"mfa_token": mfa_token, "code": totp(secret, 3)})).await;
    assert_error(too_far, 400, "INVALID_MFA_CODE").await;
    // One step ahead is within the allowed skew, and later than the step used before.
    let next = totp(secret, 1);
    let signed_in = second_step(json!({"mfa_token": mfa_token, "code": next})).await;
    let tokens = json(signed_in, 200).await;
    let me = app.client.get(app.url("/api/auth/me"));
    let me = me.bearer_auth(tokens["access_token"].as_str().unwrap());
    assert_eq!(me.send().await.unwrap().status(), 200);
    let again = second_step(json!({"mfa_token": mfa_token, "code": next})).await;
    assert_error(again, 400, "INVALID_MFA_CODE").await;

    // A recovery code works once, however it is typed.
    let recovery = codes[0].as_str().unwrap().to_uppercase().replace('-', " ");
    let body = json!({"mfa_token": mfa_token, "recovery_code": recovery});
    json(second_step(body.clone()).await, 200).await;
    assert_error(second_step(body).await, 400, "INVALID_MFA_CODE").await;
    let both = json!({"mfa_token": mfa_token, "code": "123456", "recovery_code": "x"});
    assert_error(second_step(both).await, 422, "VALIDATION_ERROR").await;
    let forged = json!({"mfa_token": user.access_token, "code": totp(secret, 0)});
    assert_error(second_step(forged).await, 401, "AUTHENTICATION_REQUIRED").await;
}

fn stored_secret(app: &TestApp, user_id: &str) -> Vec<u8> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bytea)]
        mfa_secret: Vec<u8>,
    }
    let mut conn = PgConnection::establish(&app.config.database_url).unwrap();
    sql_query(format!(
        "SELECT mfa_secret FROM users WHERE id = '{user_id}'"
    ))
    .get_result::<Row>(&mut conn)
    .unwrap()
    .mfa_secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_throttled_per_account() {
    let app = spawn_app_with(&[("LOGIN_FREE_FAILURES", "2")]).await;
    let user = app.user().await;
    let token = Some(user.access_token.as_str());
    let again = post(
        &app,
        "/api/auth/mfa/verify",
        token,
        json!({"code": "123456"}),
    )
    .await;
    assert_error(again, 409, "CONFLICT").await;
    let (secret, _codes) = turn_on(&app, &user).await;
    let enable_again = post(&app, "/api/auth/mfa/enable", token, json!({})).await;
    assert_error(enable_again, 409, "CONFLICT").await;

    let mfa_token = login_challenge(&app, &user).await;
    let attempt = |code: String| {
        post(
            &app,
            "/api/auth/mfa/login",
            None,
            json!({"mfa_token": mfa_token, "code": code}),
        )
    };
    for _ in 0..2 {
        assert_error(attempt("999999".into()).await, 400, "INVALID_MFA_CODE").await;
    }
    // Past the free failures, even the right code waits out the delay.
    let refused = attempt(totp(&secret, 1)).await;
    let body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    assert!(body["error"]["data"]["retry_after"].as_u64().unwrap() > 0);

    let disable = |body: Value| post(&app, "/api/auth/mfa/disable", token, body);
    let wrong_password = json!({"password": "NotThePassword123"});
    // The same account's throttle covers turning MFA off.
    assert_error(disable(wrong_password).await, 429, "RATE_LIMIT_EXCEEDED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_turns_off_with_the_password_or_a_code() {
    let app = spawn_app_with(&[]).await;
    let user = app.user().await;
    let token = Some(user.access_token.as_str());
    let off = post(
        &app,
        "/api/auth/mfa/disable",
        token,
        json!({"password": user.password}),
    )
    .await;
    assert_error(off, 409, "CONFLICT").await;
    let (secret, codes) = turn_on(&app, &user).await;
    let disable = |body: Value| post(&app, "/api/auth/mfa/disable", token, body);
    let wrong = json!({"password": "NotThePassword123"});
    assert_error(disable(wrong).await, 401, "INVALID_CREDENTIALS").await;
    assert_error(disable(json!({})).await, 422, "VALIDATION_ERROR").await;
    json(disable(json!({"password": user.password})).await, 200).await;
    let login = json(app.login(&user.email, &user.password).await, 200).await;
    assert!(login["access_token"].is_string(), "one step again: {login}");
    assert_eq!(
        app.user_json("/api/auth/me", &user).await["mfa_enabled"],
        false
    );

    // On again with a new secret; the old recovery codes are gone, the new one turns it off.
    let (new_secret, new_codes) = turn_on(&app, &user).await;
    assert_ne!(new_secret, secret);
    let old = json!({"recovery_code": codes[0]});
    assert_error(disable(old).await, 400, "INVALID_MFA_CODE").await;
    json(disable(json!({"recovery_code": new_codes[9]})).await, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_step_expires_whatever_the_code() {
    let app = spawn_app_with(&[("MFA_TOKEN_TTL_SECS", "1")]).await;
    let user = app.user().await;
    let (secret, _codes) = turn_on(&app, &user).await;
    let mfa_token = login_challenge(&app, &user).await;
    let wrong = json!({"mfa_token": mfa_token, "code": "000000"});
    let early = post(&app, "/api/auth/mfa/login", None, wrong.clone()).await;
    assert_eq!(
        early.status(),
        400,
        "a wrong code is judged while the token lives"
    );
    eventually(Duration::from_secs(10), "the mfa token to expire", || {
        let (app, wrong) = (&app, wrong.clone());
        async move {
            let response = post(app, "/api/auth/mfa/login", None, wrong).await;
            (response.status() == 401).then_some(())
        }
    })
    .await;
    let late = json!({"mfa_token": mfa_token, "code": totp(&secret, 1)});
    let late = post(&app, "/api/auth/mfa/login", None, late).await;
    assert_error(late, 401, "AUTHENTICATION_REQUIRED").await;
}
