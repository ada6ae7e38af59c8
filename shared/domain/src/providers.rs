//! The platforms a user can link an account of, to import clips from.

use crate::wire::wire_enum;

wire_enum!(
    /// Where an import of a linked account's clips is.
    SyncStatus { Pending => "PENDING", Running => "RUNNING", Success => "SUCCESS", Failed => "FAILED" }
);

wire_enum!(
    /// Where a montage posted to a platform is.
    PostStatus {
        Pending => "PENDING", Uploading => "UPLOADING", Processing => "PROCESSING",
        Published => "PUBLISHED", Failed => "FAILED",
    }
);

wire_enum!(
    /// A platform users can link.
    ProviderId { Steam => "steam", Twitch => "twitch", Youtube => "youtube", Tiktok => "tiktok" }
);

impl ProviderId {
    /// The platform's name, as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Steam => "Steam",
            Self::Twitch => "Twitch",
            Self::Youtube => "YouTube",
            Self::Tiktok => "TikTok",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Self::Steam => "🎮",
            Self::Twitch => "📺",
            Self::Youtube => "▶️",
            Self::Tiktok => "🎵",
        }
    }

    /// What linking it brings.
    pub fn description(self) -> &'static str {
        match self {
            Self::Steam => "Steam Library",
            Self::Twitch => "Twitch clips and highlights",
            Self::Youtube => "YouTube videos and Shorts",
            Self::Tiktok => "TikTok videos",
        }
    }

    /// Whether clips can be imported from it into the library.
    pub fn can_import(self) -> bool {
        matches!(self, Self::Twitch)
    }

    /// Whether montages can be posted to it.
    pub fn can_post(self) -> bool {
        matches!(self, Self::Youtube | Self::Tiktok)
    }
}
