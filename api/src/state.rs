//! Everything a handler may use, built once at start-up.

use std::{net::SocketAddr, sync::Arc};

use accounts::access::AccessService;
use accounts::auth::AuthService;
use accounts::closure::AccountClosure;
use accounts::ratelimit::RateLimiter;
use accounts::userdata::UserDataService;
use accounts::verification::EmailService;
use actix_web::{
    dev::Payload,
    http::header::{self, HeaderMap},
    web, FromRequest, HttpMessage, HttpRequest,
};
use billing::BillingService;
use db::Db;
use domain::error::ServiceError;
use domain::identity::AuthUser;
use engine::admission::TitleFonts;
use engine::events::{JobEvents, WsTickets};
use engine::heartbeat::WorkerRegistry;
use engine::jobs::JobService;
use engine::status::StatusReader;
use engine::tasks::BackgroundTasks;
use futures::future::{ready, Ready};
use insights::Insights;
use library::{uploads::DirectUploads, ClipLibrary};
use linking::Linking;
use music::Catalogue;
use settings::Config;
use storage::Storage;
use tokio::sync::Notify;
use tracing_actix_web::RootSpan;
use weekly::WeeklyMontages;

use crate::{error::ApiError, hub::EventHub, monitor::HealthMonitor};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub auth: AuthService,
    /// Deleting accounts.
    pub closure: AccountClosure,
    /// Roles and permissions: the check admin routes make.
    pub access: AccessService,
    pub user_data: UserDataService,
    /// Verification and recovery mails.
    pub email: EmailService,
    pub billing: BillingService,
    pub jobs: JobService,
    /// Each user's clip library.
    pub clips: ClipLibrary,
    /// Weekly montages: listing, visibility, featuring, settings.
    pub weekly: WeeklyMontages,
    /// Share links, views, statistics, interests and recommendations.
    pub insights: Insights,
    /// Linked platform accounts and the OAuth dance that links them.
    pub linking: Linking,
    /// Direct uploads of large clips.
    pub uploads: DirectUploads,
    /// Batched, never-stale job reads for status polling.
    pub status: StatusReader,
    pub storage: Storage,
    pub workers: WorkerRegistry,
    pub events: JobEvents,
    pub hub: EventHub,
    pub tickets: WsTickets,
    pub limiter: RateLimiter,
    pub health: HealthMonitor,
    /// This instance's background work (relay, event hub, health probe).
    pub tasks: BackgroundTasks,
    /// Wakes this instance's relay, which pushes new jobs to the queue.
    pub dispatch: Arc<Notify>,
    /// The tracks jobs may be cut to.
    pub music: Arc<Catalogue>,
    /// The styles' title typefaces, to refuse a title they cannot draw.
    pub title_fonts: TitleFonts,
    /// Where this instance serves `/metrics`, if it does.
    pub metrics_address: Option<SocketAddr>,
}

/// The caller, authenticated by `Authorization: Bearer <access token>`.
pub struct Caller(pub AuthUser);

/// A caller the rate limiter already verified for this request.
#[derive(Clone, Copy)]
pub struct VerifiedCaller(pub AuthUser);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verified = req.extensions().get::<VerifiedCaller>().copied();
        let result = match verified {
            Some(VerifiedCaller(user)) => Ok(user),
            None => authenticate(req),
        };
        if let (Ok(user), Some(span)) = (&result, req.extensions().get::<RootSpan>()) {
            // Every later line of the request's log names the caller.
            span.record("user_id", tracing::field::display(user.id));
        }
        ready(result.map(Caller).map_err(ApiError::from))
    }
}

/// The user of the request's bearer token.
fn authenticate(req: &HttpRequest) -> Result<AuthUser, ServiceError> {
    let state = state_of(req)?;
    let token = bearer_token(req.headers())?.ok_or_else(|| {
        ServiceError::unauthenticated("Authentication required: send Authorization: Bearer <token>")
    })?;
    state.auth.authenticate(token)
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

/// The caller if the request carries a bearer token (which must then be valid), else none:
/// for routes anyone may call that show the caller more.
pub struct MaybeCaller(pub Option<AuthUser>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return ready(Ok(Self(None)));
        }
        let caller = Caller::from_request(req, payload).into_inner();
        ready(caller.map(|Caller(user)| Self(Some(user))))
    }
}

/// The caller of a route a browser may navigate to (a job's download or poster): by bearer
/// token, or else by the file pass cookie `POST /api/auth/file-pass` set. No other route
/// reads that cookie.
pub struct FileCaller(pub AuthUser);

impl FromRequest for FileCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let pass = req.cookie(accounts::file_pass::FILE_PASS_COOKIE);
        match pass {
            Some(pass) if !req.headers().contains_key(header::AUTHORIZATION) => {
                let user =
                    state_of(req).and_then(|state| state.auth.authenticate_file_pass(pass.value()));
                ready(user.map(Self).map_err(ApiError::from))
            }
            _ => ready(
                Caller::from_request(req, payload)
                    .into_inner()
                    .map(|Caller(user)| Self(user)),
            ),
        }
    }
}

fn state_of(req: &HttpRequest) -> Result<&web::Data<AppState>, ServiceError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ServiceError::internal("application state missing"))
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
