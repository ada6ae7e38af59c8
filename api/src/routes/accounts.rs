//! `/api/v2/accounts`: the platforms a user can link (seed 001's Accounts API).

use actix_web::{web, HttpResponse};
use domain::providers::ProviderId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::table::Area;
use crate::state::AppState;

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_providers))]
struct AccountsApi;

pub fn area() -> Area {
    Area::new(<AccountsApi as utoipa::OpenApi>::openapi()).handle("list_providers", list_providers)
}

#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    pub id: ProviderId,
    pub name: &'static str,
    pub icon: &'static str,
    pub description: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

/// The platforms this service lets users link (`ACCOUNT_PROVIDERS`), in display order.
#[utoipa::path(
    get, path = "/api/v2/accounts/providers", tag = "accounts",
    responses((status = 200, body = ProviderList))
)]
pub async fn list_providers(state: web::Data<AppState>) -> HttpResponse {
    let providers = state
        .config
        .providers
        .iter()
        .map(|&id| ProviderView {
            id,
            name: id.name(),
            icon: id.icon(),
            description: id.description(),
        })
        .collect();
    HttpResponse::Ok().json(ProviderList { providers })
}
