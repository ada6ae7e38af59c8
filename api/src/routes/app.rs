//! The web app's routes: its shell at `/` and at each address other systems link to (mails,
//! Stripe, the OAuth callback; `app_files::PAGES`), and its files under `/app/`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::app_files::{self, SHELL};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::routes::{policy::RateClass, table::Area};
use crate::state::AppState;

/// The addresses the shell answers at: one documented operation each.
macro_rules! shell_pages {
    ($($name:ident => $path:literal, $what:literal;)*) => {
        $(
            #[doc = $what]
            #[utoipa::path(get, path = $path, tag = "app",
                responses((status = 200, description = "The web app (HTML)"), (status = 304, description = "Not modified")))]
            pub async fn $name(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
                app_files::serve(&state, &request, &SHELL)
            }
        )*

        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($name,)* app_file))]
        struct WebApi;

        pub fn area() -> Area {
            Area::new(<WebApi as utoipa::OpenApi>::openapi())
                $(.handle(stringify!($name), $name))*
                .handle("app_file", app_file)
                .rate(RateClass::Unlimited, &[$(stringify!($name),)* "app_file"])
        }
    };
}

shell_pages! {
    app_home => "/", "The web app.";
    app_verify_email => "/verify-email", "The page the verification mail links to (`?token=`).";
    app_reset_password => "/reset-password", "The page the password-reset mail links to (`?token=`).";
    app_accounts_linked => "/accounts/linked", "Where a platform's OAuth consent returns (`OAUTH_RESULT_URL`).";
    app_billing => "/billing", "Where Stripe's customer portal returns (`BILLING_PORTAL_RETURN_URL`).";
    app_billing_success => "/billing/success", "Where Stripe Checkout returns after paying.";
    app_billing_cancelled => "/billing/cancelled", "Where Stripe Checkout returns when the player gives up.";
}

/// A file of the web app (scripts, styles, icon).
#[utoipa::path(get, path = "/app/{file}", tag = "app",
    params(("file" = String, Path, description = "The file's name, e.g. `main.js`")),
    responses(
        (status = 200, description = "The file, revalidated with its ETag"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such file", body = ErrorEnvelope),
    ))]
pub async fn app_file(
    state: web::Data<AppState>,
    request: HttpRequest,
    file: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let asset = app_files::file(&file)
        .ok_or_else(|| ApiError::from(domain::error::ServiceError::not_found("App file")))?;
    Ok(app_files::serve(&state, &request, asset))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_pages_are_the_ones_the_limiter_exempts() {
        let doc = <super::WebApi as utoipa::OpenApi>::openapi();
        let mut documented: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        documented.retain(|path| *path != "/app/{file}");
        let mut pages = crate::app_files::PAGES.to_vec();
        documented.sort_unstable();
        pages.sort_unstable();
        assert_eq!(documented, pages);
    }
}
