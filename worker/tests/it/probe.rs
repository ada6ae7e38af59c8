//! Probing clips: what the renderer needs, read the way it reads it; anything that is not a
//! video (manifests, garbage, audio alone) refused whatever it is called.

use settings::ClipLimits;
use testkit::media::{self, iso_box, DASH_MANIFEST};
use worker::media::probe::probe;

#[test]
fn probing_reads_what_the_renderer_needs_and_refuses_non_video() {
    use worker::media::MediaError;
    worker::media::init();
    let rotated = probe(&media::rotated_small(), &ClipLimits::default()).unwrap();
    // The ffmpeg CLI displays this clip turned a quarter turn counter-clockwise; the
    // renderer reads the matrix the same way.
    assert_eq!(rotated.rotation, 270);
    assert_eq!((rotated.width, rotated.height), (640, 360));
    assert!(rotated.has_audio);
    assert!((rotated.duration_seconds - 3.0).abs() < 0.1, "{rotated:?}");
    let silent = probe(&media::portrait_no_audio(), &ClipLimits::default()).unwrap();
    assert!(!silent.has_audio);
    assert_eq!(silent.rotation, 0);
    let hevc = probe(&media::hevc_480p(), &ClipLimits::default()).unwrap();
    assert_eq!(hevc.video_codec, "hevc");

    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        garbage.path(),
        b"\0\0\0\x18ftypisom definitely not a movie".repeat(100),
    )
    .unwrap();
    assert!(matches!(
        probe(garbage.path(), &ClipLimits::default()),
        Err(MediaError::Invalid(_))
    ));
    let audio_only = media::clip(
        "audio-only.m4a",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "1",
            "-c:a",
            "aac",
        ],
    );
    let err = probe(&audio_only, &ClipLimits::default()).unwrap_err();
    assert!(err.to_string().contains("no video stream"), "{err}");
}

#[test]
fn manifests_are_refused_at_probe_whatever_their_name() {
    worker::media::init();
    let dir = tempfile::tempdir().unwrap();
    let mut behind_ftyp = iso_box(b"ftyp", b"isom\0\0\x02\0isomiso2");
    behind_ftyp.extend_from_slice(DASH_MANIFEST.as_bytes());
    let cases: [(&str, &[u8]); 3] = [
        ("dash.mp4", DASH_MANIFEST.as_bytes()),
        ("hls.m3u8", b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n"),
        ("posing.mp4", &behind_ftyp),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let result = probe(&path, &ClipLimits::default());
        assert!(
            matches!(result, Err(worker::media::MediaError::Invalid(_))),
            "{name}: {result:?}"
        );
    }
}
