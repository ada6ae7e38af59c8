//! End to end: upload generated clips of mixed kinds, let a real worker render them, and
//! check the downloaded outputs with ffprobe.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{spawn_app, TestApp, TestUser};
use testkit::media::{self, ffprobe, seconds, stream};

const ONE_FRAME: f64 = 1.0 / 30.0;

pub(crate) async fn download(
    app: &TestApp,
    user: &TestUser,
    job_id: &str,
    format: &str,
) -> std::path::PathBuf {
    let redirect = app
        .get(
            &format!("/api/v2/jobs/{job_id}/download?format={format}"),
            user,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("X-Amz-Signature="),
        "presigned: {location}"
    );
    let bytes = reqwest::get(&location).await.unwrap();
    assert_eq!(bytes.status(), 200);
    let path = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    std::fs::write(&path, bytes.bytes().await.unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_clips_render_to_exact_playable_outputs_in_both_formats() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let clips = [
        media::h264_1080p60(),
        media::vp9_720p_webm(),
        media::portrait_no_audio(),
        media::rotated_small(),
        media::hevc_480p(),
    ];
    let files: Vec<(&str, Vec<u8>)> = clips
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    let response = app
        .create_job(
            &user,
            &files,
            &[
                ("target_duration", "10"),
                ("formats", "landscape,portrait"),
                ("style", "gaming"),
                ("fps", "30"),
            ],
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap().to_owned();

    let job = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(240))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["progress"]["percent"], 100);
    assert_eq!(job["outputs"].as_array().unwrap().len(), 2, "{job}");
    // Where the time went: every stage of the attempt is measured, and they add up to no
    // more than the whole (audio runs beside video, so it is left out of the sum).
    let timings = &job["timings"];
    let stage = |name: &str| {
        timings[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {job}"))
    };
    for name in ["download", "probe", "analysis", "audio", "video", "upload"] {
        assert!(stage(name) > 0.0, "{name} was measured: {timings}");
    }
    let sequential: f64 = ["download", "probe", "analysis", "video", "upload"]
        .iter()
        .map(|name| stage(name))
        .sum();
    assert!(sequential <= stage("total") + 0.01, "{timings}");

    for (format, width, height) in [("landscape", 1920, 1080), ("portrait", 1080, 1920)] {
        let path = download(&app, &user, &job_id, format).await;
        let probe = ffprobe(&path);
        let video = stream(&probe, "video");
        let audio = stream(&probe, "audio");
        assert_eq!(video["codec_name"], "h264", "{format}");
        assert_eq!(video["pix_fmt"], "yuv420p", "{format}");
        assert_eq!(
            (
                video["width"].as_i64().unwrap(),
                video["height"].as_i64().unwrap()
            ),
            (width, height),
            "{format}"
        );
        assert_eq!(video["r_frame_rate"], "30/1", "{format}");
        assert_eq!(video["nb_read_frames"], "300", "{format}: 10 s at 30 fps");
        assert_eq!(audio["codec_name"], "aac", "{format}");
        assert_eq!(audio["sample_rate"], "48000", "{format}");
        assert_eq!(audio["channels"], 2, "{format}");
        let video_seconds = seconds(&video["duration"]);
        let audio_seconds = seconds(&audio["duration"]);
        assert!(
            (video_seconds - 10.0).abs() <= ONE_FRAME,
            "{format}: video lasts {video_seconds}"
        );
        assert!(
            (audio_seconds - video_seconds).abs() <= ONE_FRAME,
            "{format}: audio {audio_seconds} vs video {video_seconds}"
        );
        let (integrated, true_peak) = media::loudness(&path);
        assert!(
            (integrated + 14.0).abs() <= 1.0,
            "{format}: {integrated} LUFS"
        );
        assert!(true_peak <= -1.0, "{format}: true peak {true_peak} dBTP");
        let head = std::fs::read(&path).unwrap();
        let moov = head.windows(4).position(|w| w == b"moov").unwrap();
        let mdat = head.windows(4).position(|w| w == b"mdat").unwrap();
        assert!(
            moov < mdat,
            "{format}: index before the media data (faststart)"
        );
        std::fs::remove_file(path).unwrap();

        let poster = app
            .get(
                &format!("/api/v2/jobs/{job_id}/poster?format={format}"),
                &user,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(poster.status(), 302);
        let location = poster.headers()["location"].to_str().unwrap().to_owned();
        let jpeg = reqwest::get(&location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "{format}: a JPEG");
        // Browsers' `fetch` cannot read a redirect's target: they ask for the link as JSON.
        let link = app
            .user_json(
                &format!("/api/v2/jobs/{job_id}/poster?format={format}&redirect=false"),
                &user,
            )
            .await;
        let url = link["data"]["url"].as_str().expect("the link");
        let same = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        assert_eq!(same, jpeg, "{format}: the same poster");
        let poster_path = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
        std::fs::write(poster_path.path(), &jpeg).unwrap();
        let probe = ffprobe(poster_path.path());
        let image = stream(&probe, "video");
        assert_eq!(
            (
                image["width"].as_i64().unwrap(),
                image["height"].as_i64().unwrap()
            ),
            (width, height)
        );
    }
    for output in job["outputs"].as_array().unwrap() {
        assert!(
            output["poster_url"]
                .as_str()
                .unwrap()
                .contains("/poster?format="),
            "{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_upload_fails_the_job_with_a_clear_error() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let corrupt = media::undecodable_mp4();
    let good = std::fs::read(media::portrait_no_audio()).unwrap();
    let response = app
        .create_job(
            &user,
            &[("good.mp4", good), ("broken.mp4", corrupt)],
            &[("target_duration", "10")],
        )
        .await;
    assert_eq!(response.status(), 201);
    let job_id = response.json::<Value>().await.unwrap()["data"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let job = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "FAILED", "{job}");
    assert_eq!(job["error"]["code"], "INVALID_MEDIA", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "a permanent failure is not retried: {job}"
    );
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Clip 2") && message.contains("broken.mp4"),
        "names the clip: {message}"
    );
    assert!(job["outputs"].as_array().unwrap().is_empty());
    let download = app
        .get(&format!("/api/v2/jobs/{job_id}/download"), &user)
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(download, 409, "JOB_NOT_READY").await;
}
