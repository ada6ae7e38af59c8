//! Request rate limits by class (seed 001: authentication 10/min, uploads 5/min, everything
//! else 100/min), counted in Redis so every API instance shares them. Every limited response
//! carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a refusal is 429 in the envelope
//! with `Retry-After`. If Redis cannot answer, requests pass (fail open) and a warning is
//! logged: an outage of the limiter must not become an outage of the API.

use accounts::ratelimit::{Decision, Quota};
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header::HeaderValue, Method},
    middleware::Next,
    web, Error, HttpMessage, HttpRequest,
};
use domain::error::{ErrorCode, ServiceError};
use settings::RateLimitConfig;

use crate::{
    error::ApiError,
    state::{AppState, VerifiedCaller},
};

/// The caller's address: the connection's peer, or the last entry of the trusted proxy's
/// header when one is configured. Handlers read it as request data.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Upload,
    General,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Upload => "upload",
            Self::General => "general",
        }
    }

    /// Health probes, Stripe's signed webhooks and the web app's embedded files are not
    /// limited (a file from memory costs less than the limiter's Redis round trip).
    fn of(method: &Method, path: &str) -> Option<Self> {
        match path {
            "/health" | "/api/v2/billing/webhook" => None,
            p if method == Method::GET && crate::app_files::is_app_file(p) => None,
            "/api/v2/jobs" if method == Method::POST => Some(Self::Upload),
            p if p.starts_with("/api/auth/") && method == Method::POST => Some(Self::Auth),
            _ => Some(Self::General),
        }
    }

    fn quota(self, config: &RateLimitConfig) -> Quota {
        let limit = match self {
            Self::Auth => config.auth,
            Self::Upload => config.upload,
            Self::General => config.general,
        };
        Quota {
            limit,
            window: config.window,
        }
    }
}

/// The client's address: the last hop of the trusted proxy's header, else the peer's.
pub(crate) fn client_address(req: &HttpRequest, config: &RateLimitConfig) -> String {
    let forwarded = config.trusted_proxy_header.as_deref().and_then(|name| {
        let value = req.headers().get(name)?.to_str().ok()?;
        let last = value.rsplit(',').next()?.trim();
        (!last.is_empty() && last.len() <= 64).then(|| last.to_owned())
    });
    forwarded.unwrap_or_else(|| {
        req.peer_addr()
            .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
    })
}

/// Who a class counts against: the verified user where there is one (never an unverified
/// token's claim), else the address.
/// A verified caller is kept with the request, so the handler does not verify the token
/// again.
fn subject(req: &ServiceRequest, state: &AppState, class: Class, address: &str) -> String {
    if class != Class::Auth {
        let user = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| state.auth.authenticate(token.trim()).ok());
        if let Some(user) = user {
            req.extensions_mut().insert(VerifiedCaller(user));
            return format!("user:{}", user.id);
        }
    }
    format!("addr:{address}")
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("state is registered")
        .clone();
    let config = &state.config.rate_limits;
    let address = client_address(req.request(), config);
    req.extensions_mut().insert(ClientAddress(address.clone()));
    let class = Class::of(req.method(), req.path()).filter(|_| config.enabled);
    let Some(class) = class else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let subject = subject(&req, &state, class, &address);
    let decision = match state
        .limiter
        .hit(class.name(), &subject, class.quota(config))
        .await
    {
        Ok(decision) => decision,
        Err(err) => {
            tracing::warn!(error = %err, "rate limiter unavailable; letting the request through");
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    };
    let mut response = if decision.allowed() {
        next.call(req).await?.map_into_boxed_body()
    } else {
        telemetry::metrics::rate_limit_refused(class.name());
        let refusal = ServiceError::new(
            ErrorCode::RateLimitExceeded,
            format!(
                "Too many requests: {} per {} s; try again in {} s",
                decision.limit,
                config.window.as_secs(),
                decision.retry_after
            ),
        )
        .with_data(serde_json::json!({
            "limit": decision.limit,
            "retry_after": decision.retry_after,
        }));
        let error: Error = ApiError::from(refusal).into();
        req.error_response(error)
    };
    add_headers(response.headers_mut(), &decision);
    Ok(response)
}

fn add_headers(headers: &mut actix_web::http::header::HeaderMap, decision: &Decision) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                value,
            );
        }
    };
    set("x-ratelimit-limit", decision.limit.to_string());
    set("x-ratelimit-remaining", decision.remaining.to_string());
    set("x-ratelimit-reset", decision.reset_at.to_string());
}
