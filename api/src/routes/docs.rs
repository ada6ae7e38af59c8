//! The OpenAPI document, generated from the handlers, and an interactive page over it.

use actix_web::HttpResponse;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::{error, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Montage API",
        description = "Upload gaming clips, get a rendered montage back. Errors always use the envelope \
            `{\"success\":false,\"error\":{\"code\",\"message\",\"data\"}}`. Every response carries `X-Request-ID`.\n\n\
            Differences from the other seed documents: list pagination uses `limit`/`offset` with `total` \
            (seed 001's jobs list), not `page`/`page_size`; auth responses are not wrapped in `success/data` \
            (seed 001's login example); rate-limit headers, MFA and metrics are planned. Live updates: `GET /ws` (WebSocket).",
        version = "2.0.0"
    ),
    paths(
        routes::health::health,
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::jobs::create_job,
        routes::jobs::list_jobs,
        routes::jobs::get_job,
        routes::jobs::download,
        routes::jobs::poster,
        routes::jobs::cancel_job,
        routes::jobs::delete_job,
        routes::styles::list_styles,
        routes::styles::get_style,
        routes::billing::list_plans,
        routes::billing::subscription,
        routes::billing::checkout,
        routes::billing::webhook,
        routes::live::connect,
        routes::live::issue_ticket,
        openapi_json,
        docs_page,
    ),
    components(schemas(error::ErrorEnvelope, shared::error::ErrorCode, shared::events::JobEvent)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "jobs"), (name = "styles"), (name = "live"), (name = "billing"), (name = "system"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Interactive documentation (Swagger UI, loaded by the browser from its CDN).
#[utoipa::path(get, path = "/docs", tag = "system", responses((status = 200, description = "HTML page")))]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Montage API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script>
</body>
</html>
"##;
