//! Test support shared by the crates' integration tests: clips made with the ffmpeg CLI, and
//! ffprobe checks of outputs. Not linked into any binary.

use std::path::PathBuf;

pub mod media;

/// A directory for generated clips, shared by every test run on this machine (clips are
/// cached by recipe and written atomically). `TEST_CLIP_DIR` overrides it.
pub fn clip_dir() -> PathBuf {
    let dir = std::env::var_os("TEST_CLIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("montage-test-clips"));
    std::fs::create_dir_all(&dir).expect("a clip directory");
    dir
}
