//! `/api/v2/styles`: the presets, as seed 001 lists them, and each one's parameters.

use actix_web::{web, HttpResponse};
use domain::error::ServiceError;
use domain::jobs::{style_sample_key, Style, STYLE_SAMPLES_PREFIX};
use planning::styles::{preset, StylePreset};
use serde::Serialize;
use storage::{Storage, StoreResult};
use utoipa::ToSchema;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::table::Area;
use crate::state::AppState;

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_styles, get_style, style_samples))]
struct StylesApi;

pub fn area() -> Area {
    Area::new(<StylesApi as utoipa::OpenApi>::openapi())
        .handle("list_styles", list_styles)
        .handle("get_style", get_style)
        .handle("style_samples", style_samples)
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

/// A style's sample: a montage the service rendered itself from generated clips.
#[derive(Serialize, ToSchema)]
pub struct StyleSample {
    pub style: Style,
    /// Short-lived link to the MP4 (landscape, about 10 s).
    pub video_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct StyleSampleList {
    /// One per style whose sample a worker has rendered so far, in the styles' order.
    pub samples: Vec<StyleSample>,
}

/// Each style's sample, for the styles whose sample is rendered (workers render the missing
/// ones when they start, if configured with `STYLE_SAMPLE_CLIPS`).
#[utoipa::path(
    get, path = "/api/v2/style-samples", tag = "styles",
    responses(
        (status = 200, body = inline(Envelope<StyleSampleList>)),
        (status = 503, description = "Storage is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn style_samples(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let samples = rendered_samples(&state.storage).await?;
    Ok(HttpResponse::Ok().json(ok(StyleSampleList { samples })))
}

async fn rendered_samples(storage: &Storage) -> StoreResult<Vec<StyleSample>> {
    let kept = storage.keys_under(STYLE_SAMPLES_PREFIX).await?;
    let mut samples = Vec::new();
    for &style in Style::ALL {
        let key = style_sample_key(style);
        if kept.contains(&key) {
            let video_url = storage
                .presign_get(&key, &format!("{style}-sample.mp4"))
                .await?;
            samples.push(StyleSample { style, video_url });
        }
    }
    Ok(samples)
}
