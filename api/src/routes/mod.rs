pub mod auth;
pub mod billing;
pub mod docs;
pub mod health;
pub mod jobs;
pub mod live;
pub mod styles;

use actix_web::{
    error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError},
    web, HttpRequest,
};

use settings::HttpConfig;

use crate::error::ApiError;

/// Registers every route. Each path is one resource, so a wrong method answers 405 (the
/// envelope middleware wraps it); extractor failures answer in the envelope too.
pub fn configure(http: &HttpConfig) -> impl Fn(&mut web::ServiceConfig) + '_ {
    move |cfg| register(cfg, http)
}

fn register(cfg: &mut web::ServiceConfig, http: &HttpConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(16 * 1024)
            .error_handler(json_error),
    )
    .app_data(
        web::FormConfig::default()
            .limit(16 * 1024)
            .error_handler(form_error),
    )
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .app_data(web::PathConfig::default().error_handler(path_error))
    .service(web::resource("/health").route(web::get().to(health::health)))
    .service(web::resource("/openapi.json").route(web::get().to(docs::openapi_json)))
    .service(web::resource("/ws").route(web::get().to(live::connect)))
    .service(web::resource("/api/v2/ws/ticket").route(web::post().to(live::issue_ticket)))
    .service(web::resource("/docs").route(web::get().to(docs::docs_page)))
    .service(web::resource("/docs/{asset}").route(web::get().to(docs::docs_asset)))
    .service(
        web::scope("/api/auth")
            .service(web::resource("/register").route(web::post().to(auth::register)))
            .service(web::resource("/login").route(web::post().to(auth::login)))
            .service(web::resource("/refresh").route(web::post().to(auth::refresh)))
            .service(web::resource("/logout").route(web::post().to(auth::logout)))
            .service(web::resource("/me").route(web::get().to(auth::me))),
    )
    .service(
        web::scope("/api/v2/billing")
            .service(web::resource("/plans").route(web::get().to(billing::list_plans)))
            .service(web::resource("/subscription").route(web::get().to(billing::subscription)))
            .service(web::resource("/checkout").route(web::post().to(billing::checkout)))
            .service(
                web::resource("/webhook")
                    .app_data(web::PayloadConfig::new(http.webhook_max_bytes))
                    .route(web::post().to(billing::webhook)),
            ),
    )
    .service(web::resource("/api/v2/styles").route(web::get().to(styles::list_styles)))
    .service(web::resource("/api/v2/styles/{style_id}").route(web::get().to(styles::get_style)))
    .service(
        web::scope("/api/v2/jobs")
            .service(
                web::resource("")
                    .route(web::post().to(jobs::create_job))
                    .route(web::get().to(jobs::list_jobs)),
            )
            .service(
                web::resource("/{job_id}")
                    .route(web::get().to(jobs::get_job))
                    .route(web::delete().to(jobs::delete_job)),
            )
            .service(web::resource("/{job_id}/cancel").route(web::post().to(jobs::cancel_job)))
            .service(web::resource("/{job_id}/download").route(web::get().to(jobs::download)))
            .service(web::resource("/{job_id}/poster").route(web::get().to(jobs::poster))),
    );
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::from(domain::error::ServiceError::new(
                domain::error::ErrorCode::ValidationError,
                format!("Invalid request body: {e}"),
            ))
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::from(domain::error::ServiceError::too_large(
                "Request body is too large",
                16 * 1024,
            ))
        }
        JsonPayloadError::ContentType => ApiError {
            error: domain::error::ServiceError::new(
                domain::error::ErrorCode::UnsupportedMediaType,
                "Expected Content-Type: application/json",
            ),
            status: None,
        },
        other => ApiError::bad_request(format!("Malformed JSON body: {other}")),
    };
    api.into()
}

fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        UrlencodedError::Overflow { .. } => ApiError::from(domain::error::ServiceError::too_large(
            "Request body is too large",
            16 * 1024,
        )),
        UrlencodedError::ContentType => ApiError {
            error: domain::error::ServiceError::new(
                domain::error::ErrorCode::UnsupportedMediaType,
                "Expected Content-Type: application/x-www-form-urlencoded or application/json",
            ),
            status: None,
        },
        other => ApiError::bad_request(format!("Malformed form body: {other}")),
    };
    api.into()
}

fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(domain::error::ServiceError::new(
        domain::error::ErrorCode::ValidationError,
        format!("Invalid query string: {err}"),
    ))
    .into()
}

fn path_error(_: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(domain::error::ServiceError::not_found("Resource")).into()
}
