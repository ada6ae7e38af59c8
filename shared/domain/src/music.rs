//! Music for montages: the catalogue's vocabulary and the ids jobs name tracks by.

use crate::error::{ServiceError, ServiceResult};
use crate::wire::wire_enum;

wire_enum!(
    /// The feel of a catalogue track.
    Mood {
        Calm => "calm", Energetic => "energetic", Happy => "happy",
        Nostalgic => "nostalgic", Tender => "tender",
    }
);

/// Longest track id.
pub const MAX_TRACK_ID_LEN: usize = 64;

/// A catalogue track's id: lower-case letters, digits and underscores, as the track's file
/// is named. Parsing checks only the shape; whether the catalogue has it is the
/// catalogue's question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TrackId(String);

impl TrackId {
    pub fn parse(field: &str, raw: &str) -> ServiceResult<Self> {
        let value = raw.trim();
        let shaped = (1..=MAX_TRACK_ID_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if shaped {
            Ok(Self(value.to_owned()))
        } else {
            Err(ServiceError::invalid_field(
                field,
                format!("{field} must be a track id from GET /api/v2/music"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads validate as parsing does: a client never holds a track id of the wrong shape.
impl<'de> serde::Deserialize<'de> for TrackId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse("music_id", &raw).map_err(|err| serde::de::Error::custom(err.message))
    }
}

impl std::fmt::Display for TrackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_ids_are_file_stems_only() {
        assert_eq!(
            TrackId::parse("music_id", " energetic_electronic_2 ")
                .unwrap()
                .as_str(),
            "energetic_electronic_2"
        );
        for bad in [
            "",
            "../etc/passwd",
            "Energetic",
            "a b",
            "a.opus",
            &"a".repeat(65),
        ] {
            assert!(TrackId::parse("music_id", bad).is_err(), "{bad:?}");
        }
    }
}
