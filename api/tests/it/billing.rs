//! Billing through the API: plans, Checkout against a local Stripe stand-in, signed webhooks,
//! and entitlements that follow the plan in real jobs.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, Request, ResponseTemplate,
};

use crate::{
    control::{clip, create, job},
    helpers::{assert_error, spawn_app_with, TestApp, TestUser},
    processes::free_port,
};
use testkit::media;

const WEBHOOK_SECRET: &str = "whsec_test_secret_for_integration";
const PRICE: &str = "price_test_nebula";

/// One request the stand-in received: method, path and decoded form fields.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    form: Vec<(String, String)>,
}

impl Recorded {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A local Stripe (a `wiremock` server) answering the API calls this service makes the way
/// Stripe does; anything else is a 404.
struct StripeStandIn {
    server: MockServer,
}

fn form_of(request: &Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&request.body).unwrap_or_default()
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

impl StripeStandIn {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let created = Arc::new(AtomicUsize::new(0));
        let next = move || created.fetch_add(1, Ordering::SeqCst) + 1;
        let next_session = next.clone();
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(move |request: &Request| {
                let now = chrono::Utc::now().timestamp();
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": format!("cus_test_{}", next()), "object": "customer", "created": now,
                    "livemode": false, "email": field(&form_of(request), "email"),
                }))
            })
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(wiremock::matchers::path_regex(
                "^/v1/customers/cus_test_[0-9]+$",
            ))
            .respond_with(|request: &Request| {
                let id = request.url.path().rsplit('/').next().unwrap_or_default();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": id, "object": "customer", "deleted": true}))
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(move |request: &Request| {
                let (now, count) = (chrono::Utc::now().timestamp(), next_session());
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": format!("cs_test_{count}"), "object": "checkout.session",
                    "automatic_tax": {"enabled": false}, "created": now, "custom_fields": [],
                    "custom_text": {}, "expires_at": now + 86_400, "livemode": false,
                    "mode": "subscription", "payment_method_types": ["card"],
                    "payment_status": "unpaid", "shipping_options": [], "status": "open",
                    "customer": field(&form_of(request), "customer"),
                    "url": format!("https://checkout.stripe.test/c/pay/cs_test_{count}"),
                }))
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/billing_portal/sessions"))
            .respond_with(|request: &Request| {
                let form = form_of(request);
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": "bps_test_1", "object": "billing_portal.session",
                    "configuration": "bpc_test_1", "created": chrono::Utc::now().timestamp(),
                    "customer": field(&form, "customer"), "livemode": false,
                    "return_url": field(&form, "return_url"),
                    "url": "https://billing.stripe.test/p/session/bps_test_1",
                }))
            })
            .mount(&server)
            .await;
        Self { server }
    }

    fn url(&self) -> String {
        format!("{}/", self.server.uri())
    }

    /// Every later call fails the way a Stripe outage does.
    async fn fail(&self) {
        Self::outage().mount(&self.server).await;
    }

    fn outage() -> Mock {
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"error": {"type": "api_error", "message": "stand-in outage"}}),
            ))
            .with_priority(1)
    }

    async fn requests(&self) -> Vec<Recorded> {
        let received = self.server.received_requests().await.unwrap_or_default();
        received
            .iter()
            .map(|request| Recorded {
                method: request.method.to_string(),
                path: request.url.path().to_owned(),
                form: form_of(request),
            })
            .collect()
    }
}

async fn spawn_billing_app(extra: &[(&str, &str)]) -> (TestApp, StripeStandIn) {
    let stand_in = StripeStandIn::start().await;
    let url = stand_in.url();
    let mut settings = vec![
        ("STRIPE_API_BASE", url.as_str()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_PRO_PRICE_ID", PRICE),
        ("STRIPE_TIMEOUT_SECS", "3"),
    ];
    settings.extend_from_slice(extra);
    (spawn_app_with(&settings).await, stand_in)
}

/// Signs `body` exactly as Stripe does.
fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn deliver(
    app: &TestApp,
    body: &Value,
    signature_header: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v2/billing/webhook"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(header) = signature_header {
        request = request.header("Stripe-Signature", header);
    }
    request.send().await.unwrap()
}

/// Delivers a correctly signed event and expects it acknowledged.
async fn deliver_signed(app: &TestApp, body: &Value) {
    let header = signature(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        &body.to_string(),
    );
    let response = deliver(app, body, Some(header)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": created, "livemode": false,
           "api_version": "2025-09-30.clover", "data": {"object": object}})
}

fn checkout_completed(id: &str, created: i64, user: &TestUser) -> Value {
    event(
        id,
        "checkout.session.completed",
        created,
        json!({
            "id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
            "client_reference_id": user.user_id, "customer": "cus_test_1", "subscription": "sub_test_1",
            "metadata": {"user_id": user.user_id, "plan": "pro"}, "payment_status": "paid", "status": "complete",
        }),
    )
}

fn subscription_event(
    id: &str,
    kind: &str,
    created: i64,
    user: &TestUser,
    status: &str,
    cancel_at_period_end: bool,
) -> Value {
    event(
        id,
        kind,
        created,
        json!({
            "id": "sub_test_1", "object": "subscription", "customer": "cus_test_1", "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "metadata": {"user_id": user.user_id, "plan": "pro"},
            "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": 1_900_000_000}]},
        }),
    )
}

fn invoice_event(id: &str, kind: &str, created: i64) -> Value {
    event(
        id,
        kind,
        created,
        json!({
            "id": "in_test_1", "object": "invoice", "customer": "cus_test_1",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_test_1"}},
        }),
    )
}

async fn subscription(app: &TestApp, user: &TestUser) -> Value {
    app.user_json("/api/v2/billing/subscription", user).await
}

async fn assert_subscription(app: &TestApp, user: &TestUser, plan: &str, status: &str) {
    let view = subscription(app, user).await;
    assert_eq!(
        (&view["plan"], &view["status"]),
        (&json!(plan), &json!(status)),
        "{view}"
    );
}

async fn checkout(app: &TestApp, user: &TestUser, plan: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/billing/checkout"))
        .bearer_auth(&user.access_token)
        .form(&[("plan", plan)])
        .send()
        .await
        .unwrap()
}

async fn upgrade(app: &TestApp, user: &TestUser) {
    let now = chrono::Utc::now().timestamp();
    deliver_signed(
        app,
        &checkout_completed(&format!("evt_up_{}", user.user_id), now, user),
    )
    .await;
    assert_eq!(subscription(app, user).await["plan"], "pro");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_listed_with_their_limits() {
    let (app, _) = spawn_billing_app(&[]).await;
    let body = app.public_json("/api/v2/billing/plans").await;
    let plans = body["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0]["id"], "free");
    assert_eq!(plans[0]["name"], "Cosmic Cadet");
    assert_eq!(plans[0]["price"], 0);
    assert_eq!(plans[0]["limits"]["max_duration"], 60);
    assert_eq!(plans[0]["limits"]["watermark"], true);
    assert_eq!(plans[1]["id"], "pro");
    assert_eq!(plans[1]["name"], "Nebula Knight");
    assert_eq!(plans[1]["price"], 9);
    assert_eq!(plans[1]["limits"]["max_duration"], 120);
    assert_eq!(plans[1]["limits"]["watermark"], false);
    assert_eq!(plans[1]["limits"]["priority"], true);
    assert!(plans[1]["features"]
        .as_array()
        .unwrap()
        .contains(&json!("No watermark")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_creates_a_subscription_session_and_reuses_the_customer() {
    let (app, stripe) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let response = checkout(&app, &user, "pro").await;
    assert_eq!(response.status(), 200);
    let url = response.json::<Value>().await.unwrap()["checkout_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("https://checkout.stripe.test/c/pay/cs_test_"),
        "{url}"
    );

    let requests = stripe.requests().await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    let customer = &requests[0];
    assert_eq!(
        (customer.method.as_str(), customer.path.as_str()),
        ("POST", "/v1/customers")
    );
    assert_eq!(customer.field("email"), Some(user.email.as_str()));
    assert_eq!(
        customer.field("metadata[user_id]"),
        Some(user.user_id.as_str())
    );
    let session = &requests[1];
    assert_eq!(session.path, "/v1/checkout/sessions");
    for (field, value) in [
        ("mode", "subscription"),
        ("customer", "cus_test_1"),
        ("client_reference_id", user.user_id.as_str()),
        ("metadata[user_id]", user.user_id.as_str()),
        ("metadata[plan]", "pro"),
        (
            "subscription_data[metadata][user_id]",
            user.user_id.as_str(),
        ),
        ("subscription_data[metadata][plan]", "pro"),
        ("line_items[0][price]", PRICE),
        ("line_items[0][quantity]", "1"),
    ] {
        assert_eq!(
            session.field(field),
            Some(value),
            "{field} in {:?}",
            session.form
        );
    }
    assert!(session.field("success_url").is_some() && session.field("cancel_url").is_some());

    // The same customer is reused.
    assert_eq!(checkout(&app, &user, "pro").await.status(), 200);
    let requests = stripe.requests().await;
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].path, "/v1/checkout/sessions");
    assert_eq!(requests[2].field("customer"), Some("cus_test_1"));

    assert_error(
        checkout(&app, &user, "platinum").await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(checkout(&app, &user, "free").await, 409, "CONFLICT").await;
    upgrade(&app, &user).await;
    assert_error(checkout(&app, &user, "pro").await, 409, "CONFLICT").await;
    let anonymous = app
        .client
        .post(app.url("/api/v2/billing/checkout"))
        .form(&[("plan", "pro")])
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "AUTHENTICATION_REQUIRED").await;
    assert_eq!(
        stripe.requests().await.len(),
        3,
        "refused checkouts never reach Stripe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_answers_502_when_stripe_fails_or_cannot_be_reached() {
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let app = spawn_app_with(&[
        ("STRIPE_API_BASE", closed.as_str()),
        ("STRIPE_TIMEOUT_SECS", "3"),
    ])
    .await;
    let user = app.user().await;
    assert_error(
        checkout(&app, &user, "pro").await,
        502,
        "PAYMENT_PROVIDER_ERROR",
    )
    .await;

    let (app, stripe) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    stripe.fail().await;
    assert_error(
        checkout(&app, &user, "pro").await,
        502,
        "PAYMENT_PROVIDER_ERROR",
    )
    .await;
    assert_eq!(subscription(&app, &user).await["plan"], "free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_upgrade_update_and_downgrade_the_plan() {
    let (app, _) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let start = chrono::Utc::now().timestamp();
    assert_eq!(
        subscription(&app, &user).await,
        json!({"plan": "free", "status": "none", "current_period_end": null, "cancel_at_period_end": false})
    );

    deliver_signed(&app, &checkout_completed("evt_1", start, &user)).await;
    assert_subscription(&app, &user, "pro", "active").await;

    deliver_signed(
        &app,
        &subscription_event(
            "evt_2",
            "customer.subscription.updated",
            start + 1,
            &user,
            "active",
            true,
        ),
    )
    .await;
    let view = subscription(&app, &user).await;
    assert_eq!(view["cancel_at_period_end"], true, "{view}");
    assert_eq!(view["current_period_end"], "2030-03-17T17:46:40Z", "{view}");

    deliver_signed(
        &app,
        &subscription_event(
            "evt_3",
            "customer.subscription.deleted",
            start + 2,
            &user,
            "canceled",
            false,
        ),
    )
    .await;
    assert_subscription(&app, &user, "free", "canceled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_marks_past_due_and_keeps_the_plan_until_it_ends() {
    let (app, _) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let start = chrono::Utc::now().timestamp();
    deliver_signed(&app, &checkout_completed("evt_1", start, &user)).await;
    deliver_signed(
        &app,
        &invoice_event("evt_2", "invoice.payment_failed", start + 1),
    )
    .await;
    assert_subscription(&app, &user, "pro", "past_due").await;
    deliver_signed(&app, &invoice_event("evt_3", "invoice.paid", start + 2)).await;
    assert_eq!(subscription(&app, &user).await["status"], "active");
    // Stripe gives up on the payment: the subscription becomes unpaid and the plan goes.
    deliver_signed(
        &app,
        &subscription_event(
            "evt_4",
            "customer.subscription.updated",
            start + 3,
            &user,
            "unpaid",
            false,
        ),
    )
    .await;
    assert_subscription(&app, &user, "free", "unpaid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_and_stale_webhooks_are_refused_and_change_nothing() {
    let (app, _) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let now = chrono::Utc::now().timestamp();
    let upgrade_event = checkout_completed("evt_1", now, &user);
    let body = upgrade_event.to_string();
    for header in [
        None,
        Some(signature("whsec_someone_else", now, &body)),
        Some(signature(WEBHOOK_SECRET, now - 301, &body)),
        Some(signature(
            WEBHOOK_SECRET,
            now,
            &body.replace("evt_1", "evt_2"),
        )),
        Some("t=abc,v1=zz".to_owned()),
    ] {
        let response = deliver(&app, &upgrade_event, header.clone()).await;
        assert_error(response, 400, "INVALID_SIGNATURE").await;
    }
    assert_eq!(subscription(&app, &user).await["plan"], "free");

    // Several v1 signatures (a rolled secret): one valid is enough.
    let valid = signature(WEBHOOK_SECRET, now, &body);
    let rolled = format!(
        "{},{}",
        signature("whsec_old", now, &body),
        valid.split(',').nth(1).unwrap()
    );
    assert_eq!(
        deliver(&app, &upgrade_event, Some(rolled)).await.status(),
        200
    );
    assert_eq!(subscription(&app, &user).await["plan"], "pro");

    // Signed but not an event: refused without a 500.
    let junk = json!({"hello": "world"});
    let response = deliver(
        &app,
        &junk,
        Some(signature(WEBHOOK_SECRET, now, &junk.to_string())),
    )
    .await;
    assert_error(response, 422, "VALIDATION_ERROR").await;
    // Unknown types are acknowledged and ignored.
    deliver_signed(
        &app,
        &event("evt_9", "customer.created", now, json!({"id": "cus_x"})),
    )
    .await;
    assert_eq!(subscription(&app, &user).await["plan"], "pro");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_out_of_order_events_never_move_a_subscription_backwards() {
    let (app, _) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let start = chrono::Utc::now().timestamp();
    let cancelled = subscription_event(
        "evt_cancel",
        "customer.subscription.deleted",
        start + 10,
        &user,
        "canceled",
        false,
    );
    let renewed = subscription_event(
        "evt_renew",
        "customer.subscription.updated",
        start + 20,
        &user,
        "active",
        false,
    );
    let late_past_due = invoice_event("evt_late", "invoice.payment_failed", start + 5);

    deliver_signed(&app, &checkout_completed("evt_1", start, &user)).await;
    deliver_signed(&app, &cancelled).await;
    assert_eq!(subscription(&app, &user).await["plan"], "free");
    deliver_signed(&app, &renewed).await;
    assert_eq!(subscription(&app, &user).await["plan"], "pro");
    // A redelivery of the cancellation, and an older event arriving late: both acknowledged,
    // neither applied.
    deliver_signed(&app, &cancelled).await;
    deliver_signed(&app, &late_past_due).await;
    assert_subscription(&app, &user, "pro", "active").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_limit_and_watermark_follow_the_plan() {
    let (app, _) = spawn_billing_app(&[]).await;
    let user = app.user().await;
    let files = [clip(media::portrait_no_audio())];
    let too_long = app
        .create_job(&user, &files, &[("target_duration", "90")])
        .await;
    let body = assert_error(too_long, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["data"]["max"], 60, "{body}");
    let free_job = create(
        &app,
        &user,
        &files,
        &[("target_duration", "20"), ("watermark", "false")],
    )
    .await;
    assert_eq!(
        job(&app, &user, &free_job).await["options"]["watermark"],
        true,
        "forced on the free plan"
    );

    upgrade(&app, &user).await;
    let pro_job = create(
        &app,
        &user,
        &files,
        &[("target_duration", "90"), ("watermark", "false")],
    )
    .await;
    let view = job(&app, &user, &pro_job).await;
    assert_eq!(view["options"]["target_duration"], 90);
    assert_eq!(view["options"]["watermark"], false);
    let too_long = app
        .create_job(&user, &files, &[("target_duration", "121")])
        .await;
    assert_error(too_long, 422, "VALIDATION_ERROR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_jobs_go_ahead_of_waiting_free_jobs() {
    let (mut app, _) =
        spawn_billing_app(&[("QUEUE_PREFETCH", "1"), ("WORKER_CONCURRENCY", "1")]).await;
    let (free_user, pro_user) = (app.user().await, app.user().await);
    upgrade(&app, &pro_user).await;
    let files = [clip(media::portrait_no_audio())];
    let fields = [("target_duration", "10")];
    let mut free_jobs = Vec::new();
    for _ in 0..2 {
        free_jobs.push(create(&app, &free_user, &files, &fields).await);
    }
    // The first free job holds the one queue place before the pro job exists; the second
    // waits in PostgreSQL, where the pro job overtakes it.
    app.wait_until_queued(&free_jobs[0]).await;
    let pro_job = create(&app, &pro_user, &files, &fields).await;
    app.start_worker().await;

    let started = |view: &Value| -> chrono::DateTime<chrono::Utc> {
        view["started_at"].as_str().unwrap().parse().unwrap()
    };
    let pro = app
        .wait_for_job_end(&pro_user, &pro_job, Duration::from_secs(120))
        .await;
    let first = app
        .wait_for_job_end(&free_user, &free_jobs[0], Duration::from_secs(120))
        .await;
    let second = app
        .wait_for_job_end(&free_user, &free_jobs[1], Duration::from_secs(120))
        .await;
    for view in [&pro, &first, &second] {
        assert_eq!(view["status"], "SUCCESS", "{view}");
    }
    // The first free job was already in the queue; the pro job overtook the second.
    assert!(started(&first) < started(&pro), "{first} {pro}");
    assert!(
        started(&pro) < started(&second),
        "pro {} should start before free {}",
        started(&pro),
        started(&second)
    );
}

/// A pro subscriber with a Stripe customer.
async fn subscriber(app: &TestApp) -> TestUser {
    let user = app.user().await;
    assert_eq!(
        checkout(app, &user, "pro").await.status(),
        200,
        "makes the customer"
    );
    upgrade(app, &user).await;
    user
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_deletes_its_stripe_customer_first() {
    let (app, stripe) = spawn_billing_app(&[]).await;
    let delete = |user: &TestUser, password: &str| {
        app.client
            .delete(app.url("/api/users/me"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "password": password }))
            .send()
    };
    let user = subscriber(&app).await;
    let wrong = delete(&user, "NotThePassword123").await.unwrap();
    assert_error(wrong, 401, "INVALID_CREDENTIALS").await;
    assert_eq!(delete(&user, &user.password).await.unwrap().status(), 204);
    let calls = stripe.requests().await;
    let deleted_customer = |calls: &[Recorded]| {
        calls
            .iter()
            .filter(|call| {
                call.method == "DELETE" && call.path.starts_with("/v1/customers/cus_test_")
            })
            .count()
    };
    assert_eq!(
        deleted_customer(&calls),
        1,
        "the customer (so its subscription) goes at Stripe"
    );
    let me = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(&user.access_token);
    assert_error(me.send().await.unwrap(), 401, "AUTHENTICATION_REQUIRED").await;
    let login = app.login(&user.email, &user.password).await;
    assert_error(login, 401, "INVALID_CREDENTIALS").await;

    // When Stripe cannot cancel the subscription, nothing is deleted.
    let kept = subscriber(&app).await;
    stripe.fail().await;
    let refused = delete(&kept, &kept.password).await.unwrap();
    assert_error(refused, 502, "PAYMENT_PROVIDER_ERROR").await;
    assert_subscription(&app, &kept, "pro", "active").await;
    assert_eq!(app.login(&kept.email, &kept.password).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_opens_for_customers_only() {
    let (app, stripe) =
        spawn_billing_app(&[("BILLING_PORTAL_RETURN_URL", "https://app.test/billing")]).await;
    let user = app.user().await;
    let portal = || {
        app.client
            .post(app.url("/api/v2/billing/portal"))
            .bearer_auth(&user.access_token)
            .send()
    };
    assert_error(portal().await.unwrap(), 409, "CONFLICT").await;
    assert!(
        stripe.requests().await.is_empty(),
        "no customer, no call to Stripe"
    );

    assert_eq!(checkout(&app, &user, "pro").await.status(), 200);
    let response = portal().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["portal_url"],
        "https://billing.stripe.test/p/session/bps_test_1"
    );
    let requests = stripe.requests().await;
    let session = requests.last().unwrap();
    assert_eq!(session.path, "/v1/billing_portal/sessions");
    assert_eq!(session.field("customer"), Some("cus_test_1"));
    assert_eq!(
        session.field("return_url"),
        Some("https://app.test/billing")
    );
}
