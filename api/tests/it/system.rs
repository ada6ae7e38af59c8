//! Health and the OpenAPI document.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_dependency_and_needs_a_live_worker() {
    let mut app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 503, "no worker yet");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["database"], "connected");
    assert_eq!(body["redis"], "connected");
    assert_eq!(body["storage"], "accessible");
    assert_eq!(body["worker"], "disconnected");

    app.start_worker().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = app.client.get(app.url("/health")).send().await.unwrap();
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], "healthy");
            assert_eq!(body["worker"], "connected");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never reported healthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    // The routes and the document come from one table (`api::routes::table`), so the
    // document lists what the app serves; a route added outside the table would be neither.
    assert!(
        documented.len() >= 24 && documented.contains(&("post".into(), "/api/v2/jobs".into())),
        "the document lists the app's routes: {documented:?}"
    );
    let unrouted = |status: u16, body: &Value| {
        status == 405 || (status == 404 && body["error"]["message"] == "No such route")
    };
    // The check below can tell an unrouted path from a routed one.
    let response = app
        .client
        .get(app.url("/api/v2/nowhere"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(unrouted(status, &response.json().await.unwrap()));

    // Each documented route is served (not the router's 404/405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{job_id}", &uuid::Uuid::nil().to_string())
            .replace("{style_id}", "chill")
            .replace("{asset}", "init.js");
        let request = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            !unrouted(status, &body),
            "{method} {path} is documented but not routed ({status})"
        );
    }
    for schema in ["ErrorEnvelope", "ErrorCode"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} documented"
        );
    }
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    let policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let page = docs.text().await.unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js"), "{page}");
    assert!(
        !page.contains("http"),
        "no script or style from elsewhere: {page}"
    );
    let init = app
        .client
        .get(app.url("/docs/init.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
