//! Admits a request as its route's policy says, before any extractor or handler runs: the
//! credentials its access asks for, then the permission it needs. A handler reads the
//! admitted caller (`state::Caller`); nothing else reads credentials.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::ServiceRequest,
    http::header::{self, HeaderMap},
    middleware::Next,
    web, Error, HttpMessage,
};
use domain::error::ServiceError;
use domain::identity::AuthUser;
use tracing_actix_web::RootSpan;

use crate::{
    error::ApiError,
    routes::policy::{Access, Policy},
    state::{AppState, VerifiedCaller},
};

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse, Error> {
    match admit(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(refusal) => Ok(req.error_response(ApiError::from(refusal))),
    }
}

type ServiceResponse = actix_web::dev::ServiceResponse<BoxBody>;

async fn admit(req: &ServiceRequest) -> Result<(), ServiceError> {
    let policy = policy_of(req);
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ServiceError::internal("application state missing"))?;
    let Some(user) = caller(req, state, policy.access)? else {
        return Ok(());
    };
    if let Some(span) = req.extensions().get::<RootSpan>() {
        // Every later line of the request's log names the caller.
        span.record("user_id", tracing::field::display(user.id));
    }
    req.extensions_mut().insert(VerifiedCaller(user));
    if let Some(permission) = policy.permission {
        let (action, resource) = (permission.action, permission.resource);
        state.access.require(user, action, resource).await?;
    }
    Ok(())
}

/// The request's route policy, which `middleware::request_context` looked up.
pub fn policy_of(req: &ServiceRequest) -> Policy {
    req.extensions()
        .get::<Policy>()
        .copied()
        .unwrap_or(Policy::UNROUTED)
}

/// The caller `access` asks for: none for a route anyone may call, else the verified holder
/// of the credentials, or the refusal.
fn caller(
    req: &ServiceRequest,
    state: &AppState,
    access: Access,
) -> Result<Option<AuthUser>, ServiceError> {
    let sent = req.headers().contains_key(header::AUTHORIZATION);
    match access {
        Access::Anyone => return Ok(None),
        Access::AnyoneOrSignedIn if !sent => return Ok(None),
        Access::SignedInOrFilePass if !sent => {
            if let Some(pass) = req.cookie(accounts::file_pass::FILE_PASS_COOKIE) {
                return state.auth.authenticate_file_pass(pass.value()).map(Some);
            }
        }
        _ => {}
    }
    if let Some(VerifiedCaller(user)) = req.extensions().get::<VerifiedCaller>() {
        return Ok(Some(*user));
    }
    let token = bearer_token(req.headers())?.ok_or_else(|| {
        ServiceError::unauthenticated("Authentication required: send Authorization: Bearer <token>")
    })?;
    state.auth.authenticate(token).map(Some)
}

/// The request's bearer token, by the one rule every reader uses: none without an
/// `Authorization` header, an error when the header is not `Bearer <token>` (the scheme in
/// any case, RFC 9110 §11.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ServiceError> {
    let Some(header) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ServiceError::unauthenticated("Authorization header must be Bearer <token>");
    let header = header.to_str().map_err(|_| malformed())?;
    let (scheme, token) = header.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};

    use super::bearer_token;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn one_rule_reads_the_bearer_token() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap(), None);
        for value in ["Bearer abc", "bearer abc", "BEARER  abc "] {
            assert_eq!(bearer_token(&with(value)).unwrap(), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "abc", "Bearerabc"] {
            assert!(bearer_token(&with(value)).is_err(), "{value}");
        }
    }
}
