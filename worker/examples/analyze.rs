//! Times highlight analysis of one clip: `cargo run --release --example analyze -- CLIP`.
//! Used by scripts/bench.

use std::time::Instant;

use settings::ClipLimits;
use worker::media::{analyze::analyze, init, probe::probe};

fn main() {
    let path = std::env::args().nth(1).expect("usage: analyze CLIP");
    init();
    let info = probe(path.as_ref(), &ClipLimits::default()).expect("a readable clip");
    let started = Instant::now();
    let measured = analyze(path.as_ref(), &ClipLimits::default(), None).expect("analysis succeeds");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "analysis: {:.1} s of {}x{} video in {seconds:.2} s = {:.1}x real time ({} windows)",
        info.duration_seconds,
        info.width,
        info.height,
        info.duration_seconds / seconds,
        measured.motion.len()
    );
}
