//! Times a track's analysis as a job does it (decode to 48 kHz stereo, then onsets, tempo
//! and beats), best of five, against the reference of the ffmpeg CLI decoding the same file:
//! `cargo run --release --example beats -- TRACK`. Used by scripts/bench.

use std::time::{Duration, Instant};

use worker::media::{init, music};

fn best_of_five(mut run: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .expect("five runs")
}

fn main() {
    let path: std::path::PathBuf = std::env::args().nth(1).expect("usage: beats TRACK").into();
    init();
    let track = music::decode(&path).expect("a readable track");
    let seconds = track.left.len() as f64 / 48_000.0;
    let decoding = best_of_five(|| drop(music::decode(&path).expect("a readable track")));
    let mut found = None;
    let tracking = best_of_five(|| found = Some(music::beats(&track)));
    let cli = best_of_five(|| {
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-threads", "1", "-i"])
            .arg(&path)
            .args(["-ar", "48000", "-ac", "2", "-f", "null", "-"])
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success());
    });
    let found = found.expect("beats tracked");
    let ours = decoding + tracking;
    println!(
        "track {seconds:.0} s, {} beats: decode {:.3} s + beats {:.3} s = {:.3} s; ffmpeg CLI decode {:.3} s; ratio {:.2}",
        found.beats.len(),
        decoding.as_secs_f64(),
        tracking.as_secs_f64(),
        ours.as_secs_f64(),
        cli.as_secs_f64(),
        ours.as_secs_f64() / cli.as_secs_f64()
    );
}
