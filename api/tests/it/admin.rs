//! Roles, permissions and the admin's listing of accounts; the first admin made by the
//! `api admin grant` command.

use std::process::Command;

use serde_json::{json, Value};

use crate::{
    control::{create_small, job, post},
    helpers::{assert_error, spawn_app, TestApp, TestUser},
    processes::workspace_binary,
};

/// Runs `api admin grant EMAIL` against the app's database, as an operator would.
pub fn grant_admin(app: &TestApp, email: &str) -> std::process::Output {
    Command::new(workspace_binary("api"))
        .args(["admin", "grant", email])
        .envs(&app.settings)
        .output()
        .expect("the api binary runs")
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> reqwest::Response {
    app.get(path, user).send().await.unwrap()
}

async fn permitted(app: &TestApp, user: &TestUser, action: &str, resource: &str) -> bool {
    let path = format!("/api/users/me/permissions?action={action}&resource={resource}");
    let body: Value = get(app, user, &path).await.json().await.unwrap();
    body["permitted"].as_bool().expect("a yes or no")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_comes_from_the_command_and_grants_roles() {
    let app = spawn_app().await;
    let admin = app.user().await;
    let player = app.user().await;
    assert!(!permitted(&app, &admin, "read", "User").await);
    let refused = get(&app, &admin, "/api/admin/users").await;
    assert_error(refused, 403, "INSUFFICIENT_PERMISSIONS").await;

    let unknown = grant_admin(&app, "nobody@example.com");
    assert!(!unknown.status.success(), "no such account");
    let granted = grant_admin(&app, &admin.email);
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert!(permitted(&app, &admin, "delete", "Job").await);
    assert!(!permitted(&app, &player, "read", "Job").await);
    let bad = get(
        &app,
        &admin,
        "/api/users/me/permissions?action=fly&resource=Job",
    )
    .await;
    assert_error(bad, 422, "VALIDATION_ERROR").await;

    let support = json!({
        "name": "support",
        "description": "Reads accounts to help players",
        "permissions": [{"action": "read", "resource": "User"}],
    });
    let created = app
        .client
        .post(app.url("/api/admin/roles"))
        .bearer_auth(&admin.access_token)
        .json(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let by_player = app
        .client
        .post(app.url(&format!("/api/users/{}/roles", player.user_id)))
        .bearer_auth(&player.access_token)
        .json(&json!({"role": "support"}))
        .send()
        .await
        .unwrap();
    assert_error(by_player, 403, "INSUFFICIENT_PERMISSIONS").await;
    let by_admin = app
        .client
        .post(app.url(&format!("/api/users/{}/roles", player.user_id)))
        .bearer_auth(&admin.access_token)
        .json(&json!({"role": "support", "application_id": "app_12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 200);
    let roles: Value = by_admin.json().await.unwrap();
    assert_eq!(roles["roles"], json!(["user", "support"]));
    assert!(permitted(&app, &player, "read", "User").await);
    assert!(
        !permitted(&app, &player, "write", "Role").await,
        "only what the role holds"
    );
    assert_eq!(get(&app, &player, "/api/admin/users").await.status(), 200);

    let missing_role = app
        .client
        .post(app.url(&format!("/api/users/{}/roles", player.user_id)))
        .bearer_auth(&admin.access_token)
        .json(&json!({"role": "editor"}))
        .send()
        .await
        .unwrap();
    assert_error(missing_role, 404, "RESOURCE_NOT_FOUND").await;
    let nobody = format!("/api/users/{}/roles", uuid::Uuid::new_v4());
    for role in ["support", "user"] {
        let request = app
            .client
            .post(app.url(&nobody))
            .bearer_auth(&admin.access_token);
        let missing_user = request.json(&json!({ "role": role })).send().await.unwrap();
        assert_error(missing_user, 404, "RESOURCE_NOT_FOUND").await;
    }
    let revoke = app
        .client
        .delete(app.url(&format!("/api/users/{}/roles/support", player.user_id)))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    assert!(!permitted(&app, &player, "read", "User").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listing_pages_filters_and_searches_literally() {
    let app = spawn_app().await;
    let admin = app.user().await;
    assert!(grant_admin(&app, &admin.email).status.success());
    for (email, name) in [
        ("ann%50@example.com", "ann_x"),
        ("bob@example.com", "bob"),
        ("annabel@example.com", "annabel"),
    ] {
        let body = json!({"email": email, "password": "SecurePassword123!", "username": name});
        let response = app
            .client
            .post(app.url("/api/auth/register"))
            .json(&body)
            .send();
        assert_eq!(response.await.unwrap().status(), 201);
    }
    let listing = |query: &str| {
        let path = format!("/api/admin/users?{query}");
        let app = &app;
        let admin = &admin;
        async move {
            let response = get(app, admin, &path).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let emails = |page: &Value| -> Vec<String> {
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = listing("per_page=2").await;
    assert_eq!(
        (all["total"].as_i64(), all["total_pages"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        emails(&all),
        ["annabel@example.com", "bob@example.com"],
        "newest first"
    );
    let second = listing("per_page=2&page=2").await;
    assert_eq!(
        emails(&second),
        ["ann%50@example.com", admin.email.as_str()]
    );

    let any_case = listing("search=ANN").await;
    assert_eq!(emails(&any_case).len(), 2, "any case, username or email");
    let percent = listing("search=%25").await;
    assert_eq!(
        emails(&percent),
        ["ann%50@example.com"],
        "% matches only itself"
    );
    let underscore = listing("search=_").await;
    assert_eq!(
        emails(&underscore),
        ["ann%50@example.com"],
        "_ matches only itself"
    );
    assert_eq!(emails(&listing("role=admin").await), [admin.email.as_str()]);
    assert_eq!(listing("email_verified=true").await["total"], 0);
    let one = listing(&format!("search={}", admin.email)).await;
    assert_eq!(one["users"][0]["roles"], json!(["user", "admin"]));

    for bad in [
        "per_page=101",
        "per_page=0",
        "page=0",
        "role=Not%20A%20Role",
    ] {
        let response = get(&app, &admin, &format!("/api/admin/users?{bad}")).await;
        assert_error(response, 422, "VALIDATION_ERROR").await;
    }
    let user_id = one["users"][0]["user_id"].as_str().unwrap();
    let detail: Value = get(&app, &admin, &format!("/api/admin/users/{user_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["email"], admin.email.as_str());
    let missing = get(
        &app,
        &admin,
        &format!("/api/admin/users/{}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_error(missing, 404, "RESOURCE_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_every_accounts_jobs_by_status_and_owner() {
    let app = spawn_app().await;
    let admin = app.user().await;
    assert!(grant_admin(&app, &admin.email).status.success());
    let player = app.user().await;
    let other = app.user().await;
    for user in [&player, &player, &other] {
        let clip = crate::control::clip(testkit::media::portrait_no_audio());
        assert_eq!(app.create_job(user, &[clip], &[]).await.status(), 201);
    }
    let refused = get(&app, &player, "/api/admin/jobs").await;
    assert_error(refused, 403, "INSUFFICIENT_PERMISSIONS").await;

    let jobs = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let response = get(app, admin, &format!("/api/admin/jobs?{query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let all = jobs("per_page=2".into()).await;
    assert_eq!(
        (all["total"].as_i64(), all["total_pages"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        all["jobs"][0]["user_id"],
        other.user_id.as_str(),
        "newest first"
    );
    let theirs = jobs(format!("user_id={}", player.user_id)).await;
    assert_eq!(theirs["total"], 2);
    assert_eq!(jobs("status=PENDING".into()).await["total"], 3);
    assert_eq!(jobs("status=SUCCESS".into()).await["total"], 0);
    for bad in ["status=DONE", "user_id=42", "per_page=500"] {
        let response = get(&app, &admin, &format!("/api/admin/jobs?{bad}")).await;
        assert_error(response, 422, "VALIDATION_ERROR").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_cancel_and_rerun_any_job_and_edit_accounts() {
    let mut app = spawn_app().await;
    let admin = app.user().await;
    assert!(grant_admin(&app, &admin.email).status.success());
    let player = app.user().await;
    let job_id = create_small(&app, &player).await;
    let cancel = format!("/api/admin/jobs/{job_id}/cancel");
    let rerun = format!("/api/admin/jobs/{job_id}/retry");
    let refused = post(&app, &player, &cancel).send().await.unwrap();
    assert_error(refused, 403, "INSUFFICIENT_PERMISSIONS").await;
    let early = post(&app, &admin, &rerun).send().await.unwrap();
    assert_error(early, 409, "CONFLICT").await;

    let cancelled = post(&app, &admin, &cancel).send().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(job(&app, &player, &job_id).await["status"], "CANCELLED");
    let again = post(&app, &admin, &cancel).send().await.unwrap();
    assert_error(again, 409, "CONFLICT").await;
    let pending = post(&app, &admin, &rerun).send().await.unwrap();
    assert_eq!(pending.status(), 200);
    assert_eq!(
        pending.json::<Value>().await.unwrap()["data"]["status"],
        "PENDING"
    );
    app.start_worker().await;
    let ended = app
        .wait_for_job_end(&player, &job_id, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(
        ended["status"], "SUCCESS",
        "run again from the start: {ended}"
    );
    let missing = format!("/api/admin/jobs/{}/retry", uuid::Uuid::new_v4());
    let missing = post(&app, &admin, &missing).send().await.unwrap();
    assert_error(missing, 404, "RESOURCE_NOT_FOUND").await;

    let account = format!("/api/admin/users/{}", player.user_id);
    let edit = |body: Value| {
        app.client
            .put(app.url(&account))
            .bearer_auth(&admin.access_token)
            .json(&body)
    };
    let edited = edit(json!({"email_verified": true, "display_name": "Pat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let me = app.user_json("/api/auth/me", &player).await;
    assert_eq!(
        (me["email_verified"].as_bool(), me["display_name"].as_str()),
        (Some(true), Some("Pat"))
    );
    let bad = edit(json!({"username": "x"})).send().await.unwrap();
    assert_error(bad, 422, "VALIDATION_ERROR").await;
    let by_player = app
        .client
        .delete(app.url(&account))
        .bearer_auth(&player.access_token);
    assert_error(
        by_player.send().await.unwrap(),
        403,
        "INSUFFICIENT_PERMISSIONS",
    )
    .await;
    let deleted = app
        .client
        .delete(app.url(&account))
        .bearer_auth(&admin.access_token);
    assert_eq!(deleted.send().await.unwrap().status(), 204);
    assert_error(get(&app, &admin, &account).await, 404, "RESOURCE_NOT_FOUND").await;
    assert_error(
        app.login(&player.email, &player.password).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}
