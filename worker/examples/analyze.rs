//! Times highlight analysis of clips as a job analyses them (side by side, long ones cut
//! at keyframes), against the reference of one pass per clip with a frame-threaded decoder:
//! `cargo run --release --example analyze -- CLIP...`. Used by scripts/bench.

use std::time::Instant;

use settings::ClipLimits;
use worker::media::{
    analyze::{analyze, analyze_all, ClipToAnalyse},
    init,
    probe::probe,
};

fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    assert!(!paths.is_empty(), "usage: analyze CLIP...");
    init();
    let limits = ClipLimits::default();
    let infos: Vec<_> = paths
        .iter()
        .map(|path| probe(path, &limits).expect("a readable clip"))
        .collect();
    let clips = paths
        .iter()
        .zip(&infos)
        .map(|(path, info)| ClipToAnalyse {
            path,
            duration_seconds: info.duration_seconds,
            cost: info.decode_cost(),
            still: None,
        })
        .collect();
    // Both timings read the clips from memory, not the first one from disk.
    for path in &paths {
        std::fs::read(path).expect("a readable clip");
    }
    let started = Instant::now();
    let measured = analyze_all(clips, &limits).expect("threads start");
    let seconds = started.elapsed().as_secs_f64();
    let duration: f64 = infos.iter().map(|i| i.duration_seconds).sum();
    for ((path, info), result) in paths.iter().zip(&infos).zip(measured) {
        let windows = result.expect("analysis succeeds").motion.len();
        println!(
            "{}: {:.1} s of {}x{} video, {windows} windows",
            path.display(),
            info.duration_seconds,
            info.width,
            info.height
        );
    }
    let started = Instant::now();
    for path in &paths {
        analyze(path, &limits, None).expect("analysis succeeds");
    }
    let one_pass = started.elapsed().as_secs_f64();
    println!(
        "analysis: {duration:.1} s of video in {seconds:.2} s = {:.1}x real time; \
         one pass per clip: {one_pass:.2} s = {:.1}x; ratio {:.2}",
        duration / seconds,
        duration / one_pass,
        seconds / one_pass
    );
}
