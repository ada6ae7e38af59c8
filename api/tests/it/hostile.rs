//! Hostile clips against the real worker binary: each fails only its own job, once, with a
//! code that says why, and the worker goes on to finish a normal job. Stops reach the media
//! process (checked in the process table) in every stage that lasts long enough to catch.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    control::{clip, create, create_small, job, post},
    helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, TestUser},
    processes::{spawn_worker, Process},
};
use testkit::media::{self, iso_box, DASH_MANIFEST};

/// Pids of processes running the worker binary in media mode for which `keep` holds, given
/// their `/proc` directory.
fn media_mode_processes(keep: impl Fn(&Path) -> Option<bool>) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let pid: u32 = dir.file_name()?.to_str()?.parse().ok()?;
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let media = cmdline.split(|&b| b == 0).nth(1) == Some(b"media".as_slice());
            (media && keep(&dir)?).then_some(pid)
        })
        .collect()
}

/// Pids of media processes working on `job_id`. The fork server's children share its
/// command line; a job's own process is the one working in the job's scratch directory.
fn media_processes(job_id: &str) -> Vec<u32> {
    media_mode_processes(|dir| {
        let cwd = std::fs::read_link(dir.join("cwd")).ok()?;
        Some(cwd.to_string_lossy().contains(job_id))
    })
}

/// Pids of `parent`'s children running in media mode: its fork server.
fn fork_servers(parent: u32) -> Vec<u32> {
    media_mode_processes(|dir| {
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // "pid (comm) state ppid ...": the comm may hold spaces, the rest does not.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(ppid == parent)
    })
}

fn assert_alive(worker: &mut Process) {
    assert!(worker.is_running(), "the worker process must survive");
}

async fn failed_once(app: &TestApp, user: &TestUser, job_id: &str, code: &str) -> Value {
    let ended = app
        .wait_for_job_end(user, job_id, Duration::from_secs(60))
        .await;
    assert_eq!(ended["status"], "FAILED", "{ended}");
    assert_eq!(ended["error"]["code"], code, "{ended}");
    assert_eq!(
        ended["attempts"], 1,
        "a permanent failure is not retried: {ended}"
    );
    ended
}

async fn succeeds(app: &TestApp, user: &TestUser) {
    let job_id = create_small(app, user).await;
    let ended = app
        .wait_for_job_end(user, &job_id, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clips_fail_their_own_job_once_and_the_worker_carries_on() {
    let app = spawn_app().await;
    let mut worker = spawn_worker(&app.settings);
    let user = app.user().await;
    let mut manifest_behind_ftyp = iso_box(b"ftyp", b"isom\0\0\x02\0isomiso2");
    manifest_behind_ftyp.extend_from_slice(DASH_MANIFEST.as_bytes());
    let corpus: [(&str, Vec<u8>, &str); 4] = [
        ("lying.mkv", media::lying_duration_mkv(), "limit for a clip"),
        (
            "huge.mp4",
            std::fs::read(media::huge_resolution()).unwrap(),
            "4800x4800",
        ),
        ("manifest.mp4", manifest_behind_ftyp, "manifest.mp4"),
        ("truncated.mp4", media::truncated_mp4(), "truncated.mp4"),
    ];
    for (name, bytes, said) in corpus {
        let job_id = create(&app, &user, &[(name, bytes)], &[("target_duration", "10")]).await;
        let ended = failed_once(&app, &user, &job_id, "INVALID_MEDIA").await;
        let message = ended["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{name}: {message}");
        assert_alive(&mut worker);
    }
    succeeds(&app, &user).await;
    assert_alive(&mut worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_and_playlists_are_refused_at_upload() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut dash_behind_free = iso_box(b"free", b"");
    dash_behind_free.extend_from_slice(DASH_MANIFEST.as_bytes());
    let refused: [(&str, Vec<u8>); 4] = [
        ("dash.mov", dash_behind_free),
        ("dash.mp4", DASH_MANIFEST.as_bytes().to_vec()),
        (
            "hls.mp4",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n".to_vec(),
        ),
        (
            "concat.mp4",
            b"ffconcat version 1.0\nfile '/etc/passwd'\n".to_vec(),
        ),
    ];
    for (name, bytes) in refused {
        let response = app.create_job(&user, &[(name, bytes)], &[]).await;
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    }
    let jobs = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(jobs["data"]["total"], 0, "nothing stored: {jobs}");
}

/// Waits until the job reaches `stage` with its media process running; returns the pids.
async fn running_in(app: &TestApp, user: &TestUser, job_id: &str, stage: &str) -> Vec<u32> {
    eventually(Duration::from_secs(60), stage, || async {
        let view = job(app, user, job_id).await;
        let pids = media_processes(job_id);
        (view["stage"] == stage && !pids.is_empty()).then_some(pids)
    })
    .await
}

/// The media process is gone within 2 s of `since`.
async fn gone_within_two_seconds(job_id: &str, since: Instant) {
    eventually(
        Duration::from_secs(5),
        "the media process to go",
        || async { media_processes(job_id).is_empty().then_some(()) },
    )
    .await;
    let took = since.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "media process lived {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_media_process_in_analysis_and_in_render() {
    let app = spawn_app().await;
    let mut worker = spawn_worker(&app.settings);
    let user = app.user().await;
    let long = clip(media::long_1080p());
    for stage in ["analyzing", "rendering"] {
        let job_id = create(
            &app,
            &user,
            std::slice::from_ref(&long),
            &[("target_duration", "20")],
        )
        .await;
        running_in(&app, &user, &job_id, stage).await;
        let asked = Instant::now();
        let response = post(&app, &user, &format!("/api/v2/jobs/{job_id}/cancel"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        gone_within_two_seconds(&job_id, asked).await;
        let ended = app
            .wait_for_job_end(&user, &job_id, Duration::from_secs(10))
            .await;
        assert_eq!(ended["status"], "CANCELLED", "{stage}: {ended}");
        assert_alive(&mut worker);
    }
    succeeds(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_kills_the_media_process() {
    // Long enough for the media process to start on a loaded machine (the limit counts from
    // the claim, download included), far too short for this job: 20 s of both formats at
    // 60 fps, four times the frames of one 30 fps output (which alone took 9.8 s once).
    let app = spawn_app_with(&[("JOB_TIMEOUT_SECS", "10")]).await;
    let mut worker = spawn_worker(&app.settings);
    let user = app.user().await;
    let long = clip(media::long_1080p());
    let heavy = [
        ("target_duration", "20"),
        ("formats", "landscape,portrait"),
        ("fps", "60"),
    ];
    let job_id = create(&app, &user, &[long], &heavy).await;
    eventually(Duration::from_secs(60), "the media process", || async {
        (!media_processes(&job_id).is_empty()).then_some(())
    })
    .await;
    let ended = failed_once(&app, &user, &job_id, "RENDER_TIMEOUT").await;
    assert!(ended["error"]["message"].as_str().unwrap().contains("10 s"));
    gone_within_two_seconds(&job_id, Instant::now()).await;
    assert_alive(&mut worker);
    // The worker takes its next job at once.
    let next = create_small(&app, &user).await;
    eventually(Duration::from_secs(10), "the next job to start", || async {
        (!media_processes(&next).is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_process_over_its_cpu_limit_fails_only_its_job() {
    let app = spawn_app_with(&[("MEDIA_CPU_SECS", "1")]).await;
    let mut worker = spawn_worker(&app.settings);
    let user = app.user().await;
    let long = clip(media::long_1080p());
    let job_id = create(&app, &user, &[long], &[("target_duration", "20")]).await;
    let ended = failed_once(&app, &user, &job_id, "MEDIA_CRASHED").await;
    let message = ended["error"]["message"].as_str().unwrap();
    assert!(message.contains("CPU-time limit"), "{message}");
    assert!(media_processes(&job_id).is_empty());
    assert_alive(&mut worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fork_server_is_replaced_and_no_job_is_lost() {
    let app = spawn_app().await;
    let mut worker = spawn_worker(&app.settings);
    let user = app.user().await;
    succeeds(&app, &user).await;
    let servers = fork_servers(worker.pid());
    assert_eq!(servers.len(), 1, "one fork server per worker: {servers:?}");
    // SAFETY: kill(2) on a pid read from /proc.
    unsafe { libc::kill(servers[0] as i32, libc::SIGKILL) };
    eventually(Duration::from_secs(5), "the fork server to die", || async {
        (!fork_servers(worker.pid()).contains(&servers[0])).then_some(())
    })
    .await;
    succeeds(&app, &user).await;
    let replaced = fork_servers(worker.pid());
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, servers);
    assert_alive(&mut worker);
}
