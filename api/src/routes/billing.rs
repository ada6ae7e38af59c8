//! `/api/v2/billing`: plans, the caller's subscription, Stripe Checkout and its webhook.

use actix_web::{web, HttpRequest, HttpResponse};
use billing::{PlanView, SubscriptionView};
use serde::{Deserialize, Serialize};
use settings::HttpConfig;
use utoipa::ToSchema;

use crate::routes::{policy::RateClass, table::Area};
use crate::{
    error::{ApiResult, ErrorEnvelope},
    state::{AppState, Caller},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_plans, subscription, checkout, billing_portal, webhook))]
struct BillingApi;

pub fn area(http: &HttpConfig) -> Area {
    let webhook_max_bytes = http.webhook_max_bytes;
    Area::new(<BillingApi as utoipa::OpenApi>::openapi())
        .handle("list_plans", list_plans)
        .handle("subscription", subscription)
        .handle("checkout", checkout)
        .handle("billing_portal", billing_portal)
        .handle("webhook", webhook)
        .resource("webhook", move |resource| {
            resource.app_data(web::PayloadConfig::new(webhook_max_bytes))
        })
        // Stripe's deliveries are signed and must not be refused for their number.
        .rate(RateClass::Unlimited, &["webhook"])
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub plans: Vec<PlanView>,
}

/// The plans on sale, with their limits.
#[utoipa::path(get, path = "/api/v2/billing/plans", tag = "billing",
    responses((status = 200, body = PlanList)))]
pub async fn list_plans(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(PlanList {
        plans: state.billing.plans(),
    })
}

/// The caller's plan and subscription.
#[utoipa::path(get, path = "/api/v2/billing/subscription", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionView), (status = 401, body = ErrorEnvelope)))]
pub async fn subscription(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.billing.subscription(caller.0).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct CheckoutForm {
    /// `pro`.
    plan: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckoutCreated {
    /// Stripe Checkout page to send the user to.
    pub checkout_url: String,
}

/// Start a Stripe Checkout (subscription) for a plan. The plan changes when Stripe confirms
/// the payment through the webhook, not here.
#[utoipa::path(post, path = "/api/v2/billing/checkout", tag = "billing", security(("bearer" = [])),
    request_body(content = CheckoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = CheckoutCreated),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "Already on that plan", body = ErrorEnvelope),
        (status = 422, description = "Unknown plan, or the free plan", body = ErrorEnvelope),
        (status = 502, description = "Stripe could not be reached (PAYMENT_PROVIDER_ERROR)", body = ErrorEnvelope),
    ))]
pub async fn checkout(
    state: web::Data<AppState>,
    caller: Caller,
    form: web::Form<CheckoutForm>,
) -> ApiResult<HttpResponse> {
    let checkout_url = state.billing.checkout(caller.0, &form.plan).await?;
    Ok(HttpResponse::Ok().json(CheckoutCreated { checkout_url }))
}

#[derive(Serialize, ToSchema)]
pub struct PortalCreated {
    /// Stripe's customer portal, where the user manages payment, invoices and subscription.
    pub portal_url: String,
}

/// Open Stripe's customer portal for the caller.
#[utoipa::path(post, path = "/api/v2/billing/portal", tag = "billing", security(("bearer" = [])),
    responses(
        (status = 200, body = PortalCreated),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "No Stripe customer yet: the caller never checked out", body = ErrorEnvelope),
        (status = 502, description = "Stripe could not be reached (PAYMENT_PROVIDER_ERROR)", body = ErrorEnvelope),
    ))]
pub async fn billing_portal(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let portal_url = state.billing.portal(caller.0).await?;
    Ok(HttpResponse::Ok().json(PortalCreated { portal_url }))
}

/// Stripe's webhook. Verifies `Stripe-Signature` over the raw body; applies each event once.
#[utoipa::path(post, path = "/api/v2/billing/webhook", tag = "billing",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    request_body(content = String, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied, already applied, out of date, or a type this service ignores"),
        (status = 400, description = "Missing, forged or stale signature (INVALID_SIGNATURE); nothing changed", body = ErrorEnvelope),
        (status = 422, description = "Signed, but not a Stripe event", body = ErrorEnvelope),
    ))]
pub async fn webhook(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let signature = request
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = state.billing.handle_webhook(&body, signature).await?;
    tracing::debug!(?outcome, "webhook handled");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true })))
}
