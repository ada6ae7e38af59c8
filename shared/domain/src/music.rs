//! Music for montages: the catalogue's vocabulary and the ids jobs name tracks by.

use crate::error::{ServiceError, ServiceResult};
use crate::wire::{text_column, wire_enum};

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

/// The music under a montage: a catalogue track, or the player's own, sent with the job's
/// form and stored at the job's [`crate::jobs::music_key`]. Stored as the track's id, or
/// `:upload` (which no id can be).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub enum Music {
    Track(TrackId),
    Uploaded,
}

const UPLOADED: &str = ":upload";

impl Music {
    /// The catalogue track, if it is one.
    pub fn track(&self) -> Option<&TrackId> {
        match self {
            Self::Track(id) => Some(id),
            Self::Uploaded => None,
        }
    }
}

impl std::fmt::Display for Music {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Track(id) => f.write_str(id.as_str()),
            Self::Uploaded => f.write_str(UPLOADED),
        }
    }
}

impl std::str::FromStr for Music {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if raw == UPLOADED {
            return Ok(Self::Uploaded);
        }
        TrackId::parse("music", raw)
            .map(Self::Track)
            .map_err(|_| "is not a track id".to_owned())
    }
}

text_column!(Music);

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

    #[test]
    fn music_reads_back_as_stored_and_no_track_id_passes_for_an_upload() {
        let track = Music::Track(TrackId::parse("music_id", "happy_1").unwrap());
        for music in [track, Music::Uploaded] {
            assert_eq!(music.to_string().parse::<Music>(), Ok(music));
        }
        assert!(TrackId::parse("music_id", ":upload").is_err());
        assert!("../etc".parse::<Music>().is_err());
    }
}
