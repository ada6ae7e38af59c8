//! What a montage is made of: which part of which clip fills which output frames.
//! Pure arithmetic, so it is tested here and the worker only has to follow the plan.

/// Output frame rate; every output is constant frame rate.
pub const OUTPUT_FPS: u32 = 30;
/// Output audio sample rate. 48 000 / 30 = 1 600 samples per frame, so audio and video
/// cut at exactly the same instants.
pub const SAMPLE_RATE: u32 = 48_000;
pub const SAMPLES_PER_FRAME: u32 = SAMPLE_RATE / OUTPUT_FPS;

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
    pub fn duration_seconds(&self) -> f64 {
        f64::from(self.frames) / f64::from(OUTPUT_FPS)
    }
}

/// Shares `target_seconds` of output between clips in upload order: each clip gets an equal
/// share, and what a short clip cannot fill passes to the longer ones. When all the clips
/// together are shorter than the target, all of their material is used. Each segment is
/// taken from the middle of its clip.
pub fn plan_segments(clip_durations: &[f64], target_seconds: u32) -> Vec<Segment> {
    let available: Vec<u64> = clip_durations
        .iter()
        .map(|d| {
            if d.is_finite() && *d > 0.0 {
                (d * f64::from(OUTPUT_FPS)).floor() as u64
            } else {
                0
            }
        })
        .collect();
    let wanted = u64::from(target_seconds) * u64::from(OUTPUT_FPS);
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
            let length = frames as f64 / f64::from(OUTPUT_FPS);
            Segment {
                clip,
                start_seconds: ((clip_durations[clip] - length) / 2.0).max(0.0),
                frames: frames as u32,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total_frames(plan: &[Segment]) -> u32 {
        plan.iter().map(|s| s.frames).sum()
    }

    #[test]
    fn fills_the_target_exactly_from_clips_in_order() {
        let plan = plan_segments(&[20.0, 20.0, 20.0], 30);
        assert_eq!(total_frames(&plan), 30 * OUTPUT_FPS);
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
        let plan = plan_segments(&[2.0, 40.0, 3.5], 20);
        assert_eq!(total_frames(&plan), 600);
        assert_eq!(plan[0].frames, 60);
        assert_eq!(plan[2].frames, 105);
        assert_eq!(plan[1].frames, 435);
        assert_eq!(plan[0].start_seconds, 0.0);
    }

    #[test]
    fn uses_all_material_when_there_is_less_than_the_target() {
        let plan = plan_segments(&[3.0, 4.0], 60);
        assert_eq!(total_frames(&plan), 210);
        assert!(plan.iter().all(|s| s.start_seconds == 0.0));
    }

    #[test]
    fn rounding_never_loses_or_adds_a_frame() {
        for target in 10..=60 {
            let plan = plan_segments(&[7.3, 11.1, 5.55, 30.0, 0.9, 13.37, 2.0], target);
            assert_eq!(total_frames(&plan), target * OUTPUT_FPS, "target {target}");
        }
    }

    #[test]
    fn skips_clips_without_a_whole_frame() {
        let plan = plan_segments(&[0.01, f64::NAN, 12.0], 10);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].clip, 2);
        assert!(plan_segments(&[0.0], 10).is_empty());
    }
}
