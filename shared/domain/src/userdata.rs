//! Names in a user's application data (seed 003): a key, and the application it belongs to.

use crate::error::{ServiceError, ServiceResult};

/// Longest key or application id.
pub const MAX_NAME_LEN: usize = 64;

/// 1 to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit: safe in a URL
/// path and in a log line as it is.
fn name(raw: &str, field: &str) -> ServiceResult<String> {
    let valid = (1..=MAX_NAME_LEN).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(ServiceError::invalid_field(
            field,
            format!(
                "`{field}` must be 1 to {MAX_NAME_LEN} letters, digits, `_`, `.` or `-`, starting with a letter or digit"
            ),
        ));
    }
    Ok(raw.to_owned())
}

/// The key a value is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKey(String);

impl DataKey {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        name(raw, "key").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The application a user's data belongs to; none when the client names none (stored as
/// the empty string, which no named application can be).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationId(String);

impl ApplicationId {
    pub fn parse(raw: Option<&str>) -> ServiceResult<Self> {
        raw.map_or(Ok(Self::default()), |raw| {
            name(raw, "application_id").map(Self)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as clients see it: `None` for data of no application.
    pub fn named(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|id| !id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        for good in [
            "preferences",
            "a",
            "ui.theme-v2_x",
            &"k".repeat(MAX_NAME_LEN),
        ] {
            assert!(DataKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "_x", ".hidden", "a/b", "a b", "%", "é", &"k".repeat(65)] {
            assert!(DataKey::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ApplicationId::parse(None).unwrap().named(), None);
        assert_eq!(
            ApplicationId::parse(Some("app_12345")).unwrap().named(),
            Some("app_12345")
        );
        assert!(
            ApplicationId::parse(Some("")).is_err(),
            "empty is not a name"
        );
    }
}
