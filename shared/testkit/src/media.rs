//! Test clips made with the ffmpeg CLI from lavfi sources, and ffprobe checks of outputs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::clip_dir;

/// The encoding of most generated clips: H.264 (fast) and AAC, ending with the shorter input.
const H264_AAC: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-shortest",
];

/// Generates a clip with `args` between the inputs and the output name, once: the cache
/// key includes the arguments, so a changed recipe makes a new clip. Parallel test
/// processes may race: each writes a private file and renames it in place.
pub fn clip(name: &str, args: &[&str]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut recipe = std::collections::hash_map::DefaultHasher::new();
    args.hash(&mut recipe);
    let path = clip_dir().join(format!("{:016x}-{name}", recipe.finish()));
    if path.exists() {
        return path;
    }
    let partial = clip_dir().join(format!(
        "{}.{}.partial.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple(),
        name
    ));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&partial)
        .status()
        .expect("ffmpeg CLI is installed (scripts/test installs it)");
    assert!(status.success(), "ffmpeg could not make {name}");
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// 1080p60 H.264 with 44.1 kHz AAC.
pub fn h264_1080p60() -> PathBuf {
    clip(
        "h264-1080p60.mp4",
        &[
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=60",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100",
                "-t",
                "4",
            ][..],
            H264_AAC,
        ]
        .concat(),
    )
}

/// Where [`facecam_clip`]'s camera sits, in fractions of the frame: the top-right corner.
pub const FACECAM: [f64; 4] = [0.75, 0.05, 0.2, 0.3];

/// 1080p gameplay (moving grey noise on green) with a streamer's camera drawn as a solid
/// magenta box at [`FACECAM`], and a tone: the marker shows where the camera ends up.
pub fn facecam_clip() -> PathBuf {
    let [x, y, w, h] = FACECAM.map(|f| f * 1000.0);
    let graph = format!(
        "color=c=0x2a8040:size=1920x1080:rate=30,noise=alls=8:allf=t,\
         drawbox=x=iw*{x}/1000:y=ih*{y}/1000:w=iw*{w}/1000:h=ih*{h}/1000:color=0xff00ff:t=fill"
    );
    clip(
        "facecam.mp4",
        &[
            &[
                "-f",
                "lavfi",
                "-i",
                &graph,
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=330:sample_rate=48000",
                "-t",
                "12",
            ][..],
            H264_AAC,
        ]
        .concat(),
    )
}

/// 720p VP9 with Opus in WebM.
pub fn vp9_720p_webm() -> PathBuf {
    clip(
        "vp9-720p.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:sample_rate=48000",
            "-t",
            "4",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-shortest",
        ],
    )
}

/// Portrait 720x1280 at 25 fps, no audio track at all.
pub fn portrait_no_audio() -> PathBuf {
    clip(
        "portrait-silent.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "mandelbrot=size=720x1280:rate=25",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// A small landscape clip, 640x360 at 30 fps with mono 22 kHz audio, stored with a
/// display matrix that turns it a quarter turn for display (players show it portrait).
/// This ffmpeg writes the matrix only when remuxing, hence two steps.
pub fn rotated_small() -> PathBuf {
    let source = clip(
        "rotated-small-source.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:sample_rate=22050",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "1",
            "-shortest",
        ],
    );
    let source = source.to_str().unwrap();
    clip(
        "rotated-small.mov",
        &["-i", source, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
    )
}

/// 480p HEVC with 32 kHz audio.
pub fn hevc_480p() -> PathBuf {
    clip(
        "hevc-480p.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=854x480:rate=24",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=32000",
            "-t",
            "3",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

/// Runs ffprobe and returns its JSON (streams and format).
pub fn ffprobe(path: &Path) -> Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {probe}"))
}

pub fn seconds(value: &Value) -> f64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a duration: {value}"))
}

/// 20 s of a still grey picture with near-silence, except 12 s to 14 s: a moving test
/// pattern and a loud tone.
pub fn quiet_clip_with_burst() -> PathBuf {
    clip(
        "burst.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=640x360:r=30:d=20",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=640x360:r=30:d=20",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc='if(between(t,12,14),0.8,0.002)*sin(2*PI*440*t)':s=48000:d=20",
            "-filter_complex",
            "[0][1]overlay=enable='between(t,12,14)'[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    )
}

/// Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's ebur128 filter measures them.
pub fn loudness(path: &Path) -> (f64, f64) {
    let output = Command::new("ffmpeg")
        .args(["-nostats", "-hide_banner", "-i"])
        .arg(path)
        .args(["-filter_complex", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    let log = String::from_utf8_lossy(&output.stderr);
    let summary = &log[log.rfind("Summary:").expect("ebur128 prints a summary")..];
    let value = |label: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label} in {summary}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (value("I:"), value("Peak:"))
}

/// A stand-in for gameplay with a HUD: random noise that changes every pixel every frame,
/// under a static white score bar across the top 44 rows and a static 120x90 minimap in
/// the bottom-right corner. 640x360, 4 s.
pub fn game_with_hud() -> PathBuf {
    clip(
        "game-with-hud.mp4",
        &["-f", "lavfi", "-i", "nullsrc=s=640x360:r=30:d=4,geq=lum='random(1)*255':cb=128:cr=128,\
          drawbox=x=0:y=0:w=iw:h=44:color=white:t=fill,drawbox=x=520:y=270:w=120:h=90:color=0x3050A0:t=fill",
          "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    )
}

/// 30 s of busy 1080p30 with sound: long enough that analysis and render each take seconds.
pub fn long_1080p() -> PathBuf {
    clip(
        "long-1080p.mp4",
        &[
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=300",
                "-t",
                "30",
            ][..],
            H264_AAC,
        ]
        .concat(),
    )
}

/// 12 s of moving 320x240 with sound, a keyframe every second and B-frames (decoded out of
/// order): a clip that analysis cuts into stretches.
pub fn keyframe_every_second() -> PathBuf {
    clip(
        "keyframe-every-second.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc='0.5*sin(2*PI*(200+40*t)*t)':s=48000",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

/// A tiny Matroska clip whose header claims it runs for thirty thousand years.
pub fn lying_duration_mkv() -> Vec<u8> {
    let honest = clip(
        "tiny.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x256:rate=10",
            "-t",
            "0.3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let mut bytes = std::fs::read(honest).unwrap();
    // Segment Info's Duration element: ID 0x4489, an 8-byte float, in milliseconds.
    let at = bytes
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .expect("the muxer writes an 8-byte Duration");
    bytes[at + 3..at + 11].copy_from_slice(&1e15f64.to_be_bytes());
    assert!(bytes.len() < 16 * 1024);
    bytes
}

/// Two frames of 4800x4800: honest, but past the default resolution limit.
pub fn huge_resolution() -> PathBuf {
    clip(
        "huge-4800.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:size=4800x4800:rate=1",
            "-frames:v",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    )
}

/// Starts like an MP4 (an upload's sniffing accepts it) but holds no decodable media.
pub fn undecodable_mp4() -> Vec<u8> {
    let mut corrupt = vec![0, 0, 0, 0x18];
    corrupt.extend_from_slice(b"ftypisom\0\0\0\0isomavc1");
    corrupt.extend(std::iter::repeat_n(0xAB_u8, 64 * 1024));
    corrupt
}

/// The first half of an MP4 whose index (moov) comes last: the index never arrives.
pub fn truncated_mp4() -> Vec<u8> {
    let whole = clip(
        "index-last.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let bytes = std::fs::read(whole).unwrap();
    bytes[..bytes.len() / 2].to_vec()
}

/// A DASH manifest that names a file on the worker's disk.
pub const DASH_MANIFEST: &str = r#"<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S"><Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="1"><BaseURL>file:///etc/passwd</BaseURL></Representation></AdaptationSet></Period></MPD>"#;

/// An ISO box: big-endian size, type, body.
pub fn iso_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// The sound of a click on every beat from `first` seconds: a 2 kHz burst decaying over
/// a few milliseconds (an ffmpeg `aevalsrc` expression), `tone` (peak) of a 1 kHz tone
/// under it.
fn click_expression(bpm: f64, first: f64, tone: f64) -> String {
    let period = 60.0 / bpm;
    format!(
        "aevalsrc='{tone}*sin(2*PI*1000*t)+0.8*gte(t,{first})*sin(2*PI*2000*t)*exp(-mod(t-{first}+{period},{period})/0.0015)':s=48000:d=40"
    )
}

/// 40 s of clicks at `bpm`, the first at `first` seconds, in Ogg Opus (as the catalogue's
/// tracks are).
pub fn click_track(bpm: f64, first: f64) -> PathBuf {
    encoded_audio(
        &format!("clicks-{bpm}.opus"),
        &click_expression(bpm, first, 0.0),
        "libopus",
    )
}

/// 40 s of a steady 1 kHz tone with clicks at 120 BPM on it: music whose level is easy to
/// follow (the tone) and that has a beat.
pub fn tone_with_clicks() -> PathBuf {
    encoded_audio(
        "tone-with-clicks.opus",
        &click_expression(120.0, 0.3, 0.2),
        "libopus",
    )
}

/// The same in MP3, as a player's own track might be.
pub fn tone_with_clicks_mp3() -> PathBuf {
    encoded_audio(
        "tone-with-clicks.mp3",
        &click_expression(120.0, 0.3, 0.2),
        "libmp3lame",
    )
}

fn encoded_audio(name: &str, expression: &str, encoder: &str) -> PathBuf {
    clip(
        name,
        &[
            "-f", "lavfi", "-i", expression, "-c:a", encoder, "-b:a", "128k",
        ],
    )
}

/// `seconds` of 384x216 at `fps` without sound that shows its own frame number: twelve
/// columns, each black or white for one bit (the lowest on the left), over chroma (`cb`,
/// `cr`) that names the clip. [`frame_numbers`] reads them back from a render.
pub fn frame_counter(cb: u8, cr: u8, (fps, seconds): (u32, u32)) -> PathBuf {
    clip(
        &format!("counter-{cb}-{cr}-{fps}x{seconds}.mp4"),
        &[
            "-f",
            "lavfi",
            "-i",
            &format!(
                "nullsrc=s=384x216:r={fps}:d={seconds},geq=lum='if(bitand(floor(N/pow(2,floor(X/32))),1),235,16)':cb={cb}:cr={cr}"
            ),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// What each frame of a render of [`frame_counter`] clips shows: the source frame's number
/// and its clip's chroma (rounded to tens, as grading moves it a little).
pub fn frame_numbers(path: &Path) -> Vec<(u32, [i32; 2])> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-an",
            "-vf",
            "scale=12:1:flags=area,format=yuv444p",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("ffmpeg is installed");
    assert!(output.status.success(), "ffmpeg could not decode {path:?}");
    output
        .stdout
        .chunks_exact(36)
        .map(|frame| {
            let number = (0..12)
                .filter(|&bit| frame[bit] > 128)
                .map(|bit| 1 << bit)
                .sum();
            let chroma = |plane: &[u8]| {
                let mean = plane.iter().map(|v| i32::from(*v)).sum::<i32>() / 12;
                (mean + 5) / 10 * 10
            };
            (number, [chroma(&frame[12..24]), chroma(&frame[24..36])])
        })
        .collect()
}

/// The MD5 of each decoded frame of a file's video, in order (ffmpeg's `framemd5`).
pub fn frame_md5s(path: &Path) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-an", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(output.status.success(), "ffmpeg could not decode {path:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit(',').next().map(|md5| md5.trim().to_owned()))
        .collect()
}

/// The sound of a file, mono at 48 kHz, as ffmpeg decodes it.
pub fn mono_samples(path: &Path) -> Vec<f32> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(output.status.success(), "ffmpeg could not decode {path:?}");
    output
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
