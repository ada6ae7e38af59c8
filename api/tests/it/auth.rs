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

/// Asks for a file pass with `access_token`: answers the `montage_files=…` pair and the
/// cookie's attributes.
async fn file_pass(app: &TestApp, access_token: &str) -> (String, String) {
    let answer = app.client.post(app.url("/api/auth/file-pass"));
    let answer = answer.bearer_auth(access_token).send().await.unwrap();
    assert_eq!(answer.status(), 204);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    let (pair, attributes) = cookie.split_once(';').unwrap();
    (pair.to_owned(), attributes.to_owned())
}

/// Seed 001's browser navigates to a download with a file pass cookie instead of a bearer.
/// The attacks: the pass on any other route, as a bearer, for another player's job, from a
/// session that ended; an access token in the cookie.
#[tokio::test]
async fn a_file_pass_opens_only_its_owners_downloads_and_posters() {
    let app = spawn_app().await;
    let (alice, mallory) = (app.user().await, app.user().await);
    let created = app
        .create_job(&alice, &[crate::jobs::small_clip()], &[])
        .await;
    let created: Value = created.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap();
    let (pass, attributes) = file_pass(&app, &alice.access_token).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/v2;", "Max-Age="] {
        assert!(
            attributes.contains(attribute),
            "{attribute} in {attributes}"
        );
    }
    let with_cookie = |method: reqwest::Method, path: &str, cookie: &str| {
        let request = app.client.request(method, app.url(path));
        request.header("cookie", cookie.to_owned()).send()
    };
    for file in ["download", "poster"] {
        let path = format!("/api/v2/jobs/{job_id}/{file}?format=landscape");
        let opened = with_cookie(reqwest::Method::GET, &path, &pass)
            .await
            .unwrap();
        assert_error(opened, 409, "JOB_NOT_READY").await;
        let bare = app.client.get(app.url(&path)).send().await.unwrap();
        assert_error(bare, 401, "AUTHENTICATION_REQUIRED").await;
    }
    // A clip's thumbnail, for the web app's <img>: admitted, and nobody's clip is found.
    let thumbnail = format!("/api/v2/clips/{}/thumbnail", uuid::Uuid::nil());
    let opened = with_cookie(reqwest::Method::GET, &thumbnail, &pass);
    assert_error(opened.await.unwrap(), 404, "RESOURCE_NOT_FOUND").await;
    // Nothing else reads the cookie, reading or writing.
    let job = format!("/api/v2/jobs/{job_id}");
    for (method, path) in [
        (reqwest::Method::GET, job.clone()),
        (reqwest::Method::DELETE, job.clone()),
        (reqwest::Method::POST, format!("{job}/cancel")),
        (reqwest::Method::POST, format!("{job}/share")),
        (reqwest::Method::GET, "/api/auth/me".to_owned()),
        (reqwest::Method::GET, "/api/v2/clips".to_owned()),
        (
            reqwest::Method::GET,
            format!("/api/v2/clips/{}", uuid::Uuid::nil()),
        ),
    ] {
        let refused = with_cookie(method.clone(), &path, &pass).await.unwrap();
        assert_error(refused, 401, "AUTHENTICATION_REQUIRED").await;
    }
    let token = pass.split_once('=').unwrap().1;
    let as_bearer = app.client.get(app.url("/api/auth/me")).bearer_auth(token);
    assert_error(
        as_bearer.send().await.unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    let download = format!("{job}/download");
    let forged = format!("montage_files={}", alice.access_token);
    let forged = with_cookie(reqwest::Method::GET, &download, &forged)
        .await
        .unwrap();
    assert_error(forged, 401, "AUTHENTICATION_REQUIRED").await;
    // Another player's pass finds nothing of Alice's.
    let (theirs, _) = file_pass(&app, &mallory.access_token).await;
    let theirs = with_cookie(reqwest::Method::GET, &download, &theirs)
        .await
        .unwrap();
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;
    // The pass ends with its session.
    let logout = app.with_refresh_token("logout", &alice.refresh_token).await;
    assert_eq!(logout.status(), 204);
    let ended = with_cookie(reqwest::Method::GET, &download, &pass)
        .await
        .unwrap();
    assert_error(ended, 401, "AUTHENTICATION_REQUIRED").await;
}
