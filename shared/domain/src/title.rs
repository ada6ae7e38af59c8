//! A montage's title, drawn over its first seconds.

use crate::error::{ServiceError, ServiceResult};
use crate::wire::text_column;

/// Longest title, in characters: it must fit one line of a portrait frame.
pub const MAX_TITLE_CHARS: usize = 40;

/// One line of text, 1 to [`MAX_TITLE_CHARS`] characters, no control characters. Whether
/// the style's font has every glyph is checked at admission (`engine::admission`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    pub fn parse(field: &str, raw: &str) -> ServiceResult<Self> {
        let value = raw.trim();
        let length = value.chars().count();
        if !(1..=MAX_TITLE_CHARS).contains(&length) {
            return Err(ServiceError::invalid_field(
                field,
                format!("{field} must be 1 to {MAX_TITLE_CHARS} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ServiceError::invalid_field(
                field,
                format!("{field} must be one line without control characters"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads validate as parsing does.
impl<'de> serde::Deserialize<'de> for Title {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse("title", &raw).map_err(|err| serde::de::Error::custom(err.message))
    }
}

impl std::fmt::Display for Title {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Title {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        Self::parse("title", raw).map_err(|err| err.message)
    }
}

text_column!(Title);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_one_short_line() {
        assert_eq!(
            Title::parse("title", "  GG — 1v4 clutch! ")
                .unwrap()
                .as_str(),
            "GG — 1v4 clutch!"
        );
        assert_eq!(
            Title::parse("title", &"é".repeat(40))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            40
        );
        for bad in [
            "",
            "   ",
            &"a".repeat(41),
            "two\nlines",
            "tab\there",
            "bell\u{7}",
        ] {
            assert!(Title::parse("title", bad).is_err(), "{bad:?}");
        }
    }
}
