//! The OpenAPI document, generated from the handlers, and an interactive page over it.

use accounts::file_pass::FILE_PASS_COOKIE;
use actix_web::{http::header, web, HttpResponse};
use utoipa::{
    openapi::{
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        Content, Ref, RefOr, Response, ResponseBuilder,
    },
    Modify, OpenApi,
};

use crate::routes::table::Area;
use crate::{
    error::{self, ApiError, ApiResult},
    routes::table::RouteTable,
    state::AppState,
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi_json, docs_page, docs_asset))]
struct DocsApi;

pub fn area() -> Area {
    Area::new(<DocsApi as utoipa::OpenApi>::openapi())
        .handle("openapi_json", openapi_json)
        .handle("docs_page", docs_page)
        .handle("docs_asset", docs_asset)
}

/// What the document says besides its paths, which each area brings.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Montage API",
        description = "Upload gaming clips, get a rendered montage back. Errors always use the envelope \
            `{\"success\":false,\"error\":{\"code\",\"message\",\"data\"}}`. Every response carries `X-Request-ID`.\n\n\
            Differences from the other seed documents: list pagination uses `limit`/`offset` with `total` \
            (seed 001's jobs list), not `page`/`page_size`; auth responses are not wrapped in `success/data` \
            (seed 001's login example); MFA and metrics are planned. Live updates: `GET /ws` (WebSocket).\n\n\
            Rate limits (seed 001): authentication 10, job creation 5, everything else 100 requests a minute, per user \
            when authenticated, else per address; limited answers carry `X-RateLimit-Limit`, `X-RateLimit-Remaining` and \
            `X-RateLimit-Reset` (Unix seconds); a refusal is 429 `RATE_LIMIT_EXCEEDED` with `Retry-After`.",
        version = "2.0.0"
    ),
    components(schemas(error::ErrorEnvelope, domain::error::ErrorCode, contract::live::LiveMessage)),
    tags((name = "auth"), (name = "accounts"), (name = "users"), (name = "admin"), (name = "jobs"), (name = "clips"), (name = "uploads"), (name = "social"), (name = "styles"), (name = "live"), (name = "billing"), (name = "system"), (name = "app"))
)]
struct ApiDoc;

/// The OpenAPI document of what this service serves, serialised once at start-up.
#[derive(Clone)]
pub struct ApiDocument(pub web::Bytes);

impl ApiDocument {
    pub fn new(table: &RouteTable) -> Self {
        let mut doc = table.document(ApiDoc::openapi());
        // The areas' paths arrive after the derive ran its modifiers.
        BearerAuth.modify(&mut doc);
        CommonResponses.modify(&mut doc);
        let mut json = serde_json::to_value(&doc).expect("the document serialises");
        camel_case_links(&mut json);
        Self(json.to_string().into())
    }
}

/// utoipa 5 writes a Link object's fields in snake case (`operation_id`); OpenAPI 3.1 names
/// them `operationId`, `operationRef` and `requestBody`, and validators reject the others.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document
        .get_mut("paths")
        .and_then(|paths| paths.as_object_mut())
    else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

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
        // What a signed-in browser's navigations to its downloads carry (POST /api/auth/file-pass).
        components.add_security_scheme(
            "file_pass",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(FILE_PASS_COOKIE))),
        );
    }
}

/// Answers every operation may give besides its own: 429 where requests are rate-limited,
/// and 400/413/415/422 wherever a body is read (malformed, too large, wrong content type,
/// wrong field types).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let limited = !matches!(path.as_str(), "/health" | "/api/v2/billing/webhook");
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let mut common = Vec::new();
                if limited {
                    common.push((
                        "429",
                        "Too many requests (RATE_LIMIT_EXCEEDED), with Retry-After",
                    ));
                }
                if operation.request_body.is_some() {
                    common.push(("400", "Malformed body"));
                    common.push(("413", "Body too large (PAYLOAD_TOO_LARGE)"));
                    common.push(("415", "Wrong Content-Type (UNSUPPORTED_MEDIA_TYPE)"));
                    common.push((
                        "422",
                        "A field is missing or has the wrong type (VALIDATION_ERROR)",
                    ));
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| envelope_response(description));
                }
            }
        }
    }
}

fn envelope_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        )
        .into()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json(doc: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// Interactive documentation: Swagger UI, served from this service (no CDN).
#[utoipa::path(get, path = "/docs", tag = "system", responses((status = 200, description = "HTML page")))]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_POLICY))
        .body(DOCS_PAGE)
}

/// The page runs only this service's own scripts; Swagger UI styles some elements inline.
const DOCS_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// The files of the Swagger UI page, from the `swagger-ui-dist` npm package that the
/// scripts (and the Dockerfile) unpack into `DOCS_ASSETS_DIR`.
const DOCS_ASSETS: &[(&str, &str)] = &[
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("init.js", "text/javascript; charset=utf-8"),
];

/// A file of the documentation page.
#[utoipa::path(get, path = "/docs/{asset}", tag = "system",
    params(("asset" = String, Path, description = "`swagger-ui.css`, `swagger-ui-bundle.js` or `init.js`")),
    responses(
        (status = 200, description = "The file, cacheable for a day"),
        (status = 404, description = "No such file, or the assets are not installed", body = error::ErrorEnvelope),
    ))]
pub async fn docs_asset(
    state: web::Data<AppState>,
    asset: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let missing = || ApiError::from(domain::error::ServiceError::not_found("Documentation file"));
    let (name, content_type) = DOCS_ASSETS
        .iter()
        .find(|(name, _)| *name == asset.as_str())
        .ok_or_else(missing)?;
    let body = if *name == "init.js" {
        DOCS_INIT.as_bytes().to_vec()
    } else {
        let path = state.config.docs_assets_dir.join(name);
        tokio::fs::read(path).await.map_err(|_| missing())?
    };
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body))
}

const DOCS_INIT: &str =
    "window.ui = SwaggerUIBundle({ url: \"/openapi.json\", dom_id: \"#swagger-ui\" });\n";

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Montage API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"##;
