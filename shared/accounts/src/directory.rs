//! The admin's view of the accounts (seed 002): a filtered, paginated listing, newest first.

use diesel::pg::Pg;
use diesel::prelude::*;

use db::models::User;
use db::schema::{user_roles, users};
use domain::access::{RoleName, USER_ROLE};
use domain::error::ServiceResult;

use crate::auth::AuthService;

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// From 1.
    pub page: i64,
    /// 1 to [`domain::jobs::MAX_PAGE_SIZE`].
    pub per_page: i64,
    pub role: Option<RoleName>,
    pub email_verified: Option<bool>,
    /// Part of a username or an email address; `%` and `_` match only themselves.
    pub search: Option<String>,
}

#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: i64,
}

/// `text` as a literal inside an `ILIKE` pattern (backslash is the escape character).
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn filtered(filter: &UserFilter) -> users::BoxedQuery<'static, Pg> {
    let mut query = users::table.into_boxed();
    if let Some(role) = filter.role.as_ref().filter(|r| r.as_str() != USER_ROLE) {
        let holders = user_roles::table
            .filter(user_roles::role.eq(role.as_str().to_owned()))
            .select(user_roles::user_id);
        query = query.filter(users::id.eq_any(holders));
    }
    if let Some(verified) = filter.email_verified {
        query = match verified {
            true => query.filter(users::email_verified_at.is_not_null()),
            false => query.filter(users::email_verified_at.is_null()),
        };
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", like_literal(search));
        query = query.filter(
            users::email
                .ilike(pattern.clone())
                .or(users::username.ilike(pattern)),
        );
    }
    query
}

impl AuthService {
    /// One page of the accounts matching `filter`, newest first, and how many match.
    pub async fn search_users(&self, filter: UserFilter) -> ServiceResult<UserPage> {
        self.db()
            .run(move |conn| {
                let total = filtered(&filter).count().get_result(conn)?;
                let users = filtered(&filter)
                    .order((users::created_at.desc(), users::id.desc()))
                    .limit(filter.per_page)
                    .offset((filter.page - 1) * filter.per_page)
                    .select(User::as_select())
                    .load(conn)?;
                Ok(UserPage { users, total })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_a_search_match_only_themselves() {
        assert_eq!(like_literal("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_literal("alice"), "alice");
    }
}
