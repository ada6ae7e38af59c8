//! Music under a montage: which stretch of the track plays (the most energetic one that fills
//! the montage exactly and ends on a beat, looping a short track bar by bar), where its beats
//! fall in the montage, and how far the music ducks under the game's highlights.

use crate::montage::{frames_in, plan_montage, segments_of, ClipScores, FrameRate, Plan, Segment};
use crate::styles::StylePreset;

/// Beats per bar: loops and phrase-length segments count in these.
const BEATS_PER_BAR: usize = 4;
/// Highlight scores from which the game rises over the music, and at which it is all the way up.
const DUCK_FROM_SCORE: f64 = 0.75;
const DUCK_FULL_SCORE: f64 = 1.75;

/// What beat tracking found in the track.
#[derive(Debug, Clone, Default)]
pub struct TrackBeats {
    pub duration_seconds: f64,
    /// Beat instants in the track, rising.
    pub beats: Vec<f64>,
    /// The track's level from each beat to the next (any unit that grows with loudness).
    pub levels: Vec<f64>,
}

/// The stretch of the track under the montage: output second `t` plays track second
/// [`MusicCue::track_position`]`(t)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicCue {
    /// Where the montage starts in the looped track.
    pub start: f64,
    /// Past `loop_end`, the track plays on from `loop_start` (whole bars between them).
    pub loop_start: f64,
    pub loop_end: f64,
    /// The beats under the montage, in output seconds; the last is its end.
    pub beats: Vec<f64>,
}

impl MusicCue {
    /// Picks the loudest stretch of `target` seconds that ends on a beat. `None` when the
    /// track has too few beats to follow.
    pub fn choose(track: &TrackBeats, target: f64) -> Option<Self> {
        let beats = &track.beats;
        if beats.len() < 2 * BEATS_PER_BAR || target <= 0.0 {
            return None;
        }
        let bars = (beats.len() - 1) / BEATS_PER_BAR;
        let (loop_start, loop_end) = (beats[0], beats[bars * BEATS_PER_BAR]);
        let timeline = Timeline::new(track, loop_start, loop_end, target);
        let (start_index, end_index) = timeline.loudest_span(target)?;
        let start = timeline.beats[end_index] - target;
        let beats = timeline.beats[start_index..=end_index]
            .iter()
            .map(|b| b - start)
            .collect();
        Some(Self {
            start,
            loop_start,
            loop_end,
            beats,
        })
    }

    /// The track from its start, looping whole, for a track without a beat to follow.
    pub fn from_start(duration_seconds: f64, target: f64) -> Self {
        Self {
            start: 0.0,
            loop_start: 0.0,
            loop_end: duration_seconds,
            beats: vec![target],
        }
    }

    /// The track second that plays at output second `t`.
    pub fn track_position(&self, t: f64) -> f64 {
        let at = self.start + t;
        if at < self.loop_end {
            return at;
        }
        let length = self.loop_end - self.loop_start;
        self.loop_start + (at - self.loop_end).rem_euclid(length)
    }
}

/// The track's beats laid end to end, looping, long enough for the montage.
struct Timeline {
    beats: Vec<f64>,
    levels: Vec<f64>,
    /// Whether spans may run past the track's end (it is shorter than the montage).
    loops: bool,
    duration: f64,
}

impl Timeline {
    fn new(track: &TrackBeats, loop_start: f64, loop_end: f64, target: f64) -> Self {
        let loops = track.duration_seconds < target + 1.0;
        let last = track
            .beats
            .iter()
            .rposition(|b| *b <= loop_end)
            .unwrap_or(0);
        let first = track
            .beats
            .iter()
            .position(|b| *b >= loop_start)
            .unwrap_or(0);
        let mut beats: Vec<f64> = track.beats[..=last].to_vec();
        let level = |i: usize| track.levels.get(i).copied().unwrap_or(0.0);
        let mut levels: Vec<f64> = (0..=last).map(level).collect();
        let length = loop_end - loop_start;
        let mut lap = 1.0;
        while loops && *beats.last().expect("a beat") < target + loop_end {
            for i in first + 1..=last {
                beats.push(track.beats[i] + lap * length);
                levels.push(level(i));
            }
            lap += 1.0;
        }
        Self {
            beats,
            levels,
            loops,
            duration: track.duration_seconds,
        }
    }

    /// The first and last beat of the loudest stretch of `target` seconds that ends on a
    /// beat and starts in the track.
    fn loudest_span(&self, target: f64) -> Option<(usize, usize)> {
        let mut best: Option<(f64, usize, usize)> = None;
        let mut first = 0;
        for end in 0..self.beats.len() {
            let start = self.beats[end] - target;
            if start < 0.0 || (!self.loops && self.beats[end] > self.duration) {
                continue;
            }
            while self.beats[first] < start - 1e-9 {
                first += 1;
            }
            let level = self.levels[first..end].iter().sum::<f64>() / (end - first).max(1) as f64;
            if best.is_none_or(|(l, ..)| level > l + 1e-9) {
                best = Some((level, first, end));
            }
        }
        best.map(|(_, first, end)| (first, end))
    }
}

/// Cuts on the beat: how many beats a segment lasts in a style whose segments run
/// `lo..=hi` seconds at `beat` seconds a beat; a whole bar or half one when it fits.
pub fn beats_per_segment(beat: f64, [lo, hi]: [f64; 2]) -> usize {
    let fits = |k: usize| (lo - 1e-9..=hi + 1e-9).contains(&(k as f64 * beat));
    let ideal = (lo + hi) / 2.0;
    let nearest = |ks: &mut dyn Iterator<Item = usize>| {
        ks.min_by(|a, b| {
            let off = |k: &usize| (*k as f64 * beat - ideal).abs();
            off(a).total_cmp(&off(b))
        })
    };
    let candidates = 1..=64usize;
    nearest(
        &mut candidates
            .clone()
            .filter(|k| fits(*k) && k % BEATS_PER_BAR == 0),
    )
    .or_else(|| nearest(&mut candidates.clone().filter(|k| fits(*k) && k % 2 == 0)))
    .or_else(|| nearest(&mut candidates.clone().filter(|k| fits(*k))))
    .or_else(|| nearest(&mut candidates.clone()))
    .unwrap_or(1)
}

/// Where the joins of a montage of `total` frames fall (output frames, rising, each a
/// cut's first frame or a dissolve's centre): every `per_segment`-th beat, counted back
/// from the last so the montage ends on a phrase. A first segment under half a phrase is
/// merged into the next.
pub fn joins_on_beats(beats: &[f64], per_segment: usize, total: u64, rate: FrameRate) -> Vec<u64> {
    let frames: Vec<u64> = beats
        .iter()
        .map(|b| (b * f64::from(rate.fps())).round() as u64)
        .collect();
    let Some(last) = frames.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut joins: Vec<u64> = (1..)
        .map_while(|n| last.checked_sub(n * per_segment))
        .map(|i| frames[i])
        .filter(|f| *f > 0 && *f < total)
        .collect();
    joins.reverse();
    let phrase = frames[last].saturating_sub(frames[last.saturating_sub(per_segment)]);
    if joins.len() > 1 && joins[0] < phrase / 2 {
        joins.remove(0);
    }
    joins
}

/// Frame counts of the segments whose joins fall at `joins` in a montage of `total` frames,
/// consecutive segments overlapping by `overlap` (centred on the join).
pub fn segment_frames(joins: &[u64], overlap: u64, total: u64) -> Vec<u32> {
    let starts: Vec<u64> = joins.iter().map(|c| c - overlap / 2).collect();
    let mut frames = Vec::with_capacity(joins.len() + 1);
    let mut from = 0;
    for start in &starts {
        frames.push((start + overlap - from) as u32);
        from = *start;
    }
    frames.push((total - from) as u32);
    frames
}

/// Like [`plan_montage`], with every join (a cut, or a dissolve's centre) on one of
/// `beats` (output seconds, rising; the last is the montage's end): a whole number of
/// beats per segment, as near the style's pace as the tempo allows.
pub fn plan_on_beats(
    clips: &[ClipScores],
    target_seconds: u32,
    preset: &StylePreset,
    beats: &[f64],
    rate: FrameRate,
) -> Plan {
    let fps = f64::from(rate.fps());
    let total = u64::from(target_seconds) * u64::from(rate.fps());
    let available: Vec<u64> = clips
        .iter()
        .map(|c| frames_in(c.duration_seconds, rate))
        .collect();
    let mut gaps: Vec<f64> = beats.windows(2).map(|p| p[1] - p[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let Some(&beat) = gaps.get(gaps.len() / 2) else {
        return plan_montage(clips, target_seconds, preset, rate);
    };
    if available.iter().sum::<u64>() <= total {
        return plan_montage(clips, target_seconds, preset, rate);
    }
    let overlap = (preset.transition.overlap_seconds() * fps).round() as u64;
    let per_segment = beats_per_segment(beat, preset.segment_seconds);
    let joins = joins_on_beats(beats, per_segment, total, rate);
    let frames = segment_frames(&joins, overlap, total);
    let longest = frames.iter().skip(1).copied().max().unwrap_or(frames[0]);
    match segments_of(clips, &available, &frames, u64::from(longest), rate) {
        Some(segments) => Plan {
            segments,
            overlap_frames: overlap as u32,
            rate,
        },
        None => plan_montage(clips, target_seconds, preset, rate),
    }
}

/// How far the game rises over the music at each frame of the plan (0 none, 1 all the
/// way), from the highlight score of the moment each frame shows.
pub fn duck_weights(plan: &Plan, clips: &[ClipScores], window_seconds: f64) -> Vec<f32> {
    let mut weights = Vec::with_capacity(plan.output_frames() as usize);
    let mut add = |segment: &Segment, slots: std::ops::Range<u32>| {
        let scores = &clips[segment.clip].scores;
        for slot in slots {
            let at = segment.start_seconds + f64::from(slot) / f64::from(plan.fps());
            let score = scores
                .get((at / window_seconds) as usize)
                .copied()
                .unwrap_or(0.0);
            let weight = (score - DUCK_FROM_SCORE) / (DUCK_FULL_SCORE - DUCK_FROM_SCORE);
            weights.push(weight.clamp(0.0, 1.0) as f32);
        }
    };
    // Each segment but the last gives up its tail to the dissolve; the frames there
    // count as the next segment's.
    let last = plan.segments.len().saturating_sub(1);
    for (index, segment) in plan.segments.iter().enumerate() {
        let skip = if index > 0 { plan.overlap_frames } else { 0 };
        let keep = if index < last {
            segment.frames.saturating_sub(plan.overlap_frames)
        } else {
            segment.frames
        };
        add(segment, skip.min(keep)..keep.max(skip));
    }
    weights.truncate(plan.output_frames() as usize);
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::montage::tests::flat;
    use crate::styles::preset;
    use domain::jobs::Style;

    fn steady(bpm: f64, seconds: f64) -> TrackBeats {
        let beats: Vec<f64> = (0..)
            .map(|k| 0.25 + f64::from(k) * 60.0 / bpm)
            .take_while(|b| *b < seconds)
            .collect();
        TrackBeats {
            duration_seconds: seconds,
            levels: vec![1.0; beats.len()],
            beats,
        }
    }

    #[test]
    fn the_stretch_fills_the_target_and_ends_on_a_beat() {
        for (bpm, seconds, target) in [
            (120.0, 180.0, 30.0),
            (150.0, 31.7, 60.0),
            (90.0, 30.0, 120.0),
        ] {
            let cue = MusicCue::choose(&steady(bpm, seconds), target).unwrap();
            assert!((cue.beats.last().unwrap() - target).abs() < 1e-9, "{bpm}");
            let gap = 60.0 / bpm;
            for pair in cue.beats.windows(2) {
                assert!((pair[1] - pair[0] - gap).abs() < 1e-9, "{bpm}: {pair:?}");
            }
            // The music plays on across every loop without a jump in its beat.
            for beat in &cue.beats {
                let at = cue.track_position(*beat);
                assert!(at >= 0.0 && at < seconds, "{at}");
                let in_track = (at - 0.25) / gap;
                assert!((in_track - in_track.round()).abs() < 1e-6, "{bpm}: {at}");
            }
        }
    }

    #[test]
    fn the_loudest_stretch_is_chosen() {
        let mut track = steady(120.0, 120.0);
        for level in &mut track.levels[140..180] {
            *level = 5.0; // 70 s to 90 s
        }
        let cue = MusicCue::choose(&track, 20.0).unwrap();
        assert!(cue.start >= 69.0 && cue.start + 20.0 <= 91.0, "{cue:?}");
    }

    #[test]
    fn segments_last_whole_bars_when_the_style_allows() {
        assert_eq!(beats_per_segment(0.5, [2.0, 3.0]), 4); // 120 BPM, gaming
        assert_eq!(beats_per_segment(0.4, [1.0, 2.0]), 4); // 150 BPM, energetic
        assert_eq!(beats_per_segment(0.4, [3.0, 5.0]), 8); // 150 BPM, cinematic
        assert_eq!(beats_per_segment(60.0 / 90.0, [2.0, 3.0]), 4);
        assert_eq!(beats_per_segment(2.0, [1.0, 2.0]), 1);
    }

    #[test]
    fn on_music_every_join_lands_on_a_beat_frame() {
        // Plenty of material, and two thirds of it used (the windows must pack tightly).
        let cases = [(flat(&[90.0, 70.0, 120.0]), 30), (flat(&[60.0; 3]), 120)];
        let rates = [FrameRate::Thirty, FrameRate::Sixty];
        for (((clips, target), bpm), rate) in cases
            .iter()
            .flat_map(|case| [90.0, 120.0, 128.0, 150.0].map(|bpm| (case, bpm)))
            .flat_map(|case| rates.map(|rate| (case, rate)))
        {
            let fps = f64::from(rate.fps());
            for style in Style::ALL {
                let beats: Vec<f64> = (0..)
                    .map(|k| f64::from(*target) - f64::from(k) * 60.0 / bpm)
                    .take_while(|b| *b >= 0.0)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let plan = plan_on_beats(clips, *target, preset(*style), &beats, rate);
                assert_eq!(
                    plan.output_frames(),
                    u64::from(target * rate.fps()),
                    "{style} {bpm} {rate:?}"
                );
                let beat_frames: Vec<u64> =
                    beats.iter().map(|b| (b * fps).round() as u64).collect();
                let mut start = 0u64;
                for segment in &plan.segments[..plan.segments.len() - 1] {
                    start += u64::from(segment.frames - plan.overlap_frames);
                    let join = start + u64::from(plan.overlap_frames / 2);
                    assert!(beat_frames.contains(&join), "{style} {bpm}: {join}");
                }
                assert!(plan.segments.len() > 2, "{style} {bpm}: {plan:?}");
            }
        }
    }

    #[test]
    fn joins_fall_on_beats_and_segments_fill_the_total() {
        let beats: Vec<f64> = (0..=60).map(|k| 0.1 + f64::from(k) * 0.5).collect();
        let total = (beats[60] * 30.0).round() as u64;
        let joins = joins_on_beats(&beats, 4, total, FrameRate::Thirty);
        let on_beat: Vec<u64> = beats.iter().map(|b| (b * 30.0).round() as u64).collect();
        assert!(joins.iter().all(|j| on_beat.contains(j)), "{joins:?}");
        for overlap in [0, 15, 30] {
            let frames = segment_frames(&joins, overlap, total);
            let sum: u64 = frames.iter().map(|f| u64::from(*f)).sum();
            assert_eq!(sum, total + overlap * joins.len() as u64);
        }
    }
}
