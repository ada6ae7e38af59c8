//! The clip library: where a clip came from, how far its examination got, and where its
//! objects are stored.

use uuid::Uuid;

use crate::wire::wire_enum;

wire_enum!(
    /// Where a library clip came from.
    ClipSource { Upload => "upload", Twitch => "twitch" }
);
wire_enum!(
    /// How far a library clip's examination (probe, thumbnail, analysis) got.
    ClipStatus { Pending => "PENDING", Ready => "READY", Rejected => "REJECTED" }
);

impl ClipStatus {
    /// Whether a job may use the clip: a pending one is examined by the job itself.
    pub fn is_usable(self) -> bool {
        !matches!(self, Self::Rejected)
    }
}

/// Stored analyses carry this; a change to what is measured, or how, bumps it, and a
/// stored analysis of another version is measured again (and not read by the weekly run).
pub const ANALYSIS_VERSION: u32 = 1;

/// The storage prefix of every library object of a user.
pub fn clip_prefix(user_id: Uuid) -> String {
    format!("clips/{user_id}/")
}

/// The storage key of a library clip.
pub fn clip_key(user_id: Uuid, clip_id: Uuid) -> String {
    format!("clips/{user_id}/{clip_id}")
}

/// The storage key of a library clip's thumbnail.
pub fn clip_thumbnail_key(user_id: Uuid, clip_id: Uuid) -> String {
    format!("clips/{user_id}/{clip_id}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_clip_objects_are_all_under_their_prefix() {
        let (user, clip) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(clip_key(user, clip).starts_with(&clip_prefix(user)));
        assert!(clip_thumbnail_key(user, clip).starts_with(&clip_prefix(user)));
        assert_ne!(clip_key(user, clip), clip_thumbnail_key(user, clip));
        assert!(!clip_key(user, clip).starts_with(&clip_prefix(Uuid::now_v7())));
    }

    #[test]
    fn only_rejected_clips_are_unusable() {
        assert!(ClipStatus::Pending.is_usable());
        assert!(ClipStatus::Ready.is_usable());
        assert!(!ClipStatus::Rejected.is_usable());
    }
}
