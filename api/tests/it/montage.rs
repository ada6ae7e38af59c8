//! The montage logic on real decoded media, through the same library calls the worker makes.

use shared::{
    jobs::{OutputFormat, Style},
    montage::{highlight_scores, plan_montage, ClipScores},
    styles::preset,
};
use worker::media::{
    analyze::analyze,
    probe::probe,
    render::{render, ClipSource, EncoderSettings, OutputTarget},
};

use crate::media;

#[test]
fn a_loud_moving_burst_in_a_quiet_still_clip_makes_the_montage() {
    worker::media::init();
    let burst = media::quiet_clip_with_burst();
    let other = media::portrait_no_audio();
    let paths = [burst, other];
    let infos: Vec<_> = paths.iter().map(|p| probe(p).unwrap()).collect();
    let measured: Vec<_> = paths
        .iter()
        .zip(&infos)
        .map(|(p, i)| analyze(p, i.duration_seconds).unwrap())
        .collect();
    let loud = &measured[0].loudness_db;
    assert!(
        loud[25] > -10.0 && loud[5] < -40.0,
        "burst window is loud, the rest quiet: {loud:?}"
    );
    assert!(
        measured[0].motion[25] > 5.0 * measured[0].motion[5].max(0.1),
        "{:?}",
        measured[0].motion
    );

    let loudness: Vec<Vec<f64>> = measured.iter().map(|m| m.loudness_db.clone()).collect();
    let motion: Vec<Vec<f64>> = measured.iter().map(|m| m.motion.clone()).collect();
    let scores: Vec<ClipScores> = infos
        .iter()
        .zip(highlight_scores(&loudness, &motion))
        .map(|(info, scores)| ClipScores {
            duration_seconds: info.duration_seconds,
            scores,
        })
        .collect();
    for style in Style::ALL {
        let plan = plan_montage(&scores, 10, preset(*style));
        let covers_burst = plan.segments.iter().any(|s| {
            s.clip == 0 && s.start_seconds < 13.5 && s.start_seconds + s.duration_seconds() > 12.5
        });
        assert!(covers_burst, "{style}: {plan:?}");
    }
}

/// Mean absolute horizontal gradient of a band of rows in a gray frame.
fn sharpness(gray: &[u8], width: usize, rows: std::ops::Range<usize>) -> f64 {
    let mut total = 0u64;
    let mut count = 0u64;
    for row in rows {
        let line = &gray[row * width..(row + 1) * width];
        total += line
            .windows(2)
            .map(|w| u64::from(w[0].abs_diff(w[1])))
            .sum::<u64>();
        count += (width - 1) as u64;
    }
    total as f64 / count as f64
}

#[test]
fn portrait_from_landscape_is_sharp_in_the_middle_and_blurred_around_it() {
    worker::media::init();
    let path = media::h264_1080p60();
    let clips = vec![ClipSource {
        info: probe(&path).unwrap(),
        path,
    }];
    let scores = vec![ClipScores {
        duration_seconds: clips[0].info.duration_seconds,
        scores: Vec::new(),
    }];
    let plan = plan_montage(&scores, 10, preset(Style::Gaming));
    let dir = tempfile::tempdir().unwrap();
    let target = OutputTarget {
        format: OutputFormat::Portrait,
        path: dir.path().join("portrait.mp4"),
    };
    let settings = EncoderSettings {
        preset: "ultrafast".into(),
        threads: 0,
    };
    render(
        &clips,
        &plan,
        preset(Style::Gaming),
        &[target],
        &settings,
        &mut |_| {},
    )
    .unwrap();

    let raw = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(dir.path().join("portrait.mp4"))
        .args([
            "-vf",
            "select=eq(n\\,30)",
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(raw.stdout.len(), 1080 * 1920, "one 1080x1920 gray frame");
    // The 16:9 picture scaled to 1080 wide is 608 high, centred: rows 656 to 1264.
    let middle = sharpness(&raw.stdout, 1080, 700..1220);
    let top = sharpness(&raw.stdout, 1080, 50..600);
    let bottom = sharpness(&raw.stdout, 1080, 1320..1870);
    assert!(
        middle > 4.0 * top && middle > 4.0 * bottom,
        "middle {middle}, top {top}, bottom {bottom}"
    );
    let mean_top = raw.stdout[50 * 1080..600 * 1080]
        .iter()
        .map(|&v| f64::from(v))
        .sum::<f64>()
        / (550.0 * 1080.0);
    assert!(
        mean_top > 24.0,
        "the background is a picture, not black bars: mean luma {mean_top}"
    );
}
