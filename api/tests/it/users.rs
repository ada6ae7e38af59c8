//! `/api/users/me`: a user's application data, and deleting an account.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, TestUser};

async fn set(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/users/me/data"))
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> reqwest::Response {
    app.get(path, user).send().await.unwrap()
}

async fn value(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let response = get(app, user, path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_stored_replaced_listed_and_deleted_per_application() {
    let app = spawn_app().await;
    let user = app.user().await;
    let preferences = json!({"theme": "dark", "notifications": true});
    let stored = set(
        &app,
        &user,
        json!({"key": "preferences", "value": preferences}),
    )
    .await;
    assert_eq!(stored.status(), 200);
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored["data"]["key"], "preferences");
    assert_eq!(stored["data"]["application_id"], Value::Null);

    let scoped = json!({"key": "preferences", "value": [1, 2], "application_id": "app_12345"});
    assert_eq!(set(&app, &user, scoped).await.status(), 200);
    let unscoped = value(&app, &user, "/api/users/me/data/preferences").await;
    assert_eq!(
        unscoped["value"], preferences,
        "one application's key is not another's"
    );
    let of_app = "/api/users/me/data/preferences?application_id=app_12345";
    assert_eq!(value(&app, &user, of_app).await["value"], json!([1, 2]));

    let extreme = json!([1.7976931348623157e308, 6.959716874485567e-42]);
    let stored = set(&app, &user, json!({"key": "extreme", "value": extreme})).await;
    assert_eq!(
        stored.status(),
        200,
        "numbers at f64's limits are stored as sent"
    );
    let extreme_back = value(&app, &user, "/api/users/me/data/extreme").await;
    assert_eq!(extreme_back["value"], extreme);
    let gone = app.client.delete(app.url("/api/users/me/data/extreme"));
    assert_eq!(
        gone.bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let replaced = json!({"key": "preferences", "value": "light"});
    assert_eq!(set(&app, &user, replaced).await.status(), 200);
    let now = value(&app, &user, "/api/users/me/data/preferences").await;
    assert_eq!(now["value"], "light");
    assert_eq!(now["size_bytes"], 7, "the value's size as JSON text");

    assert_eq!(
        set(&app, &user, json!({"key": "a.first", "value": 0}))
            .await
            .status(),
        200
    );
    let listed = value(&app, &user, "/api/users/me/data").await;
    let keys: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["a.first", "preferences"],
        "this scope's keys, in order"
    );
    let listed = value(&app, &user, "/api/users/me/data?application_id=app_12345").await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);

    let other = app.user().await;
    let theirs = get(&app, &other, "/api/users/me/data/preferences").await;
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;

    let delete = app
        .client
        .delete(app.url("/api/users/me/data/preferences"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    let gone = get(&app, &user, "/api/users/me/data/preferences").await;
    assert_error(gone, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(
        value(&app, &user, of_app).await["value"],
        json!([1, 2]),
        "the application's key stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_oversized_values_and_a_full_quota_are_refused_keeping_what_is_stored() {
    let app = spawn_app_with(&[
        ("USER_DATA_MAX_KEYS", "2"),
        ("USER_DATA_MAX_VALUE_KIB", "1"),
    ])
    .await;
    let user = app.user().await;
    assert_eq!(
        set(&app, &user, json!({"key": "kept", "value": "v1"}))
            .await
            .status(),
        200
    );

    for key in ["", "_hidden", "a b", "50%_off", "a/b", &"k".repeat(65)] {
        let refused = set(&app, &user, json!({"key": key, "value": 1})).await;
        let body = assert_error(refused, 422, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["data"]["field"], "key", "{key:?}");
    }
    let bad_app = set(
        &app,
        &user,
        json!({"key": "k", "value": 1, "application_id": "x y"}),
    )
    .await;
    assert_error(bad_app, 422, "VALIDATION_ERROR").await;
    let bad_scope = get(&app, &user, "/api/users/me/data?application_id=%25").await;
    assert_error(bad_scope, 422, "VALIDATION_ERROR").await;
    let nul = set(&app, &user, json!({"key": "kept", "value": {"a\0": "b"}})).await;
    let body = assert_error(nul, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["data"]["field"], "value");
    let no_value = set(&app, &user, json!({"key": "k"})).await;
    assert_error(no_value, 422, "VALIDATION_ERROR").await;

    let oversized = json!({"key": "kept", "value": "x".repeat(1100)});
    let refused = set(&app, &user, oversized).await;
    let body = assert_error(refused, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(body["error"]["data"]["limit_bytes"], 1024);
    let huge_body = json!({"key": "kept", "value": "x".repeat(20_000)});
    assert_error(set(&app, &user, huge_body).await, 413, "PAYLOAD_TOO_LARGE").await;

    assert_eq!(
        set(&app, &user, json!({"key": "second", "value": 2}))
            .await
            .status(),
        200
    );
    let third = set(&app, &user, json!({"key": "third", "value": 3})).await;
    let body = assert_error(third, 403, "QUOTA_EXCEEDED").await;
    assert_eq!(body["error"]["data"]["limit"], 2);
    let elsewhere = json!({"key": "third", "value": 3, "application_id": "other"});
    assert_error(set(&app, &user, elsewhere).await, 403, "QUOTA_EXCEEDED").await;
    let replaced = set(&app, &user, json!({"key": "second", "value": 22})).await;
    assert_eq!(replaced.status(), 200, "replacing a key needs no new place");

    let kept = value(&app, &user, "/api/users/me/data/kept").await;
    assert_eq!(kept["value"], "v1", "no refusal changed what was stored");

    let anonymous = app.client.get(app.url("/api/users/me/data")).send().await;
    assert_error(anonymous.unwrap(), 401, "AUTHENTICATION_REQUIRED").await;
}

async fn put_profile(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.client
        .put(app.url("/api/users/me"))
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_has_a_unique_username_and_a_display_name() {
    let app = spawn_app().await;
    let registered = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({"email": "alice@example.com", "password": "SecurePassword123!", "username": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["username"], "Alice");
    let taken = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({"email": "other@example.com", "password": "SecurePassword123!", "username": "alice"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(taken, 409, "CONFLICT").await;
    assert_eq!(
        body["error"]["data"]["field"], "username",
        "case does not make a name new"
    );

    let user = app.user().await;
    let fresh: Value = get(&app, &user, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fresh["username"], Value::Null);
    assert_eq!(fresh["email"], user.email.as_str());

    let named = put_profile(
        &app,
        &user,
        json!({"username": "bob_2", "display_name": " Bob "}),
    )
    .await;
    assert_eq!(named.status(), 200);
    let named: Value = named.json().await.unwrap();
    assert_eq!(
        (named["username"].as_str(), named["display_name"].as_str()),
        (Some("bob_2"), Some("Bob"))
    );
    let me: Value = get(&app, &user, "/api/auth/me").await.json().await.unwrap();
    assert_eq!(me["username"], "bob_2", "the same profile everywhere");

    let clash = put_profile(&app, &user, json!({"username": "ALICE"})).await;
    assert_error(clash, 409, "CONFLICT").await;
    for bad in [
        json!({"username": "ab"}),
        json!({"username": "x".repeat(51)}),
        json!({"username": "bob smith"}),
        json!({"display_name": "x".repeat(101)}),
        json!({"email": "new@example.com"}),
    ] {
        let refused = put_profile(&app, &user, bad.clone()).await;
        assert_error(refused, 422, "VALIDATION_ERROR").await;
    }
    let kept: Value = get(&app, &user, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (kept["username"].as_str(), kept["display_name"].as_str()),
        (Some("bob_2"), Some("Bob")),
        "refusals change nothing"
    );

    let cleared = put_profile(&app, &user, json!({"display_name": ""})).await;
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["display_name"], Value::Null);
    assert_eq!(cleared["username"], "bob_2", "a field left out stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_its_jobs_and_stored_objects() {
    let mut app = spawn_app_with(&[("QUEUE_VACUUM_SECS", "1")]).await;
    app.start_worker().await;
    let user = app.user().await;
    let neighbour = app.user().await;
    let mut rendered = Vec::new();
    for owner in [&user, &neighbour] {
        let job_id = crate::control::create_small(&app, owner).await;
        let ended = app
            .wait_for_job_end(owner, &job_id, Duration::from_secs(60))
            .await;
        assert_eq!(ended["status"], "SUCCESS", "{ended}");
        rendered.push(job_id);
    }
    let objects = |job_id: &str| {
        let prefix = format!("jobs/{job_id}/");
        let storage = app.storage.clone();
        async move { storage.keys_under(&prefix).await }
    };
    assert!(
        objects(&rendered[0]).await.unwrap().len() >= 2,
        "clip and outputs stored"
    );

    let delete = |password: &str| {
        app.client
            .delete(app.url("/api/users/me"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "password": password }))
            .send()
    };
    let wrong = delete("NotThePassword123").await.unwrap();
    assert_error(wrong, 401, "INVALID_CREDENTIALS").await;
    assert_error(
        delete_without_body(&app, &user).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(delete(&user.password).await.unwrap().status(), 204);

    eventually(
        Duration::from_secs(20),
        "the account's objects to be purged",
        || async { objects(&rendered[0]).await.ok().filter(Vec::is_empty) },
    )
    .await;
    assert!(
        !objects(&rendered[1]).await.unwrap().is_empty(),
        "the neighbour's stay"
    );
    let theirs = app.get(&format!("/api/v2/jobs/{}", rendered[1]), &neighbour);
    assert_eq!(theirs.send().await.unwrap().status(), 200);
    let gone = app.get("/api/users/me", &user).send().await.unwrap();
    assert_error(gone, 401, "AUTHENTICATION_REQUIRED").await;
    // Its access token still verifies until it expires; writes with it are refused too.
    let data = set(&app, &user, json!({"key": "k", "value": 1})).await;
    assert_error(data, 401, "AUTHENTICATION_REQUIRED").await;
    let clip = crate::control::clip(testkit::media::portrait_no_audio());
    let job = app.create_job(&user, &[clip], &[]).await;
    assert_error(job, 401, "AUTHENTICATION_REQUIRED").await;
}

async fn delete_without_body(app: &TestApp, user: &TestUser) -> reqwest::Response {
    let request = app.client.delete(app.url("/api/users/me"));
    request
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
}
