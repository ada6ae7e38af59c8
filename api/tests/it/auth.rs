//! Registration, login, token rotation and access-token checks.

use chrono::Utc;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

#[tokio::test]
async fn register_then_login_returns_the_seed_token_shape() {
    let app = spawn_app().await;
    let response = app
        .register("  New.Player@Example.com ", "SecurePassword123!")
        .await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "new.player@example.com");
    assert_eq!(user["plan"], "free");

    let login = app
        .login("new.player@example.com", "SecurePassword123!")
        .await;
    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user_id"], user["user_id"]);
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);

    let me = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<Value>().await.unwrap()["email"],
        "new.player@example.com"
    );
}

#[tokio::test]
async fn registration_refuses_bad_input_and_taken_emails() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("taken@example.com", "SecurePassword123!")
            .await
            .status(),
        201
    );
    assert_error(
        app.register("TAKEN@example.com", "AnotherPassword456")
            .await,
        409,
        "CONFLICT",
    )
    .await;
    let body = assert_error(
        app.register("not-an-email", "SecurePassword123!").await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["error"]["data"]["field"], "email");
    for weak in ["short1", "onlyletterslong", "password123"] {
        let body = assert_error(
            app.register("weak@example.com", weak).await,
            422,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(body["error"]["data"]["field"], "password");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10 to 128 characters"));
    }
    let missing = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({ "email": "x@example.com" }))
        .send()
        .await
        .unwrap();
    assert_error(missing, 422, "VALIDATION_ERROR").await;
    let malformed = app
        .client
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "VALIDATION_ERROR").await;
    let wrong_type = app
        .client
        .post(app.url("/api/auth/register"))
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_error(wrong_type, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    // Nothing above replaced the first account.
    assert_eq!(
        app.login("taken@example.com", "SecurePassword123!")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn login_failures_do_not_say_which_part_was_wrong() {
    let app = spawn_app().await;
    let user = app.user().await;
    let wrong_password = assert_error(
        app.login(&user.email, "WrongPassword999").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let unknown_email = assert_error(
        app.login("nobody@example.com", &user.password).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(
        wrong_password["error"]["message"],
        unknown_email["error"]["message"]
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.user().await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/auth/refresh"))
                .form(&[("refresh_token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let first = refresh(user.refresh_token.clone()).await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.unwrap();
    let second_token = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token);

    // The old token no longer works, and presenting it revokes the newer one as well.
    assert_error(
        refresh(user.refresh_token.clone()).await,
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    assert_error(refresh(second_token).await, 401, "AUTHENTICATION_REQUIRED").await;
    assert_error(
        refresh("made-up".into()).await,
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    let missing_field = app
        .client
        .post(app.url("/api/auth/refresh"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing_field.status(), 400);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let user = app.user().await;
    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .json(&json!({ "refresh_token": user.refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let refresh = app
        .client
        .post(app.url("/api/auth/refresh"))
        .form(&[("refresh_token", &user.refresh_token)])
        .send()
        .await
        .unwrap();
    assert_error(refresh, 401, "AUTHENTICATION_REQUIRED").await;
}

/// Whether `token` still opens reads, writes and WebSocket tickets: answers the statuses.
async fn what_opens(app: &TestApp, token: &str) -> [u16; 3] {
    let read = app.client.get(app.url("/api/auth/me")).bearer_auth(token);
    let write = app.client.put(app.url("/api/users/me")).bearer_auth(token);
    let write = write.json(&json!({"display_name": "Still Here"}));
    let ticket = app
        .client
        .post(app.url("/api/v2/ws/ticket"))
        .bearer_auth(token);
    let mut statuses = [0; 3];
    for (at, request) in [read, write, ticket].into_iter().enumerate() {
        statuses[at] = request.send().await.unwrap().status().as_u16();
    }
    statuses
}

/// A session ends at logout, when its refresh token is reused (stolen), and with its
/// account: its access token stops working at once, not when it expires.
#[tokio::test]
async fn an_ended_sessions_access_token_stops_working_at_once() {
    let app = spawn_app().await;
    let user = app.user().await;
    let second = app.login(&user.email, &user.password).await;
    let second: Value = second.json().await.unwrap();
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(what_opens(&app, &user.access_token).await, [200, 200, 200]);

    let logout = app.with_refresh_token("logout", &user.refresh_token).await;
    assert_eq!(logout.status(), 204);
    assert_eq!(what_opens(&app, &user.access_token).await, [401, 401, 401]);
    assert_eq!(
        what_opens(&app, &second_access).await,
        [200, 200, 200],
        "another session of the same account goes on"
    );

    // The second session's refresh token presented twice: the session is taken as stolen.
    let refresh = second["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.with_refresh_token("refresh", refresh).await.status(),
        200
    );
    assert_eq!(
        app.with_refresh_token("refresh", refresh).await.status(),
        401
    );
    assert_eq!(what_opens(&app, &second_access).await, [401, 401, 401]);

    let doomed = app.user().await;
    let closed = app.client.delete(app.url("/api/users/me"));
    let closed = closed.bearer_auth(&doomed.access_token);
    let closed = closed.json(&json!({"password": doomed.password})).send();
    assert_eq!(closed.await.unwrap().status(), 204);
    assert_eq!(
        what_opens(&app, &doomed.access_token).await,
        [401, 401, 401]
    );
}

#[tokio::test]
async fn expired_forged_and_foreign_algorithm_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.user().await;
    let auth = &app.config.auth;
    let now = Utc::now().timestamp();
    let sid = uuid::Uuid::now_v7();
    let claims = |exp: i64| json!({ "sub": user.user_id, "iss": auth.issuer, "aud": auth.audience, "iat": now - 1000, "exp": exp, "sid": sid });
    let secret = EncodingKey::from_secret(auth.jwt_secret.as_bytes());
    let expired = encode(&Header::new(Algorithm::HS256), &claims(now - 60), &secret).unwrap();
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(now + 600),
        &EncodingKey::from_secret(b"not-the-secret-not-the-secret-123"),
    )
    .unwrap();
    let other_algorithm =
        encode(&Header::new(Algorithm::HS512), &claims(now + 600), &secret).unwrap();
    let wrong_audience = encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": user.user_id, "iss": auth.issuer, "aud": "someone-else", "iat": now, "exp": now + 600 }),
        &secret,
    )
    .unwrap();
    let valid = encode(&Header::new(Algorithm::HS256), &claims(now + 600), &secret).unwrap();
    // alg "none": header and payload with an empty signature.
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims(now + 600).to_string())
        )
    };
    for (name, token) in [
        ("expired", &expired),
        ("forged", &forged),
        ("HS512", &other_algorithm),
        ("audience", &wrong_audience),
        ("none", &unsigned),
    ] {
        let response = app
            .client
            .get(app.url("/api/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let body = assert_error(response, 401, "AUTHENTICATION_REQUIRED").await;
        if name == "expired" {
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expired"));
        }
    }
    let ok = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the same claims, correctly signed, pass");
    let no_header = app
        .client
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_error(no_header, 401, "AUTHENTICATION_REQUIRED").await;
    let basic = app
        .client
        .get(app.url("/api/auth/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "AUTHENTICATION_REQUIRED").await;
}
