//! Roles, permissions and the admin's view of the accounts (seeds 002, 003, 004). Every
//! admin route declares the permission it needs in its area; the guard checks it first.

use std::collections::BTreeMap;

use accounts::access::Role;
use accounts::directory::{UserFilter, UserPage};
use actix_web::{web, HttpResponse};
use domain::access::{Action, Resource, RoleName};
use domain::error::ServiceError;
use domain::jobs::{JobStatus, MAX_PAGE_SIZE};
use domain::userdata::ApplicationId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::jobs::{cancel_in, failure_of, job_summary, job_view};
use crate::routes::{auth::UserView, policy::Paging, table::Area};
use crate::{
    error::{ok, ApiResult, Envelope, ErrorEnvelope},
    state::{AppState, Caller},
};
use contract::jobs::{JobFailure, JobSummary, JobView};
use engine::jobs::{JobDetails, JobScope};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    my_permission,
    assign_role,
    revoke_role,
    list_users,
    get_user,
    update_user,
    delete_user,
    list_roles,
    create_role,
    list_all_jobs,
    cancel_any_job,
    rerun_job
))]
struct AdminApi;

pub fn area() -> Area {
    Area::new(<AdminApi as utoipa::OpenApi>::openapi())
        .handle("my_permission", my_permission)
        .handle("assign_role", assign_role)
        .handle("revoke_role", revoke_role)
        .handle("list_users", list_users)
        .handle("get_user", get_user)
        .handle("update_user", update_user)
        .handle("delete_user", delete_user)
        .handle("list_roles", list_roles)
        .handle("create_role", create_role)
        .handle("list_all_jobs", list_all_jobs)
        .handle("cancel_any_job", cancel_any_job)
        .handle("rerun_job", rerun_job)
        .permit("assign_role", Action::Write, Resource::Role)
        .permit("revoke_role", Action::Write, Resource::Role)
        .permit("list_users", Action::Read, Resource::User)
        .permit("get_user", Action::Read, Resource::User)
        .permit("update_user", Action::Write, Resource::User)
        .permit("delete_user", Action::Delete, Resource::User)
        .permit("list_roles", Action::Read, Resource::Role)
        .permit("create_role", Action::Write, Resource::Role)
        .permit("list_all_jobs", Action::Read, Resource::Job)
        .permit("cancel_any_job", Action::Write, Resource::Job)
        .permit("rerun_job", Action::Write, Resource::Job)
        .paged(Paging::Numbered, &["list_users", "list_all_jobs"])
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PermissionQuery {
    action: Action,
    resource: Resource,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionView {
    action: Action,
    resource: Resource,
    /// Whether the caller's roles allow the action on every such resource. (Every account
    /// acts on its own jobs, clips and data without a permission.)
    permitted: bool,
}

/// Whether the caller may do an action on a kind of resource (seed 003).
#[utoipa::path(
    get, path = "/api/users/me/permissions", tag = "admin", security(("bearer" = [])),
    params(PermissionQuery),
    responses(
        (status = 200, body = PermissionView),
        (status = 401, body = ErrorEnvelope),
        (status = 422, description = "Unknown action or resource", body = ErrorEnvelope),
    )
)]
pub async fn my_permission(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PermissionQuery>,
) -> ApiResult<HttpResponse> {
    let PermissionQuery { action, resource } = query.into_inner();
    let permitted = state.access.permitted(caller.0, action, resource).await?;
    Ok(HttpResponse::Ok().json(PermissionView {
        action,
        resource,
        permitted,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    #[schema(example = "admin")]
    role: String,
    /// Accepted as seed 003 sends it (and checked like any application id); roles hold
    /// across the whole service.
    #[schema(example = "app_12345")]
    application_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserRoles {
    user_id: Uuid,
    /// `user` first: every account has it.
    roles: Vec<String>,
}

async fn roles_view(state: &AppState, user_id: Uuid) -> ApiResult<UserRoles> {
    let mut roles = state.access.roles_of(vec![user_id]).await?;
    Ok(UserRoles {
        user_id,
        roles: roles.remove(&user_id).unwrap_or_default(),
    })
}

/// Give an account a role (needs `write` on `Role`).
#[utoipa::path(
    post, path = "/api/users/{user_id}/roles", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path)), request_body = RoleGrant,
    responses(
        (status = 200, description = "Granted (again is fine); the account's roles", body = UserRoles),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such account or role", body = ErrorEnvelope),
        (status = 422, description = "Malformed role name", body = ErrorEnvelope),
    )
)]
pub async fn assign_role(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Json<RoleGrant>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    ApplicationId::parse(body.application_id.as_deref())?;
    state
        .access
        .grant(user_id, RoleName::parse(&body.role)?)
        .await?;
    Ok(HttpResponse::Ok().json(roles_view(&state, user_id).await?))
}

/// Take a role from an account (needs `write` on `Role`).
#[utoipa::path(
    delete, path = "/api/users/{user_id}/roles/{role}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), ("role" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "The account does not hold this role", body = ErrorEnvelope),
        (status = 422, description = "Malformed role name", body = ErrorEnvelope),
    )
)]
pub async fn revoke_role(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (user_id, role) = path.into_inner();
    state
        .access
        .revoke(user_id, RoleName::parse(&role)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// From 1; default 1.
    page: Option<i64>,
    /// 1 to 100; default 20.
    per_page: Option<i64>,
    /// Only accounts holding this role (`user`: every account).
    role: Option<String>,
    email_verified: Option<bool>,
    /// Part of a username or email address, any case; `%` and `_` match only themselves.
    search: Option<String>,
}

/// A page number (from 1, default 1) and size (1 to 100, default 20), checked.
fn paging(page: Option<i64>, per_page: Option<i64>) -> Result<(i64, i64), ServiceError> {
    let (page, per_page) = (page.unwrap_or(1), per_page.unwrap_or(20));
    if page < 1 {
        return Err(ServiceError::invalid_field("page", "page starts at 1"));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&per_page) {
        let message = format!("per_page is 1 to {MAX_PAGE_SIZE}");
        return Err(ServiceError::invalid_field("per_page", message));
    }
    Ok((page, per_page))
}

fn total_pages(total: i64, per_page: i64) -> i64 {
    (total + per_page - 1) / per_page
}

impl UserQuery {
    fn parse(self) -> Result<UserFilter, ServiceError> {
        let (page, per_page) = paging(self.page, self.per_page)?;
        Ok(UserFilter {
            page,
            per_page,
            role: self.role.as_deref().map(RoleName::parse).transpose()?,
            email_verified: self.email_verified,
            search: self.search.map(|s| s.trim().to_owned()),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    user: UserView,
    roles: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserListing {
    users: Vec<AdminUserView>,
    total: i64,
    page: i64,
    per_page: i64,
    total_pages: i64,
}

fn with_roles(page: UserPage, mut roles: BTreeMap<Uuid, Vec<String>>) -> Vec<AdminUserView> {
    page.users
        .into_iter()
        .map(|user| AdminUserView {
            roles: roles.remove(&user.id).unwrap_or_default(),
            user: UserView::from(user),
        })
        .collect()
}

/// Accounts, newest first, filtered (needs `read` on `User`).
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, body = UserListing),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 422, description = "Bad page, per_page or role", body = ErrorEnvelope),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> ApiResult<HttpResponse> {
    let filter = query.into_inner().parse()?;
    let (page, per_page) = (filter.page, filter.per_page);
    let found = state.auth.search_users(filter).await?;
    let ids = found.users.iter().map(|u| u.id).collect();
    let roles = state.access.roles_of(ids).await?;
    let total = found.total;
    Ok(HttpResponse::Ok().json(UserListing {
        users: with_roles(found, roles),
        total,
        page,
        per_page,
        total_pages: total_pages(total, per_page),
    }))
}

/// One account with its roles (needs `read` on `User`).
#[utoipa::path(
    get, path = "/api/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path)),
    responses(
        (status = 200, body = AdminUserView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such account", body = ErrorEnvelope),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    let user = state.auth.account(user_id).await?;
    let UserRoles { roles, .. } = roles_view(&state, user_id).await?;
    Ok(HttpResponse::Ok().json(AdminUserView {
        user: UserView::from(user),
        roles,
    }))
}

/// The fields to change; a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUserUpdate {
    /// 3 to 50 letters, digits, `_`, `.` or `-`; unique whatever its case.
    username: Option<String>,
    /// 1 to 100 printable characters; an empty string removes it.
    display_name: Option<String>,
    /// Marks the address verified (say, after support confirmed it) or not.
    email_verified: Option<bool>,
}

/// Change an account's username, display name or verified flag (needs `write` on `User`).
#[utoipa::path(
    put, path = "/api/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path)), request_body = AdminUserUpdate,
    responses(
        (status = 200, body = AdminUserView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such account", body = ErrorEnvelope),
        (status = 409, description = "The username is taken", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn update_user(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Json<AdminUserUpdate>,
) -> ApiResult<HttpResponse> {
    let AdminUserUpdate {
        username,
        display_name,
        email_verified,
    } = body.into_inner();
    let change = crate::routes::users::profile_change(username, display_name)?;
    let user_id = path.into_inner();
    let user = state
        .auth
        .update_account(user_id, change, email_verified)
        .await?;
    let UserRoles { roles, .. } = roles_view(&state, user_id).await?;
    Ok(HttpResponse::Ok().json(AdminUserView {
        user: UserView::from(user),
        roles,
    }))
}

/// Delete an account with everything it owns, as `DELETE /api/users/me` does (needs
/// `delete` on `User`).
#[utoipa::path(
    delete, path = "/api/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such account", body = ErrorEnvelope),
        (status = 502, description = "Stripe could not cancel the subscription; nothing was deleted", body = ErrorEnvelope),
    )
)]
pub async fn delete_user(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    for session in state.closure.close(path.into_inner()).await? {
        state.events.session_ended(session).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PermissionGrant {
    action: Action,
    resource: Resource,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleView {
    #[schema(example = "support")]
    name: String,
    #[serde(default)]
    #[schema(example = "Reads jobs to help players")]
    description: String,
    permissions: Vec<PermissionGrant>,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        Self {
            name: role.name,
            description: role.description,
            permissions: role
                .permissions
                .into_iter()
                .map(|(action, resource)| PermissionGrant { action, resource })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    roles: Vec<RoleView>,
}

/// Every role with its permissions (needs `read` on `Role`).
#[utoipa::path(
    get, path = "/api/admin/roles", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = RoleList),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
    )
)]
pub async fn list_roles(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let roles = state.access.roles().await?;
    Ok(HttpResponse::Ok().json(RoleList {
        roles: roles.into_iter().map(RoleView::from).collect(),
    }))
}

/// Define a named role (needs `write` on `Role`).
#[utoipa::path(
    post, path = "/api/admin/roles", tag = "admin", security(("bearer" = [])),
    request_body = RoleView,
    responses(
        (status = 201, body = RoleView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 409, description = "A role with this name exists", body = ErrorEnvelope),
        (status = 422, description = "Malformed name, description or permission", body = ErrorEnvelope),
    )
)]
pub async fn create_role(
    state: web::Data<AppState>,
    body: web::Json<RoleView>,
) -> ApiResult<HttpResponse> {
    let RoleView {
        name,
        description,
        permissions,
    } = body.into_inner();
    let role = Role {
        name,
        description,
        permissions: permissions
            .into_iter()
            .map(|p| (p.action, p.resource))
            .collect(),
    };
    let created = state.access.create_role(role).await?;
    Ok(HttpResponse::Created().json(RoleView::from(created)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// From 1; default 1.
    page: Option<i64>,
    /// 1 to 100; default 20.
    per_page: Option<i64>,
    status: Option<JobStatus>,
    /// Only this account's jobs.
    user_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminJobView {
    #[serde(flatten)]
    summary: JobSummary,
    user_id: Uuid,
    attempts: i32,
    /// Present when the job failed, or is retrying after a failure.
    error: Option<JobFailure>,
}

#[derive(Serialize, ToSchema)]
pub struct JobListing {
    jobs: Vec<AdminJobView>,
    total: i64,
    page: i64,
    per_page: i64,
    total_pages: i64,
}

/// Every account's jobs, newest first, by status and owner (needs `read` on `Job`).
#[utoipa::path(
    get, path = "/api/admin/jobs", tag = "admin", security(("bearer" = [])),
    params(JobQuery),
    responses(
        (status = 200, body = JobListing),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 422, description = "Bad page, per_page, status or user id", body = ErrorEnvelope),
    )
)]
pub async fn list_all_jobs(
    state: web::Data<AppState>,
    query: web::Query<JobQuery>,
) -> ApiResult<HttpResponse> {
    let JobQuery {
        page,
        per_page,
        status,
        user_id,
    } = query.into_inner();
    let (page, per_page) = paging(page, per_page)?;
    let found = state.jobs.all(status, user_id, page, per_page).await?;
    let jobs = found
        .jobs
        .iter()
        .map(|job| AdminJobView {
            summary: job_summary(job),
            user_id: job.user_id,
            attempts: job.attempts,
            error: failure_of(job),
        })
        .collect();
    Ok(HttpResponse::Ok().json(JobListing {
        jobs,
        total: found.total,
        page,
        per_page,
        total_pages: total_pages(found.total, per_page),
    }))
}

/// Cancel any account's job, as its owner could (needs `write` on `Job`).
#[utoipa::path(
    post, path = "/api/admin/jobs/{job_id}/cancel", tag = "admin", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Cancelled (it had not started)", body = inline(Envelope<JobView>)),
        (status = 202, description = "Cancellation requested; the worker stops it within seconds", body = inline(Envelope<JobView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such job", body = ErrorEnvelope),
        (status = 409, description = "The job already ended", body = ErrorEnvelope),
    )
)]
pub async fn cancel_any_job(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    cancel_in(&state, JobScope::Any, path.into_inner()).await
}

/// Run a failed or cancelled job again from the start (needs `write` on `Job`): attempts,
/// error and timings are cleared, and it waits for a worker like a new job.
#[utoipa::path(
    post, path = "/api/admin/jobs/{job_id}/retry", tag = "admin", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 200, description = "PENDING again", body = inline(Envelope<JobView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not permitted (INSUFFICIENT_PERMISSIONS)", body = ErrorEnvelope),
        (status = 404, description = "No such job", body = ErrorEnvelope),
        (status = 409, description = "Not failed or cancelled, or its clips are deleted", body = ErrorEnvelope),
    )
)]
pub async fn rerun_job(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let job = state.jobs.rerun(path.into_inner()).await?;
    state.events.publish(&job).await;
    state.dispatch.notify_one();
    let view = job_view(JobDetails {
        job,
        outputs: Vec::new(),
    });
    Ok(HttpResponse::Ok().json(ok(view)))
}
