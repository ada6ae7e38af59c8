//! The web app in a real headless Chromium (`api/tests/browser/app_flow.py`, Playwright for
//! Python driving Debian's `chromium`; `scripts/test` installs both and exports
//! `BROWSER_PYTHON` and `CHROMIUM`). Screenshots and downloads land in
//! `target/browser-artifacts`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tokio::sync::mpsc;

use crate::helpers::spawn_app_with;
use testkit::media;

fn browser_python() -> String {
    std::env::var("BROWSER_PYTHON").expect(
        "BROWSER_PYTHON names the Python with Playwright: run scripts/test, which installs it",
    )
}

fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_signs_up_uploads_watches_live_plays_and_downloads_in_a_browser() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let scratch = std::env::temp_dir().join(format!("montage-browser-{run}"));
    let mail = scratch.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    // Jobs wait for a confirmed address: the flow has to go through the mailed link.
    let mut app = spawn_app_with(&[
        ("MAIL_DIR", mail.to_str().unwrap()),
        ("UNVERIFIED_JOB_ALLOWANCE", "0"),
    ])
    .await;
    let broken = scratch.join("broken.mp4");
    let mut corrupt = vec![0, 0, 0, 0x18];
    corrupt.extend_from_slice(b"ftypisom\0\0\0\0isomavc1");
    corrupt.extend(std::iter::repeat_n(0xAB_u8, 64 * 1024));
    std::fs::write(&broken, corrupt).unwrap();
    let artifacts = workspace_dir().join("../target/browser-artifacts");

    let mut child = Command::new(browser_python())
        .arg(workspace_dir().join("tests/browser/app_flow.py"))
        .arg(&app.address)
        .arg(&mail)
        .arg(&artifacts)
        .arg(media::portrait_no_audio())
        .arg(media::rotated_small())
        .arg(&broken)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the browser test starts");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, mut said) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut passed = false;
    while let Some(line) = said.recv().await {
        match line.as_str() {
            "start-worker" => {
                app.start_worker().await;
                writeln!(stdin, "go").unwrap();
            }
            "browser flow passed" => passed = true,
            _ => {}
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success() && passed,
        "the browser flow failed: {status}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
