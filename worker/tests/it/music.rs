//! Music under montages, measured on rendered files: cuts on the beat, ducking under the
//! game's loud moments, loudness, and the beat tracker on the shipped catalogue.

use std::path::{Path, PathBuf};

use domain::jobs::{OutputFormat, Style};
use planning::montage::{highlight_scores, ClipScores, FrameRate, Plan};
use planning::styles::preset;
use settings::ClipLimits;
use testkit::media;
use worker::media::{
    analyze::analyze,
    music::{beats, decode, plan_to_music},
    render::{render, EncoderSettings, Montage, OutputTarget, RenderRun},
};

const RATE: f64 = 48_000.0;

/// Plans `target` seconds of `clips` in `style` over `music` and renders it in landscape;
/// returns the plan, the directory (kept alive by the caller) and the file.
fn render_to_music(
    clips: &[PathBuf],
    scores: Option<Vec<ClipScores>>,
    music: &Path,
    target: u32,
    style: Style,
) -> (Plan, tempfile::TempDir, PathBuf) {
    let sources = crate::montage::sources(clips, None);
    let scores = scores.unwrap_or_else(|| {
        sources
            .iter()
            .map(|c| ClipScores {
                duration_seconds: c.info.duration_seconds,
                scores: Vec::new(),
            })
            .collect()
    });
    let (plan, bed) =
        plan_to_music(music, &scores, target, preset(style), FrameRate::Thirty).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    let montage = Montage {
        clips: &sources,
        plan: &plan,
        style: preset(style),
        watermark: None,
        music: Some(&bed),
        title: None,
    };
    let target = OutputTarget {
        format: OutputFormat::Landscape,
        path: path.clone(),
    };
    let run = RenderRun {
        settings: &EncoderSettings {
            preset: "ultrafast".into(),
            threads: 0,
        },
        stop: &std::sync::atomic::AtomicBool::new(false),
        timings: &mut Default::default(),
    };
    render(&montage, &[target], run, &mut |_| {}).unwrap();
    (plan, dir, path)
}

/// Frames (indices) where the picture cuts: to another clip, or to a frame of the same
/// clip that is not the next one.
fn cuts(path: &Path) -> Vec<usize> {
    let shown = media::frame_numbers(path);
    (1..shown.len())
        .filter(|&i| shown[i].1 != shown[i - 1].1 || shown[i].0 != shown[i - 1].0 + 1)
        .collect()
}

/// Instants (seconds) where a click starts: the sound first rises over a third of its peak
/// after at least 150 ms under it.
fn clicks(samples: &[f32]) -> Vec<f64> {
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let quiet_for = (0.15 * RATE) as usize;
    let mut found = Vec::new();
    let mut last_loud: Option<usize> = None;
    for (i, s) in samples.iter().enumerate() {
        if s.abs() > peak / 3.0 {
            if last_loud.is_none_or(|l| i - l > quiet_for) {
                found.push(i as f64 / RATE);
            }
            last_loud = Some(i);
        }
    }
    found
}

#[test]
fn every_cut_lands_within_a_frame_of_a_click() {
    let clips =
        [(90, 160), (160, 90), (128, 128)].map(|(cb, cr)| media::frame_counter(cb, cr, (30, 60)));
    // Scattered moments worth keeping, so that the picks are apart and most joins show;
    // none is a highlight the music would dip under.
    let scores: Vec<ClipScores> = (0..3)
        .map(|clip| ClipScores {
            duration_seconds: 60.0,
            scores: (0..120)
                .map(|w| f64::from((w * 37 + clip * 5) % 11) / 20.0)
                .collect(),
        })
        .collect();
    // 128 BPM runs two minutes: sound and picture must still agree at the end.
    for (bpm, target) in [(90.0, 20), (120.0, 20), (128.0, 120), (150.0, 20)] {
        let music = media::click_track(bpm, 0.37);
        let scores = Some(scores.clone());
        let (plan, _dir, path) = render_to_music(&clips, scores, &music, target, Style::Gaming);
        let (cuts, clicks) = (cuts(&path), clicks(&media::mono_samples(&path)));
        assert_eq!(cuts.len(), visible_joins(&plan), "{bpm}: {cuts:?}");
        assert!(cuts.len() >= 4, "{bpm}: {cuts:?}");
        let frame = 1.0 / f64::from(plan.fps());
        let mut worst = 0.0f64;
        for cut in &cuts {
            let at = *cut as f64 * frame;
            let nearest = clicks
                .iter()
                .map(|c| (c - at).abs())
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest <= frame,
                "{bpm}: the cut at {at:.3} s is {nearest:.4} s off a click"
            );
            worst = worst.max(nearest);
        }
        println!(
            "{bpm} BPM, {target} s: {} cuts, at most {:.1} ms off a click",
            cuts.len(),
            worst * 1000.0
        );
    }
}

/// Joins that show: a segment that carries straight on from the one before is seamless.
fn visible_joins(plan: &Plan) -> usize {
    plan.segments
        .windows(2)
        .filter(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            a.clip != b.clip
                || (a.start_seconds + a.duration_seconds(plan.rate) - b.start_seconds).abs() > 0.01
        })
        .count()
}

/// Level (dB) of `frequency` in each 50 ms window of `samples` (Goertzel).
fn tone_levels(samples: &[f32], frequency: f64) -> Vec<f64> {
    let coefficient = 2.0 * (std::f64::consts::TAU * frequency / RATE).cos();
    samples
        .chunks_exact((0.05 * RATE) as usize)
        .map(|window| {
            let (mut s1, mut s2) = (0.0, 0.0);
            for x in window {
                let s = f64::from(*x) + coefficient * s1 - s2;
                (s2, s1) = (s1, s);
            }
            let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
            10.0 * (power.max(1e-12) / window.len() as f64).log10()
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn the_music_dips_under_a_loud_game_moment_and_the_mix_is_at_minus_14_lufs() {
    worker::media::init();
    let clips = vec![media::quiet_clip_with_burst()];
    let measured = analyze(&clips[0], &ClipLimits::default(), None).unwrap();
    let scores = highlight_scores(&[measured.loudness_db], &[measured.motion]);
    let scores = vec![ClipScores {
        duration_seconds: measured.duration_seconds,
        scores: scores[0].clone(),
    }];
    let music = media::tone_with_clicks();
    let (_, _dir, path) = render_to_music(&clips, Some(scores), &music, 10, Style::Gaming);
    let samples = media::mono_samples(&path);
    let (game, tune) = (tone_levels(&samples, 440.0), tone_levels(&samples, 1000.0));
    let loudest = game.iter().copied().fold(f64::MIN, f64::max);
    // Away from the music's fade-in and its two-beat fade-out.
    let inside = 10..tune.len() - 25;
    let during: Vec<f64> = inside
        .clone()
        .filter(|&w| game[w] > loudest - 3.0)
        .map(|w| tune[w])
        .collect();
    let away: Vec<f64> = inside
        .filter(|&w| game[w] < loudest - 30.0)
        .map(|w| tune[w])
        .collect();
    assert!(during.len() >= 10 && away.len() >= 10, "{game:?}");
    let dip = median(away) - median(during);
    assert!(
        dip >= 6.0,
        "the music dips {dip:.1} dB under the game's loud moment"
    );
    let (lufs, peak) = media::loudness(&path);
    assert!((lufs + 14.0).abs() <= 1.0, "{lufs} LUFS");
    assert!(peak <= -1.0, "{peak} dBTP");
}

#[test]
fn the_catalogue_tracks_keep_the_tempo_they_were_made_at() {
    worker::media::init();
    let dir = std::env::var_os("MUSIC_DIR")
        .expect("MUSIC_DIR names the catalogue (scripts/test sets it)");
    let catalogue = music::Catalogue::load(Some(Path::new(&dir))).unwrap();
    let tagged: Vec<_> = catalogue
        .tracks()
        .iter()
        .filter(|t| t.bpm.is_some())
        .collect();
    assert_eq!(
        tagged.len(),
        catalogue.tracks().len(),
        "every track has its tempo"
    );
    let mut within = Vec::new();
    for track in &tagged {
        let tag = f64::from(track.bpm.unwrap());
        let found = beats(&decode(&track.path).unwrap());
        let tempo = music::beats::tempo_of(&found.beats).unwrap_or(0.0);
        println!("{}: tagged {tag}, found {tempo:.1}", track.id);
        if (tempo - tag).abs() <= 0.02 * tag {
            within.push(track.id.to_string());
        }
    }
    println!(
        "{} of {} within 2 % of their tag",
        within.len(),
        tagged.len()
    );
    assert!(2 * within.len() > tagged.len(), "most tracks: {within:?}");
}
