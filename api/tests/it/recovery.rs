//! Verified email and password recovery, with the mails received over real SMTP.

use serde_json::{json, Value};
use testkit::media;

use std::time::Duration;

use crate::{
    control::clip,
    helpers::{assert_error, eventually, spawn_app_with, TestApp, TestUser},
    smtp::SmtpReceiver,
};

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn resend_verification(app: &TestApp, user: &TestUser) -> reqwest::Response {
    let request = app.client.post(app.url("/api/auth/resend-verification"));
    request
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.client.get(app.url("/api/auth/me")).bearer_auth(token);
    response.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_verifies_its_address_through_the_mailed_link() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[
        ("SMTP_URL", &smtp.url()),
        ("UNVERIFIED_JOB_ALLOWANCE", "1"),
        ("VERIFY_EMAIL_RESEND_SECS", "0"),
    ])
    .await;
    let user = app.user().await;
    let welcome = smtp.wait_for(&user.email, 1).await;
    assert!(
        welcome.text.contains("Subject: Confirm your email address"),
        "{}",
        welcome.text
    );
    let token = welcome
        .link_parameter("token")
        .expect("the mail carries a link");
    assert!(!me(&app, &user.access_token).await["email_verified"]
        .as_bool()
        .unwrap());

    let first = app
        .create_job(&user, &[clip(media::portrait_no_audio())], &[])
        .await;
    assert_eq!(first.status(), 201, "the allowance lets one job through");
    let second = app
        .create_job(&user, &[clip(media::portrait_no_audio())], &[])
        .await;
    assert_error(second, 403, "EMAIL_NOT_VERIFIED").await;

    let resend = resend_verification(&app, &user).await;
    assert_eq!(resend.status(), 200);
    let again = smtp.wait_for(&user.email, 2).await;
    let second_token = again.link_parameter("token").unwrap();
    assert_ne!(second_token, token, "each mail has its own link");

    let forged = post(
        &app,
        "/api/auth/verify-email",
        json!({"token": "not-a-token"}),
    )
    .await;
    assert_error(forged, 400, "INVALID_TOKEN").await;
    let verified = post(&app, "/api/auth/verify-email", json!({"token": token})).await;
    assert_eq!(verified.status(), 200);
    assert!(me(&app, &user.access_token).await["email_verified"]
        .as_bool()
        .unwrap());
    let reused = post(&app, "/api/auth/verify-email", json!({"token": token})).await;
    assert_error(reused, 400, "INVALID_TOKEN").await;

    let third = app
        .create_job(&user, &[clip(media::portrait_no_audio())], &[])
        .await;
    assert_eq!(third.status(), 201, "verified accounts have no allowance");
    let resend = resend_verification(&app, &user).await;
    assert_error(resend, 409, "CONFLICT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_fail_and_resending_waits_its_pause() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url()), ("VERIFY_EMAIL_TTL_HOURS", "0")]).await;
    let user = app.user().await;
    let token = smtp.wait_for(&user.email, 1).await.link_parameter("token");
    let expired = post(&app, "/api/auth/verify-email", json!({"token": token})).await;
    assert_error(expired, 400, "INVALID_TOKEN").await;

    let resend = resend_verification(&app, &user).await;
    let body = assert_error(resend, 429, "RATE_LIMIT_EXCEEDED").await;
    assert!(body["error"]["data"]["retry_after"].as_i64().unwrap() > 0);
    assert_eq!(smtp.messages_to(&user.email).len(), 1, "no second mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_through_the_mailed_link_ends_every_session() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let user = app.user().await;
    smtp.wait_for(&user.email, 1).await;

    let unknown = post(
        &app,
        "/api/auth/password/forgot",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(unknown.status(), 202);
    let unknown: Value = unknown.json().await.unwrap();
    let known = post(
        &app,
        "/api/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    assert_eq!(known.status(), 202);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown,
        "the same answer either way"
    );
    let reset_mail = smtp.wait_for(&user.email, 2).await;
    assert!(reset_mail.text.contains("Subject: Reset your password"));
    assert!(smtp.messages_to("nobody@example.com").is_empty());
    let token = reset_mail.link_parameter("token").unwrap();

    let weak = post(
        &app,
        "/api/auth/password/reset",
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_error(weak, 422, "VALIDATION_ERROR").await;
    let new_password = "AnotherPassword456!";
    let reset = post(
        &app,
        "/api/auth/password/reset",
        json!({"token": token, "password": new_password}),
    )
    .await;
    assert_eq!(
        reset.status(),
        200,
        "a refused password leaves the link usable"
    );
    let reused = post(
        &app,
        "/api/auth/password/reset",
        json!({"token": token, "password": new_password}),
    )
    .await;
    assert_error(reused, 400, "INVALID_TOKEN").await;

    let old_session = app.with_refresh_token("refresh", &user.refresh_token).await;
    assert_eq!(old_session.status(), 401, "every session ended");
    assert_eq!(app.login(&user.email, &user.password).await.status(), 401);
    let login = app.login(&user.email, new_password).await;
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        me(&app, &token).await["email_verified"].as_bool().unwrap(),
        "the mail proved the address"
    );
}

async fn change_email(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    let request = app.client.put(app.url("/api/users/me"));
    request
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_email_address_needs_the_password_and_its_mailed_link() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let user = app.user().await;
    let other = app.user().await;
    let new_address = format!("new-{}", user.email);
    let no_password = change_email(&app, &user, json!({"email": new_address})).await;
    assert_error(no_password, 422, "VALIDATION_ERROR").await;
    let wrong = json!({"email": new_address, "current_password": "NotThePassword123"});
    assert_error(
        change_email(&app, &user, wrong).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let taken = json!({"email": other.email, "current_password": user.password});
    let taken = assert_error(change_email(&app, &user, taken).await, 409, "CONFLICT").await;
    assert_eq!(taken["error"]["data"]["field"], "email");
    // Addresses the mailer cannot address (some once answered 500).
    for malformed in [
        "not-an-address",
        "a,b@example.com",
        "a\"b@example.com",
        "a(b)@example.com",
        "a;b@example.com",
    ] {
        let body = json!({"email": malformed, "current_password": user.password});
        let refused = change_email(&app, &user, body).await;
        assert_error(refused, 422, "VALIDATION_ERROR").await;
    }

    let asked = json!({"email": new_address.to_uppercase(), "current_password": user.password});
    let asked = change_email(&app, &user, asked).await;
    assert_eq!(asked.status(), 200);
    assert_eq!(
        asked.json::<Value>().await.unwrap()["email"],
        user.email.as_str(),
        "the address changes only when the link is opened"
    );
    let link = smtp.wait_for(&new_address, 1).await;
    assert!(
        link.text
            .contains("Subject: Confirm your new email address"),
        "{}",
        link.text
    );
    let notice = eventually(
        Duration::from_secs(10),
        "the notice to the old address",
        || {
            let found = smtp.messages_to(&user.email);
            async move {
                found
                    .into_iter()
                    .find(|m| m.text.contains("is being changed"))
            }
        },
    )
    .await;
    assert!(notice.body().contains(&new_address), "{}", notice.text);
    let token = link.link_parameter("token").expect("a link");
    let opened = post(&app, "/api/auth/verify-email", json!({"token": token})).await;
    assert_eq!(opened.status(), 200);
    let now = me(&app, &user.access_token).await;
    assert_eq!(
        (now["email"].as_str(), now["email_verified"].as_bool()),
        (Some(new_address.as_str()), Some(true))
    );
    assert_eq!(app.login(&new_address, &user.password).await.status(), 200);
    assert_error(
        app.login(&user.email, &user.password).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let reused = post(&app, "/api/auth/verify-email", json!({"token": token})).await;
    assert_error(reused, 400, "INVALID_TOKEN").await;
}

async fn forgot(app: &TestApp, smtp: &SmtpReceiver, address: &str, mails: usize) -> String {
    let asked = post(app, "/api/auth/password/forgot", json!({"email": address})).await;
    assert_eq!(asked.status(), 202);
    let mail = smtp.wait_for(address, mails).await;
    assert!(
        mail.text.contains("Subject: Reset your password"),
        "{}",
        mail.text
    );
    mail.link_parameter("token").unwrap()
}

async fn reset(app: &TestApp, token: &str) -> reqwest::Response {
    let body = json!({"token": token, "password": "AnotherPassword456!"});
    post(app, "/api/auth/password/reset", body).await
}

/// Only the newest reset link works, once, and only for the address the account still has;
/// a reset ends the access tokens of every session at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_links_die_with_a_newer_link_a_use_or_an_address_change() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let user = app.user().await;
    smtp.wait_for(&user.email, 1).await;
    let older = forgot(&app, &smtp, &user.email, 2).await;
    let newer = forgot(&app, &smtp, &user.email, 3).await;
    assert_error(reset(&app, &older).await, 400, "INVALID_TOKEN").await;
    assert_eq!(reset(&app, &newer).await.status(), 200);
    let after = app.client.get(app.url("/api/auth/me"));
    let after = after.bearer_auth(&user.access_token).send().await.unwrap();
    assert_error(after, 401, "AUTHENTICATION_REQUIRED").await;

    // A link mailed to the old address, then the address changes.
    let login = app.login(&user.email, "AnotherPassword456!").await;
    let token = login.json::<Value>().await.unwrap()["access_token"].clone();
    let token = token.as_str().unwrap().to_owned();
    let stale = forgot(&app, &smtp, &user.email, 4).await;
    let new_address = format!("moved-{}", user.email);
    let change = app.client.put(app.url("/api/users/me")).bearer_auth(&token);
    let body = json!({"email": new_address, "current_password": "AnotherPassword456!"});
    assert_eq!(change.json(&body).send().await.unwrap().status(), 200);
    let confirm = smtp
        .wait_for(&new_address, 1)
        .await
        .link_parameter("token")
        .unwrap();
    let opened = post(&app, "/api/auth/verify-email", json!({"token": confirm})).await;
    assert_eq!(opened.status(), 200);
    assert_error(reset(&app, &stale).await, 400, "INVALID_TOKEN").await;
}

/// Pre-hijacking: someone registers the victim's address before the victim does. They may
/// not add a second factor to an unproven address; and factors added while it was unproven
/// (by an older version) go when the owner proves it with a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unproven_address_takes_no_factor_and_a_reset_removes_old_ones() {
    let smtp = SmtpReceiver::start().await;
    let app = spawn_app_with(&[("SMTP_URL", &smtp.url())]).await;
    let squatter = app.user().await;
    let enable = app.client.post(app.url("/api/auth/mfa/enable"));
    let enable = enable
        .bearer_auth(&squatter.access_token)
        .send()
        .await
        .unwrap();
    assert_error(enable, 403, "EMAIL_NOT_VERIFIED").await;
    // As an older version allowed: a factor on the unproven account.
    let planted = format!(
        "UPDATE users SET mfa_secret = '\\x00', mfa_enabled_at = now() WHERE id = '{}'",
        squatter.user_id
    );
    assert_eq!(app.execute_sql(planted).await, 1);
    let login = app.login(&squatter.email, &squatter.password).await;
    let challenged = login.json::<Value>().await.unwrap();
    assert!(challenged.get("mfa_token").is_some(), "{challenged}");

    // The address's owner resets the password through the mail.
    smtp.wait_for(&squatter.email, 1).await;
    let link = forgot(&app, &smtp, &squatter.email, 2).await;
    assert_eq!(reset(&app, &link).await.status(), 200);
    let login = app.login(&squatter.email, "AnotherPassword456!").await;
    let login = login.json::<Value>().await.unwrap();
    assert!(
        login.get("access_token").is_some(),
        "no second step: {login}"
    );
    assert!(
        me(&app, login["access_token"].as_str().unwrap()).await["email_verified"]
            .as_bool()
            .unwrap()
    );
}
