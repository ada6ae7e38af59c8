//! What a montage is made of: which part of which clip fills which output frames.
//! Pure arithmetic, so it is tested here and the worker only has to follow the plan.

pub use domain::jobs::FrameRate;

use crate::styles::StylePreset;

/// Output audio sample rate: a whole number of samples per frame at every [`FrameRate`]
/// (1 600 at 30 fps, 800 at 60), so audio and video cut at exactly the same instants.
pub const SAMPLE_RATE: u32 = 48_000;

/// Audio samples in one frame at `rate`.
pub const fn samples_per_frame(rate: FrameRate) -> u32 {
    SAMPLE_RATE / rate.fps()
}

/// A piece of one input clip, in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Index of the clip in upload order.
    pub clip: usize,
    /// Where the segment starts in the clip, in seconds from its first frame.
    pub start_seconds: f64,
    /// How many output frames it fills.
    pub frames: u32,
}

impl Segment {
    pub fn duration_seconds(&self, rate: FrameRate) -> f64 {
        f64::from(self.frames) / f64::from(rate.fps())
    }
}

/// Shares `target_seconds` of output between clips in upload order: each clip gets an equal
/// share, and what a short clip cannot fill passes to the longer ones. When all the clips
/// together are shorter than the target, all of their material is used. Each segment is
/// taken from the middle of its clip.
pub fn plan_segments(clip_durations: &[f64], target_seconds: u32, rate: FrameRate) -> Vec<Segment> {
    let available: Vec<u64> = clip_durations.iter().map(|&d| frames_in(d, rate)).collect();
    let wanted = u64::from(target_seconds) * u64::from(rate.fps());
    let mut remaining = wanted.min(available.iter().sum());

    let mut shares = vec![0u64; available.len()];
    let mut by_length: Vec<usize> = (0..available.len()).collect();
    by_length.sort_by_key(|&i| (available[i], i));
    let mut clips_left = available.len() as u64;
    for &i in &by_length {
        let share = (remaining / clips_left).min(available[i]);
        shares[i] = share;
        remaining -= share;
        clips_left -= 1;
    }
    // Whole-frame rounding leaves fewer frames than clips; earlier clips take one more each.
    while remaining > 0 {
        for (share, &limit) in shares.iter_mut().zip(&available) {
            if remaining > 0 && *share < limit {
                *share += 1;
                remaining -= 1;
            }
        }
    }

    shares
        .iter()
        .enumerate()
        .filter(|(_, frames)| **frames > 0)
        .map(|(clip, &frames)| {
            let length = frames as f64 / f64::from(rate.fps());
            Segment {
                clip,
                start_seconds: ((clip_durations[clip] - length) / 2.0).max(0.0),
                frames: frames as u32,
            }
        })
        .collect()
}

/// Length of the windows that highlight analysis scores.
pub const ANALYSIS_WINDOW_SECONDS: f64 = 0.5;

/// Output frames in one analysis window at `rate`.
fn window_frames(rate: FrameRate) -> u64 {
    (ANALYSIS_WINDOW_SECONDS * f64::from(rate.fps())) as u64
}

/// What the planner knows of a clip: its length and, if analysed, a score per
/// [`ANALYSIS_WINDOW_SECONDS`] window (higher is more worth keeping).
#[derive(Debug, Clone, Default)]
pub struct ClipScores {
    pub duration_seconds: f64,
    pub scores: Vec<f64>,
}

/// The montage: segments in playing order, how many frames consecutive segments overlap
/// (for dissolves), and the frame rate every count is in.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub segments: Vec<Segment>,
    pub overlap_frames: u32,
    pub rate: FrameRate,
}

impl Plan {
    /// Frames per second.
    pub fn fps(&self) -> u32 {
        self.rate.fps()
    }

    /// Audio samples per frame.
    pub fn samples_per_frame(&self) -> u32 {
        samples_per_frame(self.rate)
    }

    /// Seconds from the montage's start to output frame `frame`.
    pub fn seconds(&self, frames: u64) -> f64 {
        frames as f64 / f64::from(self.fps())
    }

    /// Frames in the finished montage.
    pub fn output_frames(&self) -> u64 {
        self.segments
            .len()
            .checked_sub(1)
            .map_or(0, |last| self.frames_final_through(last))
    }

    /// Frames of the montage that are final once segments `0..=last` are rendered: every
    /// segment but the final one holds its last `overlap_frames` back, to dissolve them
    /// into the next.
    pub fn frames_final_through(&self, last: usize) -> u64 {
        let sum: u64 = self.segments[..=last]
            .iter()
            .map(|s| u64::from(s.frames))
            .sum();
        let holding = if last + 1 < self.segments.len() {
            last + 1
        } else {
            last
        };
        sum - u64::from(self.overlap_frames) * holding as u64
    }
}

pub(crate) fn frames_in(seconds: f64, rate: FrameRate) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * f64::from(rate.fps())).floor() as u64
    } else {
        0
    }
}

/// Combines per-window loudness (dBFS) and motion of every clip of a job into highlight
/// scores: each measure is standardised over all windows of all clips (so neither unit
/// dominates), then the two are added. A measure that never varies counts for nothing.
pub fn highlight_scores(loudness_db: &[Vec<f64>], motion: &[Vec<f64>]) -> Vec<Vec<f64>> {
    fn standardise(values: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let all: Vec<f64> = values.iter().flatten().copied().collect();
        let n = all.len().max(1) as f64;
        let mean = all.iter().sum::<f64>() / n;
        let deviation = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        values
            .iter()
            .map(|clip| {
                clip.iter()
                    .map(|v| {
                        if deviation > 1e-9 {
                            (v - mean) / deviation
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }
    let (loud, busy) = (standardise(loudness_db), standardise(motion));
    loud.iter()
        .zip(&busy)
        .map(|(l, m)| {
            l.iter()
                .zip(m.iter().chain(std::iter::repeat(&0.0)))
                .map(|(a, b)| a + b)
                .collect()
        })
        .collect()
}

/// Picks the best moments to fill exactly `target_seconds`: segments as long as the style
/// asks, the highest-scoring windows first, no two overlapping, spread across clips, then
/// played in the order they happened (clip upload order, then time). Deterministic. With
/// less material than the target, everything is used, joined by cuts.
pub fn plan_montage(
    clips: &[ClipScores],
    target_seconds: u32,
    preset: &StylePreset,
    rate: FrameRate,
) -> Plan {
    let fps = f64::from(rate.fps());
    let available: Vec<u64> = clips
        .iter()
        .map(|c| frames_in(c.duration_seconds, rate))
        .collect();
    let total = u64::from(target_seconds) * u64::from(rate.fps());
    let durations: Vec<f64> = clips.iter().map(|c| c.duration_seconds).collect();
    let everything = || Plan {
        segments: plan_segments(&durations, target_seconds, rate),
        overlap_frames: 0,
        rate,
    };
    if available.iter().sum::<u64>() <= total {
        return everything();
    }
    let [shortest, longest] = preset.segment_seconds;
    let overlap = (preset.transition.overlap_seconds() * fps).round() as u64;
    let ideal = ((shortest + longest) / 2.0 * fps).round() as u64;
    let mut count = ((total.saturating_sub(overlap)) as f64 / (ideal - overlap) as f64)
        .round()
        .max(1.0) as u64;
    while count > 0 {
        let span = total + (count - 1) * overlap;
        let length = span.div_ceil(count);
        let (base, extra) = (span / count, span % count);
        let frames: Vec<u32> = (0..count)
            .map(|i| (base + u64::from(i < extra)) as u32)
            .collect();
        if let Some(segments) = segments_of(clips, &available, &frames, length, rate) {
            return Plan {
                segments,
                overlap_frames: overlap as u32,
                rate,
            };
        }
        count -= 1;
    }
    everything()
}

/// Segments of the given lengths, in playing order, from the best windows of `longest`
/// frames (the first segment may be longer: it grows into the material before its window,
/// or after it); `None` when the clips have no room for that many.
pub(crate) fn segments_of(
    clips: &[ClipScores],
    available: &[u64],
    frames: &[u32],
    longest: u64,
    rate: FrameRate,
) -> Option<Vec<Segment>> {
    // Windows anywhere on the analysis grid find highlights best, but can leave gaps too
    // short to use; windows tiling each clip always fit as many as there are tiles.
    let window = window_frames(rate);
    let picks = pick_windows(clips, available, frames.len(), [longest, window], window);
    let mut picks = picks
        .or_else(|| pick_windows(clips, available, frames.len(), [longest, window], longest))?;
    picks.sort_unstable();
    let (clip, start) = picks[0];
    let extra = u64::from(frames[0]).saturating_sub(longest);
    let grown = start.saturating_sub(extra);
    let end = grown + u64::from(frames[0]);
    let next = picks[1..]
        .iter()
        .find(|(c, _)| *c == clip)
        .map_or(available[clip], |(_, s)| *s);
    if end > next {
        return None;
    }
    picks[0].1 = grown;
    Some(
        picks
            .into_iter()
            .zip(frames)
            .map(|((clip, start), &frames)| Segment {
                clip,
                start_seconds: start as f64 / f64::from(rate.fps()),
                frames,
            })
            .collect(),
    )
}

/// Chooses `count` non-overlapping windows of `length` frames starting every `step`
/// frames (and at each clip's last start), best first, scored on analysis windows of
/// `window` frames; `None` when the clips have no room for that many.
fn pick_windows(
    clips: &[ClipScores],
    available: &[u64],
    count: usize,
    [length, window]: [u64; 2],
    step: u64,
) -> Option<Vec<(usize, u64)>> {
    let mean_available = available.iter().sum::<u64>() as f64 / available.len() as f64;
    let mut candidates = Vec::new();
    for (clip, (scores, &frames)) in clips.iter().map(|c| &c.scores).zip(available).enumerate() {
        if frames < length {
            continue;
        }
        let last = frames - length;
        let starts = (0..=last)
            .step_by(step as usize)
            .chain((!last.is_multiple_of(step)).then_some(last));
        for start in starts {
            let first_window = (start / window) as usize;
            let end_window = ((start + length).div_ceil(window) as usize).max(first_window + 1);
            let window = scores
                .get(first_window..end_window.min(scores.len()))
                .unwrap_or_default();
            let score = if window.is_empty() {
                0.0
            } else {
                window.iter().sum::<f64>() / window.len() as f64
            };
            let off_centre = (start as f64 + length as f64 / 2.0 - frames as f64 / 2.0).abs();
            candidates.push((clip, start, score, off_centre));
        }
    }
    let mut picked: Vec<(usize, u64)> = Vec::with_capacity(count);
    let mut per_clip = vec![0usize; clips.len()];
    while picked.len() < count {
        let best = candidates
            .iter()
            .filter(|(clip, start, ..)| {
                !picked
                    .iter()
                    .any(|&(c, s)| c == *clip && s < start + length && *start < s + length)
            })
            .map(|&(clip, start, score, off_centre)| {
                // Each pick from a clip costs it a little, more for short clips: spreads the
                // montage across clips when scores are close.
                let spread = 0.5 * per_clip[clip] as f64 * mean_available / available[clip] as f64;
                (score - spread, clip, start, off_centre)
            })
            .max_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then(b.1.cmp(&a.1))
                    .then(b.3.total_cmp(&a.3))
                    .then(b.2.cmp(&a.2))
            })?;
        per_clip[best.1] += 1;
        picked.push((best.1, best.2));
    }
    Some(picked)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn total_frames(plan: &[Segment]) -> u32 {
        plan.iter().map(|s| s.frames).sum()
    }

    #[test]
    fn fills_the_target_exactly_from_clips_in_order() {
        let plan = plan_segments(&[20.0, 20.0, 20.0], 30, FrameRate::Thirty);
        assert_eq!(total_frames(&plan), 30 * 30);
        assert_eq!(
            plan.iter().map(|s| s.clip).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(plan.iter().all(|s| s.frames == 300));
        assert!(
            (plan[0].start_seconds - 5.0).abs() < 1e-9,
            "taken from the middle"
        );
    }

    #[test]
    fn short_clips_pass_their_share_to_long_ones() {
        let plan = plan_segments(&[2.0, 40.0, 3.5], 20, FrameRate::Thirty);
        assert_eq!(total_frames(&plan), 600);
        assert_eq!(plan[0].frames, 60);
        assert_eq!(plan[2].frames, 105);
        assert_eq!(plan[1].frames, 435);
        assert_eq!(plan[0].start_seconds, 0.0);
    }

    #[test]
    fn uses_all_material_when_there_is_less_than_the_target() {
        let plan = plan_segments(&[3.0, 4.0], 60, FrameRate::Thirty);
        assert_eq!(total_frames(&plan), 210);
        assert!(plan.iter().all(|s| s.start_seconds == 0.0));
    }

    #[test]
    fn rounding_never_loses_or_adds_a_frame() {
        for target in 10..=60 {
            let plan = plan_segments(
                &[7.3, 11.1, 5.55, 30.0, 0.9, 13.37, 2.0],
                target,
                FrameRate::Thirty,
            );
            assert_eq!(total_frames(&plan), target * 30, "target {target}");
        }
    }

    #[test]
    fn skips_clips_without_a_whole_frame() {
        let plan = plan_segments(&[0.01, f64::NAN, 12.0], 10, FrameRate::Thirty);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].clip, 2);
        assert!(plan_segments(&[0.0], 10, FrameRate::Thirty).is_empty());
    }

    /// Clips of these lengths with no analysis.
    pub(crate) fn flat(durations: &[f64]) -> Vec<ClipScores> {
        durations
            .iter()
            .map(|&d| ClipScores {
                duration_seconds: d,
                scores: Vec::new(),
            })
            .collect()
    }

    mod planning {
        use super::super::*;
        use super::flat;
        use crate::styles::preset;
        use domain::jobs::Style;

        #[test]
        fn fills_the_target_exactly_in_every_style() {
            for (style, rate) in Style::ALL
                .iter()
                .flat_map(|style| [FrameRate::Thirty, FrameRate::Sixty].map(|rate| (style, rate)))
            {
                for target in [10, 17, 30, 60] {
                    let plan =
                        plan_montage(&flat(&[40.0, 25.0, 33.3]), target, preset(*style), rate);
                    assert_eq!(
                        plan.output_frames(),
                        u64::from(target * rate.fps()),
                        "{style} {target} {rate:?}"
                    );
                }
            }
        }

        #[test]
        fn frames_become_final_as_each_dissolve_is_made() {
            let segment = |clip| Segment {
                clip,
                start_seconds: 0.0,
                frames: 30,
            };
            let plan = Plan {
                segments: vec![segment(0), segment(1), segment(2)],
                overlap_frames: 6,
                rate: FrameRate::Thirty,
            };
            // Each segment but the last holds its tail for the dissolve into the next.
            let through: Vec<u64> = (0..3).map(|i| plan.frames_final_through(i)).collect();
            assert_eq!(through, vec![24, 48, 78]);
            assert_eq!(plan.output_frames(), 78);
        }

        #[test]
        fn pace_follows_the_style() {
            let clips = flat(&[60.0, 60.0]);
            let cuts = |style| {
                plan_montage(&clips, 30, preset(style), FrameRate::Thirty)
                    .segments
                    .len()
            };
            assert!(cuts(Style::Energetic) > cuts(Style::Gaming));
            assert!(cuts(Style::Gaming) > cuts(Style::Cinematic));
            assert!(cuts(Style::Cinematic) > cuts(Style::Chill));
            for style in Style::ALL {
                let [lo, hi] = preset(*style).segment_seconds;
                for segment in plan_montage(&clips, 30, preset(*style), FrameRate::Thirty).segments
                {
                    let seconds = segment.duration_seconds(FrameRate::Thirty);
                    assert!(
                        seconds >= lo - 0.05 && seconds <= hi + 0.05,
                        "{style}: {seconds}"
                    );
                }
            }
        }

        #[test]
        fn picks_the_loudest_moment_and_plays_in_order() {
            let mut quiet = vec![0.0; 80];
            quiet[50..54].fill(5.0); // 25 s to 27 s
            let clips = vec![
                ClipScores {
                    duration_seconds: 40.0,
                    scores: quiet,
                },
                ClipScores {
                    duration_seconds: 40.0,
                    scores: vec![0.0; 80],
                },
            ];
            let plan = plan_montage(&clips, 10, preset(Style::Gaming), FrameRate::Thirty);
            let burst = plan.segments.iter().find(|s| {
                s.clip == 0
                    && s.start_seconds <= 25.0
                    && s.start_seconds + s.duration_seconds(FrameRate::Thirty) >= 27.0
            });
            assert!(burst.is_some(), "{plan:?}");
            let order: Vec<(usize, f64)> = plan
                .segments
                .iter()
                .map(|s| (s.clip, s.start_seconds))
                .collect();
            let mut sorted = order.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            assert_eq!(order, sorted);
            assert_eq!(
                plan,
                plan_montage(&clips, 10, preset(Style::Gaming), FrameRate::Thirty),
                "deterministic"
            );
        }

        #[test]
        fn segments_never_overlap_within_a_clip() {
            let plan = plan_montage(
                &flat(&[12.0, 100.0]),
                60,
                preset(Style::Energetic),
                FrameRate::Thirty,
            );
            for (a, b) in plan.segments.iter().zip(plan.segments.iter().skip(1)) {
                if a.clip == b.clip {
                    assert!(
                        a.start_seconds + a.duration_seconds(FrameRate::Thirty)
                            <= b.start_seconds + 1e-9,
                        "{a:?} {b:?}"
                    );
                }
            }
        }

        #[test]
        fn scores_weigh_loudness_and_motion_alike() {
            let loud = vec![vec![-60.0, -60.0, -10.0, -60.0], vec![-60.0; 4]];
            let busy = vec![vec![1.0, 1.0, 30.0, 1.0], vec![1.0, 1.0, 1.0, 15.0]];
            let scores = highlight_scores(&loud, &busy);
            let best = scores[0][2];
            assert!(scores.iter().flatten().all(|s| *s <= best), "{scores:?}");
            assert!(scores[1][3] > scores[1][0], "motion alone still counts");
            let flat = highlight_scores(&[vec![-20.0; 3]], &[vec![5.0; 3]]);
            assert_eq!(flat, vec![vec![0.0; 3]]);
        }

        #[test]
        fn too_little_material_uses_all_of_it_with_cuts() {
            let plan = plan_montage(
                &flat(&[3.0, 4.0]),
                30,
                preset(Style::Chill),
                FrameRate::Thirty,
            );
            assert_eq!(plan.overlap_frames, 0);
            assert_eq!(plan.output_frames(), 210);
        }
    }
}
