//! `GET /health`: each dependency's state, and 503 when any is down.

use actix_web::{web, HttpResponse};

use crate::monitor::Health;
use crate::routes::{policy::RateClass, table::Area};
use crate::state::AppState;

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
struct HealthApi;

pub fn area() -> Area {
    Area::new(<HealthApi as utoipa::OpenApi>::openapi())
        .handle("health", health)
        .rate(RateClass::Unlimited, &["health"])
}

/// Liveness of the API and its dependencies, as last probed (at most a second ago).
#[utoipa::path(
    get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, description = "A dependency is down", body = Health))
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let health = state.health.current();
    let mut response = if health.status == "healthy" {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(&*health)
}
