//! Everything a handler may use, built once at start-up.

use std::{net::SocketAddr, sync::Arc};

use accounts::access::AccessService;
use accounts::auth::AuthService;
use accounts::closure::AccountClosure;
use accounts::ratelimit::RateLimiter;
use accounts::userdata::UserDataService;
use accounts::verification::EmailService;
use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
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

/// The caller the guard (or the rate limiter, on the way) verified for this request.
#[derive(Clone, Copy)]
pub struct VerifiedCaller(pub AuthUser);

/// The caller the guard admitted, on a route whose policy asks for one (`guard`).
pub struct Caller(pub AuthUser);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admitted = req.extensions().get::<VerifiedCaller>().copied();
        // Only a route documented without security gets here unadmitted: a programming
        // error, refused like a missing token rather than served to anyone.
        let caller = admitted
            .map(|VerifiedCaller(user)| Caller(user))
            .ok_or_else(|| {
                ServiceError::unauthenticated(
                    "Authentication required: send Authorization: Bearer <token>",
                )
            });
        ready(caller.map_err(ApiError::from))
    }
}

/// The caller, on a route anyone may call that shows a signed-in caller more.
pub struct MaybeCaller(pub Option<AuthUser>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admitted = req.extensions().get::<VerifiedCaller>().copied();
        ready(Ok(Self(admitted.map(|VerifiedCaller(user)| user))))
    }
}
