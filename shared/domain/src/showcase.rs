//! Montages shown to others: weekly montages, share links and the views they get, and the
//! interests recommendations follow.

use crate::error::{ServiceError, ServiceResult};
use crate::jobs::Style;
use crate::wire::wire_enum;

wire_enum!(
    /// Who may watch a weekly montage.
    Visibility { Private => "private", Public => "public" }
);
wire_enum!(
    /// What the weekly run made of a user's week.
    WeeklyOutcome { Built => "built", TooLittle => "too_little", OverQuota => "over_quota" }
);
wire_enum!(
    /// Where a view was counted.
    ViewSource { SharePage => "share_page", Client => "client" }
);
wire_enum!(
    /// What an interest names.
    InterestKind { Game => "game", Style => "style" }
);

/// Most interests one player keeps.
pub const MAX_INTERESTS: usize = 20;

/// One interest: a style by its name, or a game (2 to 40 letters, digits, spaces and
/// `-:'.&`), compared in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    pub name: String,
    pub kind: InterestKind,
}

impl Interest {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let name = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if let Ok(style) = name.parse::<Style>() {
            return Ok(Self {
                name: style.as_str().to_owned(),
                kind: InterestKind::Style,
            });
        }
        let valid = (2..=40).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | ':' | '\'' | '.' | '&'));
        if !valid {
            return Err(ServiceError::invalid_field(
                "interests",
                format!(
                    "{raw:?} is neither a style ({}) nor a game name (2 to 40 letters, digits, spaces and -:'.&)",
                    Style::names()
                ),
            ));
        }
        Ok(Self {
            name,
            kind: InterestKind::Game,
        })
    }

    /// A player's whole list: each parsed, duplicates dropped, at most [`MAX_INTERESTS`].
    pub fn parse_all(raw: &[String]) -> ServiceResult<Vec<Self>> {
        let mut interests = raw
            .iter()
            .map(|one| Self::parse(one))
            .collect::<ServiceResult<Vec<_>>>()?;
        interests.sort_by(|a, b| a.name.cmp(&b.name));
        interests.dedup_by(|a, b| a.name == b.name);
        if interests.len() > MAX_INTERESTS {
            return Err(ServiceError::invalid_field(
                "interests",
                format!(
                    "At most {MAX_INTERESTS} interests; {} given",
                    interests.len()
                ),
            ));
        }
        Ok(interests)
    }
}

/// The token of a share link, as it appears in `/s/{token}`: 32 random bytes, base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareToken(String);

pub const SHARE_TOKEN_LENGTH: usize = 43;

impl ShareToken {
    /// A fresh, unguessable token.
    pub fn generate(random: [u8; 32]) -> Self {
        use base64::Engine;
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
    }

    /// A token from a URL; anything that cannot be one is `None` (and is simply not found).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == SHARE_TOKEN_LENGTH
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')))
        .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_are_styles_or_game_names() {
        let parsed = Interest::parse("  Cinematic ").unwrap();
        assert_eq!(parsed.kind, InterestKind::Style);
        assert_eq!(parsed.name, "cinematic");
        let game = Interest::parse("Counter-Strike  2").unwrap();
        assert_eq!(
            (game.kind, game.name.as_str()),
            (InterestKind::Game, "counter-strike 2")
        );
        for bad in ["", "x", "<script>", &"a".repeat(41), "drop;table"] {
            assert!(Interest::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_list_is_deduplicated_and_capped() {
        let list =
            Interest::parse_all(&["Valorant".into(), "valorant".into(), "chill".into()]).unwrap();
        assert_eq!(list.len(), 2);
        let many: Vec<String> = (0..21).map(|i| format!("game {i}")).collect();
        assert!(Interest::parse_all(&many).is_err());
    }

    #[test]
    fn share_tokens_round_trip_and_refuse_anything_else() {
        let token = ShareToken::generate([7; 32]);
        assert_eq!(token.as_str().len(), SHARE_TOKEN_LENGTH);
        assert_eq!(ShareToken::parse(token.as_str()), Some(token));
        assert_eq!(ShareToken::parse("short"), None);
        assert_eq!(ShareToken::parse(&"%".repeat(SHARE_TOKEN_LENGTH)), None);
    }
}
