//! `/api/v2/users/me/interests` and `/recommendations` (seed 000): what a player likes, and
//! the styles, settings and featured montages that follow from it.

use actix_web::{web, HttpResponse};
use domain::error::ServiceError;
use domain::showcase::Interest;
use insights::recommend::{InterestList, Recommendations};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::table::Area;
use crate::state::{AppState, Caller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(set_interests, get_interests, get_recommendations))]
struct InterestsApi;

pub fn area() -> Area {
    Area::new(<InterestsApi as utoipa::OpenApi>::openapi())
        .handle("set_interests", set_interests)
        .handle("get_interests", get_interests)
        .handle("get_recommendations", get_recommendations)
}

#[derive(Deserialize, ToSchema)]
pub struct InterestsForm {
    /// Games (names of 2 to 40 letters, digits, spaces and -:'.&) and styles, at most 20;
    /// replaces the list.
    interests: Vec<String>,
}

/// Set the caller's interests (the whole list: send an empty one to clear it).
#[utoipa::path(
    post, path = "/api/v2/users/me/interests", tag = "recommendations", security(("bearer" = [])),
    request_body = InterestsForm,
    responses(
        (status = 200, body = inline(Envelope<InterestList>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, description = "An interest is neither a style nor a game name, or too many", body = ErrorEnvelope),
    )
)]
pub async fn set_interests(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<InterestsForm>,
) -> ApiResult<HttpResponse> {
    let interests = Interest::parse_all(&body.interests)?;
    let list = state.insights.set_interests(caller.0, interests).await?;
    Ok(HttpResponse::Ok().json(ok(list)))
}

/// The caller's interests.
#[utoipa::path(
    get, path = "/api/v2/users/me/interests", tag = "recommendations", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<InterestList>)),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn get_interests(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ok(state.insights.interests(caller.0).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct TopN {
    /// 1 to 20; default 5.
    top_n: Option<i64>,
}

/// Styles with settings to try, best first, each with its reason; and featured weekly
/// montages matching the caller's interests.
#[utoipa::path(
    get, path = "/api/v2/users/me/recommendations", tag = "recommendations", security(("bearer" = [])),
    params(TopN),
    responses(
        (status = 200, body = inline(Envelope<Recommendations>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn get_recommendations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TopN>,
) -> ApiResult<HttpResponse> {
    let top_n = query.top_n.unwrap_or(5);
    if !(1..=20).contains(&top_n) {
        return Err(ServiceError::invalid_field("top_n", "top_n is 1 to 20").into());
    }
    let recommendations = state
        .insights
        .recommendations(caller.0, top_n as usize)
        .await?;
    Ok(HttpResponse::Ok().json(ok(recommendations)))
}
