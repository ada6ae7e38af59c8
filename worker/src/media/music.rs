//! The montage's music: the track decoded to 48 kHz stereo and its beats tracked, then the
//! stretch the plan chose laid under the game's sound, which rises over it at highlights.

use std::path::Path;

use ffmpeg_next::{codec, media, util::frame};
use music::beats::{analysis_signal, track_beats, ANALYSIS_RATE};
use planning::montage::{
    plan_montage, samples_per_frame, ClipScores, FrameRate, Plan, ANALYSIS_WINDOW_SECONDS,
    SAMPLE_RATE,
};
use planning::music::{duck_weights, plan_on_beats, MusicCue, TrackBeats};
use planning::styles::StylePreset;

use super::{audio::resampler, loudness::integrated_loudness, open::open_audio, MediaError};

/// Longest track a montage takes: ten minutes.
const MAX_SECONDS: usize = 600;
/// Levels the two sounds are brought to before mixing (LUFS); the mix is normalised after.
const MUSIC_LUFS: f64 = -16.0;
const GAME_LUFS: f64 = -19.0;
/// How far the music dips at a full highlight, and how far under it the game sits otherwise.
const MUSIC_DUCK_DB: f32 = 10.0;
const GAME_UNDER_DB: f32 = 7.0;
/// The ducking starts this far ahead of a highlight, rises over `ATTACK` and falls back over
/// `RELEASE` (time constants, seconds).
const LOOK_AHEAD_SECONDS: f64 = 0.1;
const ATTACK_SECONDS: f32 = 0.05;
const RELEASE_SECONDS: f32 = 0.4;
/// Fades: in at the start (the stretch may start between beats), across a loop's seam, and
/// out over at most this long before the final beat.
const FADE_IN_SAMPLES: usize = (SAMPLE_RATE / 50) as usize;
const SEAM_SAMPLES: usize = (SAMPLE_RATE / 200) as usize;
const MAX_FADE_OUT_SECONDS: f64 = 2.0;

/// A decoded track.
pub struct Track {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
}

/// What the music adds to a render: the track, the stretch the plan put under the montage,
/// and how far the game rises over it at each output frame (at `rate`).
pub struct MusicBed {
    pub track: Track,
    pub cue: MusicCue,
    pub duck: Vec<f32>,
    pub rate: FrameRate,
}

/// Decodes the music and tracks its beats, picks the stretch under the montage and plans
/// the montage's joins on its beats (on a track with no beat to follow, the plan keeps the
/// style's pace and the music plays from its start).
pub fn plan_to_music(
    path: &Path,
    scores: &[ClipScores],
    target: u32,
    style: &StylePreset,
    rate: FrameRate,
) -> Result<(Plan, MusicBed), MediaError> {
    let track = decode(path).map_err(|err| match err {
        MediaError::Invalid(why) => MediaError::Invalid(format!("The music {why}")),
        other => other,
    })?;
    let beats = beats(&track);
    let (plan, cue) = match MusicCue::choose(&beats, f64::from(target)) {
        Some(cue) => (plan_on_beats(scores, target, style, &cue.beats, rate), cue),
        None => (
            plan_montage(scores, target, style, rate),
            MusicCue::from_start(beats.duration_seconds, f64::from(target)),
        ),
    };
    let duck = duck_weights(&plan, scores, ANALYSIS_WINDOW_SECONDS);
    let bed = MusicBed {
        track,
        cue,
        duck,
        rate,
    };
    Ok((plan, bed))
}

/// Decodes the sound of `path`, resampled to 48 kHz stereo.
pub fn decode(path: &Path) -> Result<Track, MediaError> {
    let mut input = open_audio(path)?;
    let stream = input
        .streams()
        .best(media::Type::Audio)
        .ok_or_else(|| MediaError::Invalid("has no sound".into()))?;
    let (index, time_base) = (stream.index(), stream.time_base());
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())?
        .decoder()
        .audio()?;
    let spec = format!("aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo");
    let mut graph = resampler(&decoder, time_base, &spec)?;
    let mut track = Track {
        left: Vec::new(),
        right: Vec::new(),
    };
    let mut decoded = frame::Audio::empty();
    let pull = |graph: &mut ffmpeg_next::filter::Graph, track: &mut Track| {
        let mut out = frame::Audio::empty();
        while graph
            .get("out")
            .expect("sink")
            .sink()
            .frame(&mut out)
            .is_ok()
        {
            track
                .left
                .extend_from_slice(&out.plane::<f32>(0)[..out.samples()]);
            track
                .right
                .extend_from_slice(&out.plane::<f32>(1)[..out.samples()]);
        }
        if track.left.len() > MAX_SECONDS * SAMPLE_RATE as usize {
            return Err(MediaError::Invalid(format!(
                "is longer than {} minutes",
                MAX_SECONDS / 60
            )));
        }
        Ok(())
    };
    for (stream, packet) in input.packets() {
        if stream.index() != index || decoder.send_packet(&packet).is_err() {
            continue;
        }
        while decoder.receive_frame(&mut decoded).is_ok() {
            graph.get("in").expect("source").source().add(&decoded)?;
            pull(&mut graph, &mut track)?;
        }
    }
    graph.get("in").expect("source").source().flush()?;
    pull(&mut graph, &mut track)?;
    if track.left.len() < SAMPLE_RATE as usize {
        return Err(MediaError::Invalid(
            "holds less than a second of sound".into(),
        ));
    }
    Ok(track)
}

/// The track's beats, and its level from each beat to the next.
pub fn beats(track: &Track) -> TrackBeats {
    let signal = analysis_signal(&track.left, &track.right);
    let found = track_beats(&signal);
    let rate = f64::from(ANALYSIS_RATE);
    let edges: Vec<usize> = found
        .beats
        .iter()
        .map(|b| ((b * rate) as usize).min(signal.len()))
        .chain([signal.len()])
        .collect();
    let levels = edges
        .windows(2)
        .map(|pair| {
            let part = &signal[pair[0]..pair[1].max(pair[0])];
            let power: f64 = part.iter().map(|s| f64::from(*s).powi(2)).sum();
            (power / part.len().max(1) as f64).sqrt()
        })
        .collect();
    TrackBeats {
        duration_seconds: track.left.len() as f64 / f64::from(SAMPLE_RATE),
        beats: found.beats,
        levels,
    }
}

/// Lays the bed's stretch under the game sound, each brought to its level, the music
/// dipping and the game rising where the plan shows highlights.
pub fn mix_under(bed: &MusicBed, left: &mut [f32], right: &mut [f32]) {
    let (music_left, music_right) = lay(&bed.track, &bed.cue, left.len());
    let music_gain = level_gain(&music_left, &music_right, MUSIC_LUFS);
    let game_gain = level_gain(left, right, GAME_LUFS);
    let weights = smoothed_weights(&bed.duck, left.len(), bed.rate);
    for (i, weight) in weights.into_iter().enumerate() {
        let music = music_gain * db(-MUSIC_DUCK_DB * weight);
        let game = game_gain * db(-GAME_UNDER_DB * (1.0 - weight));
        left[i] = left[i] * game + music_left[i] * music;
        right[i] = right[i] * game + music_right[i] * music;
    }
}

fn db(value: f32) -> f32 {
    10f32.powf(value / 20.0)
}

/// The gain that brings a sound to `lufs`; silence is left alone.
fn level_gain(left: &[f32], right: &[f32], lufs: f64) -> f32 {
    integrated_loudness(left, right).map_or(1.0, |measured| db((lufs - measured) as f32))
}

/// `len` samples of the track as the cue lays it out, with its fades.
fn lay(track: &Track, cue: &MusicCue, len: usize) -> (Vec<f32>, Vec<f32>) {
    let rate = f64::from(SAMPLE_RATE);
    let last = track.left.len() - 1;
    let source: Vec<usize> = (0..len)
        .map(|n| ((cue.track_position(n as f64 / rate) * rate).round() as usize).min(last))
        .collect();
    let mut out = [vec![0.0f32; len], vec![0.0f32; len]];
    for (channel, samples) in out.iter_mut().zip([&track.left, &track.right]) {
        for (slot, &from) in channel.iter_mut().zip(&source) {
            *slot = samples[from];
        }
        smooth_seams(channel, &source, samples);
        fade(channel, cue);
    }
    let [left, right] = out;
    (left, right)
}

/// Where the stretch loops back, cross-fades the sound that ran on into the loop's start,
/// so the jump does not click.
fn smooth_seams(channel: &mut [f32], source: &[usize], samples: &[f32]) {
    for n in 1..source.len() {
        if source[n] == source[n - 1] + 1 || source[n] == source[n - 1] {
            continue;
        }
        for i in 0..SEAM_SAMPLES.min(source.len() - n) {
            let weight = (i + 1) as f32 / (SEAM_SAMPLES + 1) as f32;
            let ran_on = samples.get(source[n - 1] + 1 + i).copied().unwrap_or(0.0);
            channel[n + i] = ran_on * (1.0 - weight) + channel[n + i] * weight;
        }
    }
}

/// Fades in over [`FADE_IN_SAMPLES`] and out over the last two beats (at most
/// [`MAX_FADE_OUT_SECONDS`]), reaching silence on the final beat.
fn fade(channel: &mut [f32], cue: &MusicCue) {
    let len = channel.len();
    for (i, sample) in channel.iter_mut().take(FADE_IN_SAMPLES).enumerate() {
        *sample *= i as f32 / FADE_IN_SAMPLES as f32;
    }
    let beat = match cue.beats.as_slice() {
        [.., before, last] => last - before,
        _ => MAX_FADE_OUT_SECONDS,
    };
    let fade_out = ((2.0 * beat).min(MAX_FADE_OUT_SECONDS) * f64::from(SAMPLE_RATE)) as usize;
    let fade_out = fade_out.min(len);
    for (i, sample) in channel[len - fade_out..].iter_mut().enumerate() {
        let left = (fade_out - i) as f32 / fade_out as f32;
        *sample *= left * left;
    }
}

/// Per-sample ducking weights from per-frame ones: looking a little ahead, rising fast
/// and falling slowly.
fn smoothed_weights(frames: &[f32], len: usize, rate: FrameRate) -> Vec<f32> {
    let ahead = (LOOK_AHEAD_SECONDS * f64::from(rate.fps())).ceil() as usize;
    let per_frame = samples_per_frame(rate) as usize;
    let at = |frame: usize| frames.get(frame).copied().unwrap_or(0.0);
    let rate = SAMPLE_RATE as f32;
    let (attack, release) = (
        (-1.0 / (ATTACK_SECONDS * rate)).exp(),
        (-1.0 / (RELEASE_SECONDS * rate)).exp(),
    );
    let mut level = 0.0f32;
    (0..len)
        .map(|n| {
            let frame = n / per_frame;
            let target = at(frame).max(at(frame + ahead));
            let keep = if target > level { attack } else { release };
            level = target + (level - target) * keep;
            level
        })
        .collect()
}
