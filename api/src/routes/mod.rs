pub mod accounts;
pub mod admin;
pub mod analytics;
pub mod app;
pub mod auth;
pub mod billing;
pub mod clips;
pub mod docs;
pub mod health;
pub mod interests;
pub mod jobs;
pub mod live;
pub mod mfa;
pub mod music;
pub mod policy;
pub mod recovery;
pub mod share_page;
pub mod sharing;
pub mod social;
pub mod styles;
pub mod table;
pub mod uploads;
pub mod users;
pub mod weekly;

use actix_web::{
    error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError},
    web, HttpRequest,
};

use domain::error::ServiceError;
use domain::jobs::MAX_PAGE_SIZE;
use serde::Deserialize;
use settings::HttpConfig;
use utoipa::IntoParams;

use crate::error::ApiError;
use table::RouteTable;

/// Every API area. Adding one: a module with its handlers, its `#[derive(OpenApi)]` and its
/// `area()`, listed here.
pub fn table(http: &HttpConfig) -> RouteTable {
    RouteTable::new(vec![
        health::area(),
        auth::area(),
        recovery::area(),
        mfa::area(),
        accounts::area(),
        users::area(),
        admin::area(),
        jobs::area(),
        clips::area(),
        uploads::area(),
        social::area(),
        sharing::area(),
        weekly::area(),
        analytics::area(),
        interests::area(),
        styles::area(),
        music::area(),
        billing::area(http),
        live::area(),
        docs::area(),
        app::area(),
    ])
}

/// A page of a listing, by offset.
#[derive(Deserialize, IntoParams)]
pub struct Page {
    /// 1 to 100 (larger values are capped); default 20.
    limit: Option<i64>,
    /// Default 0.
    offset: Option<i64>,
}

impl Page {
    /// The page's size and offset, checked.
    pub fn bounds(&self) -> Result<(i64, i64), ServiceError> {
        let limit = self.limit.unwrap_or(20);
        let offset = self.offset.unwrap_or(0);
        if limit < 1 {
            return Err(ServiceError::invalid_field(
                "limit",
                "limit must be at least 1",
            ));
        }
        if offset < 0 {
            return Err(ServiceError::invalid_field(
                "offset",
                "offset must not be negative",
            ));
        }
        Ok((limit.min(MAX_PAGE_SIZE), offset))
    }
}

/// Registers the table's routes, and answers extractor failures in the envelope (a wrong
/// method answers 405, which the envelope middleware wraps).
pub fn configure(table: &RouteTable) -> impl Fn(&mut web::ServiceConfig) + '_ {
    move |cfg| {
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
        .app_data(web::PathConfig::default().error_handler(path_error));
        table.register(cfg);
    }
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
