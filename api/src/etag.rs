//! Conditional GETs: an `ETag` made from the body, and 304 without a body when the client
//! already holds it, so a poller that sees no change downloads nothing.

use std::hash::{DefaultHasher, Hasher};

use actix_web::{http::header, HttpRequest, HttpResponse};
use serde::Serialize;

/// 200 with `body` and its `ETag`, or 304 when `If-None-Match` names that tag.
pub fn conditional<T: Serialize>(request: &HttpRequest, body: &T) -> HttpResponse {
    let body = serde_json::to_vec(body).expect("views serialise");
    let tag = tag_of(&body);
    // Clients may keep it, but must ask again before using it.
    let cache = (header::CACHE_CONTROL, "private, no-cache");
    if holds(request, &tag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header(cache)
            .finish();
    }
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .insert_header((header::ETAG, tag))
        .insert_header(cache)
        .body(body)
}

/// A strong validator for `body`: the same bytes, the same tag.
pub(crate) fn tag_of(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("\"{:016x}\"", hasher.finish())
}

/// Whether `If-None-Match` names `tag` (weak or strong) or is `*`.
pub(crate) fn holds(request: &HttpRequest, tag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|held| held == "*" || held.trim_start_matches("W/") == tag)
}
