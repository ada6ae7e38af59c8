//! The web app's files (`api/web/`), compiled into the binary: the HTML shell, served at
//! each of `PAGES` (inside the app, views are `#/…` fragments), and its scripts, styles and
//! icon. Every file is revalidated with its `ETag` (`no-cache`): a deploy shows at once, and
//! an unchanged file costs a 304.

use std::sync::LazyLock;

use actix_web::{http::header, http::StatusCode, HttpRequest, HttpResponse};

use crate::etag::{holds, tag_of};
use crate::state::AppState;

/// Where the shell answers: the app, and the addresses mails, Stripe and the OAuth callback
/// send players to.
pub const PAGES: &[&str] = &[
    "/",
    "/verify-email",
    "/reset-password",
    "/accounts/linked",
    "/billing",
    "/billing/success",
    "/billing/cancelled",
];

/// One embedded file with its validator.
pub struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
}

impl Asset {
    fn new(name: &'static str, body: &'static [u8]) -> Self {
        let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("html") => "text/html; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        };
        Self {
            name,
            content_type,
            body,
            etag: tag_of(body),
        }
    }
}

macro_rules! embed {
    ($($file:literal),* $(,)?) => {
        [$(Asset::new($file, include_bytes!(concat!("../web/", $file)))),*]
    };
}

pub static SHELL: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("index.html", include_bytes!("../web/index.html")));

static FILES: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    embed![
        "app.css",
        "icon.svg",
        "main.js",
        "api.js",
        "contract.js",
        "ui.js",
        "upload.js",
        "live.js",
        "auth.js",
        "create.js",
        "job.js",
        "library.js",
        "account.js",
        "showcase.js",
        "home.js",
        "facecam.js",
    ]
    .into()
});

/// The app file called `name`.
pub fn file(name: &str) -> Option<&'static Asset> {
    FILES.iter().find(|asset| asset.name == name)
}

/// The file, or 304 when the client holds it, under the app's content security policy.
pub fn serve(state: &AppState, request: &HttpRequest, asset: &Asset) -> HttpResponse {
    let fresh = holds(request, &asset.etag);
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy(state)));
    if fresh {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.body)
}

/// Only the app's own scripts and styles run. It talks to this API (and its WebSocket,
/// which `'self'` covers), sends upload parts to storage and plays media from there.
fn policy(state: &AppState) -> String {
    let storage = url::Url::parse(&state.config.s3.endpoint)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: {storage}; \
         media-src 'self' {storage}; connect-src 'self' {storage}; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'; manifest-src 'self'"
    )
}
