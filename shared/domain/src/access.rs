//! Who may do what (seed 003): an action on a kind of resource, granted through roles.

use crate::error::{ServiceError, ServiceResult};
use crate::wire::wire_enum;

wire_enum!(
    /// What a permission allows.
    Action { Read => "read", Write => "write", Delete => "delete" }
);

wire_enum!(
    /// The kinds of things a permission covers.
    Resource {
        Job => "Job", User => "User", Role => "Role", UserData => "UserData",
        Subscription => "Subscription", WeeklyMontage => "WeeklyMontage",
    }
);

/// The role every account has, without a grant: it acts only on the account's own things.
pub const USER_ROLE: &str = "user";
/// The role that holds every permission.
pub const ADMIN_ROLE: &str = "admin";

/// A role's name: 2 to 50 lower-case letters, digits, `_` or `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let valid = (2..=50).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if !valid {
            return Err(ServiceError::invalid_field(
                "role",
                "A role name is 2 to 50 lower-case letters, digits, `_` or `-`, starting with a letter",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_lower_case() {
        for good in ["admin", "support-2", "ed_itor"] {
            assert!(RoleName::parse(good).is_ok(), "{good}");
        }
        for bad in ["a", "Admin", "2admin", "ad min", "", &"r".repeat(51)] {
            assert!(RoleName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
