//! The montage logic on real decoded media, through the same library calls the worker makes.

use domain::facecam::Facecam;
use domain::jobs::{OutputFormat, Style};
use planning::hud;
use planning::hud::Crop;
use planning::montage::{highlight_scores, plan_montage, ClipScores, FrameRate};
use planning::styles::preset;
use settings::ClipLimits;
use worker::media::{
    analyze::{
        analyze, analyze_all, stretch::stretches, ClipMeasurements, ClipToAnalyse, Still,
        THUMB_HEIGHT, THUMB_WIDTH,
    },
    probe::probe,
    render::{
        render, Caption, ClipSource, EncoderSettings, Montage, OutputTarget, RenderRun, Watermark,
    },
};

use testkit::media;

#[test]
fn a_loud_moving_burst_in_a_quiet_still_clip_makes_the_montage() {
    worker::media::init();
    let burst = media::quiet_clip_with_burst();
    let other = media::portrait_no_audio();
    let paths = [burst, other];
    let measured: Vec<_> = paths
        .iter()
        .map(|p| analyze(p, &ClipLimits::default(), None).unwrap())
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
    let scores: Vec<ClipScores> = measured
        .iter()
        .zip(highlight_scores(&loudness, &motion))
        .map(|(clip, scores)| ClipScores {
            duration_seconds: clip.duration_seconds,
            scores,
        })
        .collect();
    for style in Style::ALL {
        let plan = plan_montage(&scores, 10, preset(*style), FrameRate::Thirty);
        let covers_burst = plan.segments.iter().any(|s| {
            let end = s.start_seconds + s.duration_seconds(plan.rate);
            s.clip == 0 && s.start_seconds < 13.5 && end > 12.5
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

/// The clips as the renderer takes them, probed, each cropped by `crop`.
pub(crate) fn sources(clips: &[std::path::PathBuf], crop: Option<Crop>) -> Vec<ClipSource> {
    worker::media::init();
    clips
        .iter()
        .map(|path| ClipSource {
            info: probe(path, &ClipLimits::default()).unwrap(),
            path: path.clone(),
            crop,
            facecam: None,
        })
        .collect()
}

/// What a test montage looks like besides its style: none of these by default.
#[derive(Default, Clone, Copy)]
struct Look<'a> {
    crop: Option<Crop>,
    watermark: Option<&'a Watermark>,
    facecam: Option<Facecam>,
    title: Option<&'a Caption>,
    /// 30 fps unless given.
    rate: Option<FrameRate>,
}

/// Renders 10 s of `clips` in `style` into one `format` output; returns the directory
/// (kept alive by the caller) and the file.
fn render_montage(
    clips: &[std::path::PathBuf],
    style: Style,
    format: OutputFormat,
    look: Look<'_>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let Look {
        crop,
        watermark,
        facecam,
        title,
        rate,
    } = look;
    let mut sources = sources(clips, crop);
    for source in &mut sources {
        source.facecam = facecam;
    }
    let scores: Vec<ClipScores> = sources
        .iter()
        .map(|c| ClipScores {
            duration_seconds: c.info.duration_seconds,
            scores: Vec::new(),
        })
        .collect();
    let rate = rate.unwrap_or(FrameRate::Thirty);
    let plan = plan_montage(&scores, 10, preset(style), rate);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    let target = OutputTarget {
        format,
        path: path.clone(),
    };
    let settings = EncoderSettings {
        preset: "ultrafast".into(),
        threads: 0,
    };
    render(
        &Montage {
            clips: &sources,
            plan: &plan,
            style: preset(style),
            watermark,
            music: None,
            title,
        },
        &[target],
        RenderRun {
            settings: &settings,
            stop: &std::sync::atomic::AtomicBool::new(false),
            timings: &mut Default::default(),
        },
        &mut |_| {},
    )
    .unwrap();
    (dir, path)
}

/// Renders 10 s of `clip` as a gaming montage in `format` and returns frame 30 as gray bytes.
fn render_frame(
    crop: Option<Crop>,
    clip: std::path::PathBuf,
    format: OutputFormat,
    watermark: Option<&Watermark>,
) -> Vec<u8> {
    let look = Look {
        crop,
        watermark,
        ..Look::default()
    };
    let (_dir, path) = render_montage(&[clip], Style::Gaming, format, look);
    let raw = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
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
    let (width, height) = format.dimensions();
    assert_eq!(
        raw.stdout.len(),
        (width * height) as usize,
        "one {width}x{height} gray frame"
    );
    raw.stdout
}

/// Scene-change score of every frame, as ffmpeg's scene detection rates it (0 to 1).
fn scene_scores(path: &std::path::Path) -> Vec<f64> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(path)
        .args([
            "-vf",
            "select='gte(scene,0)',metadata=print",
            "-an",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.split("lavfi.scene_score=").nth(1))
        .map(|score| score.trim().parse().unwrap())
        .collect()
}

#[test]
fn an_energetic_montage_cuts_far_more_often_than_a_chill_one() {
    let clips = [
        media::h264_1080p60(),
        media::vp9_720p_webm(),
        media::hevc_480p(),
        media::rotated_small(),
    ];
    let landscape = OutputFormat::Landscape;
    let (_a, energetic) = render_montage(&clips, Style::Energetic, landscape, Look::default());
    let (_b, chill) = render_montage(&clips, Style::Chill, landscape, Look::default());
    let (fast, slow) = (scene_scores(&energetic), scene_scores(&chill));
    let cuts = |scores: &[f64]| scores.iter().filter(|&&s| s > 0.1).count();
    let top = |scores: &[f64]| {
        let mut sorted = scores.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        sorted.truncate(8);
        sorted
    };
    assert!(
        cuts(&fast) >= cuts(&slow) + 3 && cuts(&fast) >= 2 * cuts(&slow).max(1),
        "energetic {} cuts, chill {}; highest scores {:?} and {:?}",
        cuts(&fast),
        cuts(&slow),
        top(&fast),
        top(&slow)
    );
}

#[test]
fn portrait_from_landscape_is_sharp_in_the_middle_and_blurred_around_it() {
    let frame = render_frame(None, media::h264_1080p60(), OutputFormat::Portrait, None);
    // The 16:9 picture scaled to 1080 wide is 608 high, centred: rows 656 to 1264.
    let middle = sharpness(&frame, 1080, 700..1220);
    let top = sharpness(&frame, 1080, 50..600);
    let bottom = sharpness(&frame, 1080, 1320..1870);
    assert!(
        middle > 4.0 * top && middle > 4.0 * bottom,
        "middle {middle}, top {top}, bottom {bottom}"
    );
    let mean_top = frame[50 * 1080..600 * 1080]
        .iter()
        .map(|&v| f64::from(v))
        .sum::<f64>()
        / (550.0 * 1080.0);
    assert!(
        mean_top > 24.0,
        "the background is a picture, not black bars: mean luma {mean_top}"
    );
}

/// Mean absolute difference of two gray frames over a rectangle.
fn difference(
    a: &[u8],
    b: &[u8],
    width: usize,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
) -> f64 {
    let mut total = 0u64;
    for row in rows.clone() {
        for column in columns.clone() {
            total += u64::from(a[row * width + column].abs_diff(b[row * width + column]));
        }
    }
    total as f64 / (rows.len() * columns.len()) as f64
}

#[test]
fn the_watermark_marks_the_bottom_right_corner_only() {
    let mark = Watermark {
        text: "GG Montage".into(),
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf".into(),
    };
    let clip = media::vp9_720p_webm();
    let plain = render_frame(None, clip.clone(), OutputFormat::Landscape, None);
    let marked = render_frame(None, clip, OutputFormat::Landscape, Some(&mark));
    let corner = difference(&plain, &marked, 1920, 1012..1048, 1640..1880);
    let elsewhere = difference(&plain, &marked, 1920, 100..500, 100..900);
    assert!(corner > 8.0, "the mark shows: {corner}");
    assert!(elsewhere < 1.0, "nothing else changes: {elsewhere}");
}

fn mean_luma(frame: &[u8], width: usize, rows: std::ops::Range<usize>) -> f64 {
    let band = &frame[rows.start * width..rows.end * width];
    band.iter().map(|&v| f64::from(v)).sum::<f64>() / band.len() as f64
}

#[test]
fn hud_removal_crops_a_static_overlay_and_keeps_the_moving_picture() {
    worker::media::init();
    let clip = media::game_with_hud();
    let measured = analyze(&clip, &ClipLimits::default(), None).unwrap();
    let crop = hud::detect(
        &measured.change_map,
        THUMB_WIDTH as usize,
        THUMB_HEIGHT as usize,
    )
    .expect("HUD found");
    // The bar is the top 12 % (44 of 360 rows); the minimap is 120x90 in the bottom right.
    assert!((crop.top - 44.0 / 360.0).abs() < 0.02, "{crop:?}");
    assert!(crop.right > 0.15 && crop.bottom > 0.15, "{crop:?}");
    assert!(crop.left < 0.02, "{crop:?}");

    let plain = render_frame(None, clip.clone(), OutputFormat::Landscape, None);
    let cropped = render_frame(Some(crop), clip, OutputFormat::Landscape, None);
    let (bar_before, bar_after) = (
        mean_luma(&plain, 1920, 0..100),
        mean_luma(&cropped, 1920, 0..100),
    );
    assert!(
        bar_before > 200.0,
        "the white bar is there without removal: {bar_before}"
    );
    assert!(bar_after < 170.0, "and gone with it: {bar_after}");
    let middle = mean_luma(&cropped, 1920, 400..700);
    assert!(
        (90.0..170.0).contains(&middle),
        "the moving picture is kept: {middle}"
    );
}

#[test]
fn a_stored_analysis_comes_back_exactly_and_a_thumbnail_stands_upright() {
    worker::media::init();
    let clip = media::rotated_small();
    let dir = tempfile::tempdir().unwrap();
    let thumbnail = dir.path().join("thumbnail.jpg");
    let still = Still {
        at: 1.0,
        rotation: probe(&clip, &ClipLimits::default()).unwrap().rotation,
        path: &thumbnail,
    };
    let measured = analyze(&clip, &ClipLimits::default(), Some(still)).unwrap();

    let stored = measured.stored();
    let back = ClipMeasurements::from_stored(&stored).expect("this version reads back");
    assert_eq!(
        back.change_map, measured.change_map,
        "every float, bit for bit"
    );
    assert_eq!(back.motion, measured.motion);
    assert_eq!(back.loudness_db, measured.loudness_db);
    assert_eq!(back.duration_seconds, measured.duration_seconds);
    let mut older = stored.clone();
    older["version"] = 0.into();
    assert!(
        ClipMeasurements::from_stored(&older).is_none(),
        "another version is measured again"
    );
    let mut damaged = stored;
    damaged["motion"] = serde_json::json!([]);
    assert!(ClipMeasurements::from_stored(&damaged).is_none());

    // 640x360 stored, shown a quarter turn: the thumbnail is portrait, within 320 px.
    let probe = media::ffprobe(&thumbnail);
    let picture = media::stream(&probe, "video");
    assert_eq!(picture["codec_name"], "mjpeg");
    assert_eq!(
        (picture["width"].as_i64(), picture["height"].as_i64()),
        (Some(180), Some(320))
    );
}

#[test]
fn an_analysis_cut_into_stretches_measures_exactly_what_one_pass_does() {
    worker::media::init();
    let clip = media::keyframe_every_second();
    let limits = ClipLimits::default();
    let info = probe(&clip, &limits).unwrap();
    assert!(
        stretches(&clip, info.duration_seconds, 4).len() >= 3,
        "the clip is cut at its keyframes"
    );
    let dir = tempfile::tempdir().unwrap();
    let still = |name: &str| Still {
        at: info.duration_seconds / 3.0,
        rotation: 0,
        path: &*Box::leak(dir.path().join(name).into_boxed_path()),
    };
    let whole = analyze(&clip, &limits, Some(still("whole.jpg"))).unwrap();
    let cut = analyze_all(
        vec![ClipToAnalyse {
            path: &clip,
            duration_seconds: info.duration_seconds,
            cost: info.decode_cost(),
            still: Some(still("cut.jpg")),
        }],
        &limits,
    )
    .unwrap()
    .pop()
    .unwrap()
    .unwrap();

    assert_eq!(cut.duration_seconds, whole.duration_seconds);
    assert_eq!(cut.loudness_db, whole.loudness_db);
    assert_eq!(cut.motion, whole.motion);
    assert_eq!(cut.change_map, whole.change_map);
    // The last window holds the final frame's tail only.
    let full = whole.motion.len() - 1;
    assert!(
        whole.motion[..full].iter().all(|&m| m > 0.5)
            && whole.loudness_db[..full].iter().all(|&l| l > -20.0),
        "every window moves and sounds: {:?} {:?}",
        whole.motion,
        whole.loudness_db
    );
    assert_eq!(
        std::fs::read(dir.path().join("cut.jpg")).unwrap(),
        std::fs::read(dir.path().join("whole.jpg")).unwrap(),
        "the same still"
    );
}

/// Frame `n` of `path` as RGB bytes, with its size.
fn rgb_frame(path: &std::path::Path, n: u32, (width, height): (u32, u32)) -> Vec<u8> {
    let raw = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert_eq!(raw.stdout.len(), (width * height * 3) as usize);
    raw.stdout
}

/// The share of the pixels in `rows` that are the camera's marker colour.
fn magenta_share(rgb: &[u8], width: u32, rows: std::ops::Range<u32>) -> f64 {
    let row_bytes = (width * 3) as usize;
    let band = &rgb[rows.start as usize * row_bytes..rows.end as usize * row_bytes];
    let marker = band
        .chunks_exact(3)
        .filter(|p| p[0] > 170 && p[2] > 170 && p[1] < 100)
        .count();
    marker as f64 / (band.len() / 3) as f64
}

#[test]
fn the_streamers_camera_fills_the_top_third_of_the_portrait_cut_and_nothing_else() {
    let [x, y, w, h] = media::FACECAM;
    let cam = Facecam::new(x, y, w, h).unwrap();
    let clip = [media::facecam_clip()];
    let portrait = OutputFormat::Portrait;
    let look = Look {
        facecam: Some(cam),
        ..Look::default()
    };
    let (_p, split) = render_montage(&clip, Style::Gaming, portrait, look);
    let (width, height) = portrait.dimensions();
    for n in [15, 150] {
        let frame = rgb_frame(&split, n, (width, height));
        let top = magenta_share(&frame, width, 0..height / 3);
        let rest = magenta_share(&frame, width, height / 3..height);
        assert!(
            top > 0.97,
            "frame {n}: the camera fills the top third ({top:.4})"
        );
        assert!(
            rest < 0.0005,
            "frame {n}: and shows nowhere below ({rest:.5})"
        );
    }
    // The landscape cut keeps the whole picture, camera in its corner.
    let landscape = OutputFormat::Landscape;
    let (_l, whole) = render_montage(&clip, Style::Gaming, landscape, look);
    let (width, height) = landscape.dimensions();
    let frame = rgb_frame(&whole, 15, (width, height));
    let share = magenta_share(&frame, width, 0..height);
    assert!(
        (share - w * h).abs() < 0.01,
        "{share:.4} of the frame, as drawn"
    );
}

/// The share of pixels in `rows` that are near white (title text; the test clip has none).
fn white_share(rgb: &[u8], width: u32, rows: std::ops::Range<u32>) -> f64 {
    let row_bytes = (width * 3) as usize;
    let band = &rgb[rows.start as usize * row_bytes..rows.end as usize * row_bytes];
    let white = band
        .chunks_exact(3)
        .filter(|p| p.iter().all(|&v| v > 215))
        .count();
    white as f64 / (band.len() / 3) as f64
}

#[test]
fn the_title_shows_over_the_first_seconds_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("title.txt");
    // Filter syntax in the text stays text: it is read from a file, without expansion.
    let text = "GG: 100% ',[x]";
    std::fs::write(&file, text).unwrap();
    let caption = Caption {
        file,
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf".into(),
        chars: text.chars().count(),
    };
    let clip = [media::facecam_clip()];
    let look = Look {
        title: Some(&caption),
        ..Look::default()
    };
    let landscape = OutputFormat::Landscape;
    let (_t, titled) = render_montage(&clip, Style::Gaming, landscape, look);
    let (width, height) = landscape.dimensions();
    let band = (height / 10)..(height * 3 / 10);
    let shown = white_share(
        &rgb_frame(&titled, 30, (width, height)),
        width,
        band.clone(),
    );
    let gone = white_share(&rgb_frame(&titled, 150, (width, height)), width, band);
    assert!(
        shown > 0.01,
        "the title at 1 s covers {shown:.4} of its band"
    );
    assert!(gone < 0.0005, "and is gone at 5 s ({gone:.5})");
}

#[test]
fn a_60_fps_montage_of_60_fps_clips_repeats_no_frame_and_lasts_exactly_its_length() {
    let clips = [(90, 160), (160, 90)].map(|(cb, cr)| media::frame_counter(cb, cr, (60, 15)));
    for style in [Style::Gaming, Style::Cinematic] {
        let look = Look {
            rate: Some(FrameRate::Sixty),
            ..Look::default()
        };
        let (_dir, path) = render_montage(&clips, style, OutputFormat::Landscape, look);
        let probe = media::ffprobe(&path);
        let video = media::stream(&probe, "video");
        assert_eq!(video["avg_frame_rate"], "60/1", "{style}");
        let md5s = media::frame_md5s(&path);
        assert_eq!(md5s.len(), 600, "{style}: 10 s at 60 fps, to the frame");
        let repeated: Vec<usize> = (1..md5s.len())
            .filter(|&i| md5s[i] == md5s[i - 1])
            .collect();
        assert!(
            repeated.is_empty(),
            "{style}: frames repeated at {repeated:?}"
        );
        // Within a shot, each output frame is the source's next frame: none skipped either.
        let shown = media::frame_numbers(&path);
        let steps = shown.windows(2).filter(|pair| pair[0].1 == pair[1].1);
        let skipped = steps.filter(|pair| pair[1].0 == pair[0].0 + 2).count();
        assert_eq!(skipped, 0, "{style}: a 60 fps source plays frame by frame");
    }
}
