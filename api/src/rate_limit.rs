//! Request rate limits by class (seed 001: authentication 10/min, uploads 5/min, everything
//! else 100/min), counted in Redis so every API instance shares them. Every limited response
//! carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a refusal is 429 in the envelope
//! with `Retry-After`. If Redis cannot answer, requests pass (fail open) and a warning is
//! logged: an outage of the limiter must not become an outage of the API.

use accounts::ratelimit::{Decision, Quota};
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::HeaderValue,
    middleware::Next,
    web, Error, HttpMessage, HttpRequest,
};
use domain::error::{ErrorCode, ServiceError};
use settings::RateLimitConfig;

use crate::{
    error::ApiError,
    guard::{bearer_token, policy_of},
    routes::policy::RateClass,
    state::{AppState, VerifiedCaller},
};

/// The caller's address: the connection's peer, or the last entry of the trusted proxy's
/// header when one is configured. Handlers read it as request data.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

/// The limiter's key and quota for each counted class.
fn budget(class: RateClass, config: &RateLimitConfig) -> Option<(&'static str, Quota)> {
    let (name, limit) = match class {
        RateClass::Auth => ("auth", config.auth),
        RateClass::Upload => ("upload", config.upload),
        RateClass::General => ("general", config.general),
        RateClass::Unlimited => return None,
    };
    let quota = Quota {
        limit,
        window: config.window,
    };
    Some((name, quota))
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
fn subject(req: &ServiceRequest, state: &AppState, class: RateClass, address: &str) -> String {
    if class != RateClass::Auth {
        let user = bearer_token(req.headers())
            .ok()
            .flatten()
            .and_then(|token| state.auth.authenticate(token).ok());
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
    let class = policy_of(&req).rate;
    let Some((name, quota)) = budget(class, config).filter(|_| config.enabled) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let subject = subject(&req, &state, class, &address);
    let decision = match state.limiter.hit(name, &subject, quota).await {
        Ok(decision) => decision,
        Err(err) => {
            tracing::warn!(error = %err, "rate limiter unavailable; letting the request through");
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    };
    let mut response = if decision.allowed() {
        next.call(req).await?.map_into_boxed_body()
    } else {
        telemetry::metrics::rate_limit_refused(name);
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

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use crate::routes::policy::RateClass::{self, *};

    fn class(method: Method, path: &str) -> RateClass {
        crate::routes::table(&Default::default())
            .policy(&method, path)
            .rate
    }

    #[test]
    fn each_request_spends_the_budget_its_route_declares() {
        let job = "/api/v2/jobs/0191e8f2-8c3e-7d3c-9a43-2b7c3f1d2e4f";
        for (method, path, expected) in [
            (Method::POST, "/api/auth/login", Auth),
            (Method::POST, "/api/auth/mfa/login", Auth),
            (Method::POST, "/api/auth/password/forgot", Auth),
            (Method::GET, "/api/auth/me", General),
            (Method::POST, "/api/v2/jobs", Upload),
            (Method::GET, "/api/v2/jobs", General),
            (Method::GET, job, General),
            (Method::POST, "/api/v2/billing/webhook", Unlimited),
            (Method::GET, "/health", Unlimited),
            (Method::GET, "/", Unlimited),
            (Method::GET, "/app/main.js", Unlimited),
            // No route: a 404 costs like any call, whatever the path looks like.
            (Method::GET, "/api/v2/nothing-here", General),
            (Method::DELETE, "/health", General),
        ] {
            assert_eq!(class(method.clone(), path), expected, "{method} {path}");
        }
    }

    #[test]
    fn every_attempt_at_a_secret_spends_the_auth_budget() {
        let table = crate::routes::table(&Default::default());
        let document = crate::routes::docs::ApiDocument::new(&table);
        let document: serde_json::Value = serde_json::from_slice(&document.0).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let posts: Vec<&String> = paths
            .iter()
            .filter(|(path, item)| path.starts_with("/api/auth/") && item.get("post").is_some())
            .map(|(path, _)| path)
            .collect();
        assert!(posts.len() >= 10, "{posts:?}");
        for path in posts {
            assert_eq!(table.policy(&Method::POST, path).rate, Auth, "{path}");
        }
    }
}
