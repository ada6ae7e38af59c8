//! A user's profile (seeds 002, 003): a username, unique whatever its case, a display name,
//! and the email address, which changes only once a link mailed to the new address is
//! opened (after the current password), so a typo or a stolen session cannot take the
//! account to an address its owner does not read.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use db::models::{EmailTokenRow, User};
use db::schema::users;
use db::PgConn;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::{AuthUser, TokenPurpose};
use uuid::Uuid;

use crate::auth::{AuthService, Email};
use crate::mail::Mail;
use crate::verification::{issue, EmailService};

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
    pub email: Option<EmailChange>,
}

/// A new address, and the current password that allows the change.
#[derive(Debug)]
pub struct EmailChange {
    pub email: Email,
    pub current_password: String,
}

fn email_taken() -> ServiceError {
    ServiceError::conflict("An account with this email already exists")
        .with_data(serde_json::json!({ "field": "email" }))
}

/// Makes the address of an opened change link the account's, verified.
pub(crate) fn apply_email_change(conn: &mut PgConn, used: &EmailTokenRow) -> ServiceResult<()> {
    diesel::update(users::table.find(used.user_id))
        .set((
            users::email.eq(&used.email),
            users::email_verified_at.eq(Some(chrono::Utc::now())),
        ))
        .execute(conn)
        .map_err(|err| match err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => email_taken(),
            other => other.into(),
        })?;
    crate::verification::void_resets(conn, used.user_id)
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct ProfileColumns {
    username: Option<String>,
    display_name: Option<Option<String>>,
    email_verified_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
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
    /// Applies `change` (but its email, see [`EmailService::update_profile`]) and answers
    /// the profile as it is now.
    pub async fn update_profile(
        &self,
        user: AuthUser,
        change: ProfileChange,
    ) -> ServiceResult<User> {
        let account = self.user(user).await?;
        self.apply_profile(account, change, None).await
    }

    /// An admin's change to any account: the profile fields, and whether its address counts
    /// as verified (`Some(true)` keeps an earlier verification time). 404 when it does not
    /// exist.
    pub async fn update_account(
        &self,
        user: Uuid,
        change: ProfileChange,
        email_verified: Option<bool>,
    ) -> ServiceResult<User> {
        let account = self.account(user).await?;
        self.apply_profile(account, change, email_verified).await
    }

    /// Applies `change` to `account`, as loaded by the caller.
    pub(crate) async fn apply_profile(
        &self,
        account: User,
        change: ProfileChange,
        email_verified: Option<bool>,
    ) -> ServiceResult<User> {
        let user = account.id;
        let email_verified_at = email_verified.map(|verified| {
            verified.then(|| account.email_verified_at.unwrap_or_else(chrono::Utc::now))
        });
        let columns = ProfileColumns {
            username: change.username.map(|u| u.0),
            display_name: change.display_name.map(|d| d.map(|d| d.0)),
            email_verified_at,
        };
        if columns.username.is_none()
            && columns.display_name.is_none()
            && columns.email_verified_at.is_none()
        {
            return Ok(account);
        }
        self.db()
            .run(move |conn| {
                diesel::update(users::table.find(user))
                    .set(&columns)
                    .returning(User::as_returning())
                    .get_result(conn)
                    .map_err(taken_username)
            })
            .await
    }
}

impl EmailService {
    /// Applies a profile change. A new email address needs the current password (wrong ones
    /// earn growing delays) and takes effect when the link mailed to it is opened; the old
    /// address is told. Answers the profile as it is now.
    pub async fn update_profile(
        &self,
        caller: AuthUser,
        mut change: ProfileChange,
    ) -> ServiceResult<User> {
        let account = self.auth.user(caller).await?;
        let new_email = match change.email.take() {
            Some(email_change) => self.check_email_change(&account, email_change).await?,
            None => None,
        };
        let user = self.auth.apply_profile(account, change, None).await?;
        if let Some(address) = new_email {
            self.send_email_change(user.clone(), address).await?;
        }
        Ok(user)
    }

    /// The new address if it differs from the current one, once the password is right and
    /// no other account has it.
    async fn check_email_change(
        &self,
        user: &User,
        change: EmailChange,
    ) -> ServiceResult<Option<String>> {
        let address = change.email.as_str().to_owned();
        let scope = format!("password:{}", user.id);
        let hash = user.password_hash.clone();
        self.auth
            .confirm_password(&scope, "current_password", change.current_password, hash)
            .await?;
        if address == user.email {
            return Ok(None);
        }
        let lookup = address.clone();
        let taken = self
            .auth
            .db()
            .run(move |conn| {
                Ok(diesel::select(diesel::dsl::exists(
                    users::table.filter(users::email.eq(lookup)),
                ))
                .get_result::<bool>(conn)?)
            })
            .await?;
        if taken {
            return Err(email_taken());
        }
        Ok(Some(address))
    }

    async fn send_email_change(&self, user: User, address: String) -> ServiceResult<()> {
        let ttl = self.config.verify_ttl;
        let (id, to) = (user.id, address.clone());
        let token = self
            .auth
            .db()
            .run(move |conn| issue(conn, id, &to, TokenPurpose::ChangeEmail, ttl))
            .await?;
        let link = self.link("verify-email", &token);
        let hours = ttl.as_secs() / 3600;
        self.mailer
            .send(Mail {
                to: address.clone(),
                subject: "Confirm your new email address".into(),
                body: format!(
                    "Open this link to make this the address of your Montage account \
                     (it works once, for {hours} hours):\n\n{link}\n\n\
                     If you did not ask for this, ignore this mail.\n"
                ),
            })
            .await?;
        let notice = Mail {
            to: user.email,
            subject: "Your email address is being changed".into(),
            body: format!(
                "Someone signed in to your Montage account asked to change its address to \
                 {address}. It changes only when the link sent there is opened. If this was \
                 not you, reset your password now.\n"
            ),
        };
        if let Err(err) = self.mailer.send(notice).await {
            tracing::warn!(error = %err, "could not tell the old address of an email change");
        }
        Ok(())
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
