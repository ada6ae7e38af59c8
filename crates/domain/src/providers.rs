//! The platforms a user can link an account of, to import clips from.

use crate::wire::wire_enum;

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
}
