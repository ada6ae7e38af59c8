//! The `montage` command, run as a user runs it, against the test server: sign in, render
//! with progress lines, download, list as JSON, a failed job's exit code.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::helpers::{spawn_app, TestApp, TestUser};
use crate::processes::workspace_binary;
use testkit::media;

/// A user's own configuration directory, removed with the test.
struct Home(PathBuf);

impl Home {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("montage-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `montage ARGS` against `app` as the user whose session `home` keeps.
async fn montage(app: &TestApp, home: &Home, user: &TestUser, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(workspace_binary("montage"));
    command
        .args(args)
        .env("MONTAGE_SERVER", &app.address)
        .env("MONTAGE_CONFIG_DIR", home.0.join("config"))
        .env("MONTAGE_PASSWORD", &user.password)
        .current_dir(&home.0);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn duration_of(path: &Path) -> f64 {
    media::seconds(&media::ffprobe(path)["format"]["duration"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_renders_with_progress_and_downloads_each_format() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let home = Home::new();
    let signed_out = montage(&app, &home, &user, &["jobs"]).await;
    assert_eq!(signed_out.status.code(), Some(4), "{}", stderr(&signed_out));
    assert!(stderr(&signed_out).contains("montage login"));

    let login = montage(&app, &home, &user, &["login", "--email", &user.email]).await;
    assert!(login.status.success(), "{}", stderr(&login));
    let kept = home.0.join("config/credentials.json");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!std::fs::read_to_string(&kept)
        .unwrap()
        .contains(&user.password));

    let music = montage(&app, &home, &user, &["music"]).await;
    assert!(music.status.success(), "{}", stderr(&music));
    assert!(
        stdout(&music).contains("calm_acoustic_1"),
        "{}",
        stdout(&music)
    );
    assert!(
        stdout(&music).ends_with("28 tracks\n"),
        "{}",
        stdout(&music)
    );

    std::fs::copy(media::portrait_no_audio(), home.0.join("a.mp4")).unwrap();
    std::fs::copy(media::rotated_small(), home.0.join("b.mp4")).unwrap();

    std::fs::copy(media::tone_with_clicks_mp3(), home.0.join("song.mp3")).unwrap();

    // Before any worker runs: a job made (with the player's own track) and cancelled.
    let args = [
        "--json",
        "render",
        "a.mp4",
        "--music-file",
        "song.mp3",
        "--no-wait",
    ];
    let queued: Value =
        serde_json::from_slice(&montage(&app, &home, &user, &args).await.stdout).unwrap();
    let queued_id = queued["job_id"].as_str().expect("the created job");
    let queued_job = app
        .user_json(&format!("/api/v2/jobs/{queued_id}"), &user)
        .await;
    assert_eq!(
        queued_job["data"]["options"]["music_uploaded"], true,
        "{queued_job}"
    );
    let cancel = montage(&app, &home, &user, &["--json", "cancel", queued_id]).await;
    let cancelled: Value = serde_json::from_slice(&cancel.stdout).unwrap();
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    app.start_worker().await;
    let args = [
        "render",
        "a.mp4",
        "b.mp4",
        "--duration",
        "10",
        "--style",
        "chill",
        "--formats",
        "landscape,portrait",
        "--music",
        "calm_acoustic_1",
        "--facecam",
        "0.7,0.05,0.25,0.3",
        "--fps",
        "60",
        "-o",
        "out",
    ];
    let render = montage(&app, &home, &user, &args).await;
    let progress = stderr(&render);
    assert!(render.status.success(), "{progress}");
    assert!(progress.contains(" created"), "{progress}");
    assert!(progress.contains("rendering "), "live stages: {progress}");
    assert!(progress.contains("done 100%"), "{progress}");
    let out = home.0.join("out");
    let saved: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 2, "both formats: {saved:?}");
    for path in &saved {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let line = stdout(&render)
            .lines()
            .find(|line| line.ends_with(&name))
            .map(str::to_owned);
        let line = line.unwrap_or_else(|| panic!("{name} in {}", stdout(&render)));
        // What each file holds, in words: its format and size.
        let format = if name.contains("portrait") {
            "portrait"
        } else {
            "landscape"
        };
        assert!(line.trim_start().starts_with(format), "{line}");
        assert!(line.contains(" s ") && line.contains(" MB "), "{line}");
    }

    let listed = montage(&app, &home, &user, &["--json", "jobs"]).await;
    let page: Value = serde_json::from_slice(&listed.stdout).expect("JSON on stdout");
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["jobs"][0]["status"], "SUCCESS");
    let job_id = page["jobs"][0]["job_id"].as_str().unwrap();
    let job = app
        .user_json(&format!("/api/v2/jobs/{job_id}"), &user)
        .await["data"]
        .clone();
    assert_eq!(job["options"]["music_id"], "calm_acoustic_1", "{job}");
    assert_eq!(job["options"]["facecam"]["w"], 0.25, "{job}");
    assert_eq!(job["options"]["fps"], 60, "{job}");
    for output in job["outputs"].as_array().unwrap() {
        let format = output["format"].as_str().unwrap();
        let path = out.join(format!("{job_id}-{format}.mp4"));
        let seconds = output["duration"].as_f64().unwrap();
        assert!(
            (duration_of(&path) - seconds).abs() < 0.1,
            "{format}: the montage itself"
        );
    }
    let args = [
        "--json", "download", job_id, "--format", "portrait", "-o", "again",
    ];
    let download = montage(&app, &home, &user, &args).await;
    let files: Value = serde_json::from_slice(&download.stdout).expect("JSON on stdout");
    let file = files["files"][0]["path"].as_str().unwrap();
    assert!(file.ends_with(&format!("{job_id}-portrait.mp4")), "{files}");
    assert_eq!(files["files"][0]["format"], "portrait", "{files}");
    assert_eq!(files["files"].as_array().unwrap().len(), 1, "{files}");
    let probe = media::ffprobe(&home.0.join(file));
    assert_eq!(media::stream(&probe, "video")["height"], 1920);
    assert_eq!(media::stream(&probe, "video")["avg_frame_rate"], "60/1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_exits_non_zero_with_its_error() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let home = Home::new();
    let login = montage(&app, &home, &user, &["login", "--email", &user.email]).await;
    assert!(login.status.success(), "{}", stderr(&login));
    std::fs::write(home.0.join("broken.mp4"), media::undecodable_mp4()).unwrap();

    let render = montage(
        &app,
        &home,
        &user,
        &["render", "broken.mp4", "--duration", "10"],
    )
    .await;
    assert_eq!(render.status.code(), Some(1), "{}", stderr(&render));
    assert!(stderr(&render).contains("FAILED"), "{}", stderr(&render));
    assert!(
        stderr(&render).contains("INVALID_MEDIA"),
        "{}",
        stderr(&render)
    );

    let args = ["--json", "render", "broken.mp4", "--duration", "10"];
    let scripted = montage(&app, &home, &user, &args).await;
    assert_eq!(scripted.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&scripted.stdout).expect("JSON on stdout");
    assert_eq!(error["error"]["code"], "INVALID_MEDIA", "{error}");

    let refused = montage(&app, &home, &user, &["render", "missing.mp4"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    // A file that is not a video is refused before anything is sent.
    std::fs::write(home.0.join("notes.txt"), b"not a video ".repeat(100_000)).unwrap();
    let jobs_before = app.user_json("/api/v2/jobs", &user).await["data"]["total"].clone();
    let text = montage(&app, &home, &user, &["render", "broken.mp4", "notes.txt"]).await;
    assert_eq!(text.status.code(), Some(3), "{}", stderr(&text));
    assert!(
        stderr(&text).contains("nothing was uploaded"),
        "{}",
        stderr(&text)
    );
    let args = ["render", "broken.mp4", "--music-file", "notes.txt"];
    let not_music = montage(&app, &home, &user, &args).await;
    assert_eq!(not_music.status.code(), Some(3), "{}", stderr(&not_music));
    assert!(
        stderr(&not_music).contains("not an audio file"),
        "{}",
        stderr(&not_music)
    );
    let args = [
        "render",
        "broken.mp4",
        "--music",
        "calm_acoustic_1",
        "--music-file",
        "x.mp3",
    ];
    let both = montage(&app, &home, &user, &args).await;
    assert_eq!(both.status.code(), Some(2), "one track: {}", stderr(&both));
    let jobs_after = app.user_json("/api/v2/jobs", &user).await["data"]["total"].clone();
    assert_eq!(jobs_before, jobs_after);
    let bad = montage(
        &app,
        &home,
        &user,
        &["render", "broken.mp4", "--style", "vaporwave"],
    )
    .await;
    // Options are the contract's enums: a wrong one is a usage error, and nothing is sent.
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("cinematic, gaming, energetic, chill"),
        "{}",
        stderr(&bad)
    );
    let jobs_now = app.user_json("/api/v2/jobs", &user).await["data"]["total"].clone();
    assert_eq!(jobs_before, jobs_now);
}
