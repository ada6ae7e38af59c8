//! A user's profile (seeds 002, 003): a username, unique whatever its case, and a display
//! name.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use db::models::User;
use db::schema::users;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;

use crate::auth::AuthService;

/// 3 to 50 letters, digits, `_`, `.` or `-` (seed 002's length rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let valid = (3..=50).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(ServiceError::invalid_field(
                "username",
                "Username must be between 3 and 50 characters: letters, digits, `_`, `.` or `-`",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Any printable text of 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let name = raw.trim();
        let valid =
            (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control);
        if !valid {
            return Err(ServiceError::invalid_field(
                "display_name",
                "Display name must be 1 to 100 printable characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }
}

/// What a profile update changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub username: Option<Username>,
    /// `Some(None)` removes the display name.
    pub display_name: Option<Option<DisplayName>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct ProfileColumns {
    username: Option<String>,
    display_name: Option<Option<String>>,
}

/// A taken username as a conflict on its field; other errors as they are.
pub(crate) fn taken_username(err: DieselError) -> ServiceError {
    match &err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("users_username") =>
        {
            ServiceError::conflict("This username is taken")
                .with_data(serde_json::json!({ "field": "username" }))
        }
        _ => err.into(),
    }
}

impl AuthService {
    /// Applies `change` and answers the profile as it is now.
    pub async fn update_profile(
        &self,
        user: AuthUser,
        change: ProfileChange,
    ) -> ServiceResult<User> {
        let columns = ProfileColumns {
            username: change.username.map(|u| u.0),
            display_name: change.display_name.map(|d| d.map(|d| d.0)),
        };
        if columns.username.is_none() && columns.display_name.is_none() {
            return self.user(user).await;
        }
        self.db()
            .run(move |conn| {
                diesel::update(users::table.find(user.id))
                    .set(&columns)
                    .returning(User::as_returning())
                    .get_result(conn)
                    .map_err(taken_username)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_display_names_follow_their_rules() {
        for good in ["abc", "alice_2", "a.b-c", &"x".repeat(50)] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        for bad in ["ab", &"x".repeat(51), "al ice", "alice!", "ålice", ""] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DisplayName::parse("  Alice the Great ").unwrap(),
            DisplayName("Alice the Great".into())
        );
        for bad in ["", "   ", "tab\there", &"é".repeat(101)] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            DisplayName::parse(&"é".repeat(100)).is_ok(),
            "characters, not bytes"
        );
    }
}
