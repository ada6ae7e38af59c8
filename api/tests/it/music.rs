//! The music catalogue and montages cut to a track, as a client sees them.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};
use crate::render::download;
use testkit::media::{self, ffprobe, stream};

#[tokio::test]
async fn the_catalogue_lists_every_track_with_a_preview_to_listen_to() {
    let app = spawn_app().await;
    let list: Value = app.public_json("/api/v2/music").await;
    let tracks = list["data"]["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 28, "{list}");
    for track in tracks {
        assert_eq!(track["licence"], "MIT", "{track}");
        assert!(
            track["bpm"]
                .as_u64()
                .is_some_and(|b| (60..=200).contains(&b)),
            "{track}"
        );
        assert!(
            track["duration_seconds"].as_f64().unwrap() > 20.0,
            "{track}"
        );
        assert!(["calm", "energetic", "happy", "nostalgic", "tender"]
            .contains(&track["mood"].as_str().unwrap()));
    }
    let preview = app
        .client
        .get(app.url(tracks[0]["preview_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["content-type"], "audio/ogg");
    assert!(preview.bytes().await.unwrap().starts_with(b"OggS"));
    // Only catalogue ids name files: no path reaches past the catalogue.
    for id in ["no_such_track", "..%2F..%2Fetc%2Fpasswd", "Calm_Acoustic_1"] {
        let response = app
            .client
            .get(app.url(&format!("/api/v2/music/{id}/preview")))
            .send()
            .await
            .unwrap();
        assert_error(response, 404, "RESOURCE_NOT_FOUND").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_montage_cut_to_a_catalogue_track_carries_it_and_an_unknown_track_is_refused() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let clip = std::fs::read(media::h264_1080p60()).unwrap();
    for (bad, why) in [("no_such_track", "Unknown music_id"), ("../x", "track id")] {
        let response = app
            .create_job(&user, &[("a.mp4", clip.clone())], &[("music_id", bad)])
            .await;
        let body = assert_error(response, 422, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["data"]["field"], "music_id", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    let jobs: Value = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(
        jobs["data"]["total"], 0,
        "a refused job stores nothing: {jobs}"
    );

    app.start_worker().await;
    let fields = [
        ("music_id", "energetic_electronic_2"),
        ("target_duration", "10"),
        ("style", "energetic"),
    ];
    let response = app.create_job(&user, &[("a.mp4", clip)], &fields).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap().to_owned();
    let job = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(240))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["options"]["music_id"], "energetic_electronic_2");
    let path = download(&app, &user, &job_id, "landscape").await;
    let probe = ffprobe(&path);
    assert_eq!(stream(&probe, "audio")["codec_name"], "aac");
    // No rate asked: the footage is all 60 fps, so the montage is too.
    assert!(job["options"]["fps"].is_null(), "{job}");
    assert_eq!(stream(&probe, "video")["avg_frame_rate"], "60/1");
    let (lufs, _) = media::loudness(&path);
    assert!((lufs + 14.0).abs() <= 1.0, "{lufs} LUFS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_s_own_track_is_checked_on_arrival_laid_under_the_montage_and_deleted_with_it() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let clip = std::fs::read(media::portrait_no_audio()).unwrap();
    let track = std::fs::read(media::tone_with_clicks_mp3()).unwrap();
    let files = |music: (&'static str, Vec<u8>)| {
        vec![
            ("files", "a.mp4", clip.clone()),
            ("music", music.0, music.1),
        ]
    };
    let text = ("notes.mp3", b"not a song, only words about one".repeat(200));
    let response = app.create_job_with(&user, &[], &files(text)).await;
    let body = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert_eq!(body["error"]["data"]["field"], "music", "{body}");
    let both = [("music_id", "energetic_electronic_2")];
    let response = app
        .create_job_with(&user, &both, &files(("t.mp3", track.clone())))
        .await;
    let body = assert_error(response, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["data"]["field"], "music", "{body}");
    let jobs: Value = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(
        jobs["data"]["total"], 0,
        "a refused job keeps nothing: {jobs}"
    );
    assert!(app.storage.keys_under("jobs/").await.unwrap().is_empty());

    app.start_worker().await;
    let fields = [("target_duration", "10"), ("style", "energetic")];
    let response = app
        .create_job_with(&user, &fields, &files(("t.mp3", track)))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap().to_owned();
    let job = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(240))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["options"]["music_uploaded"], true, "{job}");
    assert!(job["options"]["music_id"].is_null(), "{job}");
    // The clip is silent: what is heard is the player's track, normalised.
    let path = download(&app, &user, &job_id, "landscape").await;
    let (lufs, _) = media::loudness(&path);
    assert!((lufs + 14.0).abs() <= 1.0, "{lufs} LUFS");

    let prefix = format!("jobs/{job_id}/");
    let gone = app
        .client
        .delete(app.url(&format!("/api/v2/jobs/{job_id}")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert!(app.storage.keys_under(&prefix).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_that_only_looks_like_audio_fails_the_job_in_the_sandbox() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    app.start_worker().await;
    let clip = std::fs::read(media::portrait_no_audio()).unwrap();
    // An ID3 tag and then a DASH manifest naming a local file: only the MP3 demuxer may
    // read it, and it finds no sound.
    let mut lying = b"ID3\x04\0\0\0\0\0\x10".to_vec();
    lying.extend_from_slice(&[0; 16]);
    lying.extend_from_slice(media::DASH_MANIFEST.repeat(10).as_bytes());
    let parts = [("files", "a.mp4", clip), ("music", "track.mp3", lying)];
    let response = app.create_job_with(&user, &[], &parts).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap();
    let job = app
        .wait_for_job_end(&user, job_id, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "FAILED", "{job}");
    assert_eq!(job["error"]["code"], "INVALID_MEDIA", "{job}");
    assert!(
        job["error"]["message"].as_str().unwrap().contains("music"),
        "{job}"
    );
}
