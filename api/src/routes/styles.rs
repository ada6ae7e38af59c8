//! `/api/v2/styles`: the presets, as seed 001 lists them, and each one's parameters.

use actix_web::{web, HttpResponse};
use domain::error::ServiceError;
use domain::jobs::Style;
use planning::styles::{preset, StylePreset};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorEnvelope};
use crate::routes::table::Area;

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_styles, get_style))]
struct StylesApi;

pub fn area() -> Area {
    Area::new(<StylesApi as utoipa::OpenApi>::openapi())
        .handle("list_styles", list_styles)
        .handle("get_style", get_style)
}

#[derive(Serialize, ToSchema)]
pub struct StyleList {
    /// Style ids, usable as the `style` field of a job.
    pub presets: Vec<Style>,
}

/// The style presets.
#[utoipa::path(get, path = "/api/v2/styles", tag = "styles", responses((status = 200, body = StyleList)))]
pub async fn list_styles() -> HttpResponse {
    HttpResponse::Ok().json(StyleList {
        presets: Style::ALL.to_vec(),
    })
}

/// One preset's parameters: pace, transition, grade, fades.
#[utoipa::path(
    get, path = "/api/v2/styles/{style_id}", tag = "styles",
    params(("style_id" = String, Path, description = "cinematic, gaming, energetic or chill")),
    responses((status = 200, body = StylePreset), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_style(path: web::Path<String>) -> ApiResult<HttpResponse> {
    let style: Style = path.trim().to_lowercase().parse().map_err(|()| {
        ServiceError::not_found("Style").with_data(serde_json::json!({ "styles": Style::names() }))
    })?;
    Ok(HttpResponse::Ok().json(preset(style)))
}
