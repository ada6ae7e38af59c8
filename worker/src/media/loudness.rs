//! Loudness normalisation of the finished montage audio (48 kHz stereo): integrated
//! loudness per ITU-R BS.1770-4 (K-weighting, 400 ms blocks, absolute and relative gates),
//! gain to the target, and a look-ahead limiter on 4x-oversampled (true) peaks.

use std::collections::VecDeque;

/// Integrated loudness the montage is normalised to.
pub const TARGET_LUFS: f64 = -14.0;
/// Ceiling for true peaks. The spec is -1 dBTP; half a dB more leaves room for the small
/// overshoot AAC encoding adds.
pub const CEILING_DBTP: f64 = -1.5;
/// Never amplify more than this: a near-silent montage stays quiet rather than hissing.
const MAX_GAIN_DB: f64 = 30.0;

const BLOCK: usize = 19_200; // 400 ms at 48 kHz
const HOP: usize = 4_800; // 75 % overlap
const LOOKAHEAD: usize = 240; // 5 ms

/// A biquad in direct form I, coefficients for 48 kHz.
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    fn new(b: [f64; 3], a: [f64; 2]) -> Self {
        Self {
            b,
            a,
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn run(&mut self, input: f64) -> f64 {
        let output = self.b[0] * input + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [input, self.x[0]];
        self.y = [output, self.y[0]];
        output
    }
}

/// The K-weighted squared signal of one channel.
fn k_weighted_squares(samples: &[f32]) -> Vec<f64> {
    let mut shelf = Biquad::new(
        [
            1.535_124_859_586_97,
            -2.691_696_189_406_38,
            1.198_392_810_852_85,
        ],
        [-1.690_659_293_182_41, 0.732_480_774_215_85],
    );
    let mut high_pass = Biquad::new(
        [1.0, -2.0, 1.0],
        [-1.990_047_454_833_98, 0.990_072_250_366_21],
    );
    samples
        .iter()
        .map(|&s| high_pass.run(shelf.run(f64::from(s))).powi(2))
        .collect()
}

/// Integrated loudness in LUFS, or `None` for silence or less than one block.
pub fn integrated_loudness(left: &[f32], right: &[f32]) -> Option<f64> {
    let (l, r) = (k_weighted_squares(left), k_weighted_squares(right));
    let prefix = |squares: &[f64]| {
        let mut sums = Vec::with_capacity(squares.len() + 1);
        sums.push(0.0);
        for s in squares {
            sums.push(sums.last().unwrap() + s);
        }
        sums
    };
    let (pl, pr) = (prefix(&l), prefix(&r));
    let powers: Vec<f64> = (0..)
        .map(|i| i * HOP)
        .take_while(|start| start + BLOCK <= l.len())
        .map(|start| {
            ((pl[start + BLOCK] - pl[start]) + (pr[start + BLOCK] - pr[start])) / BLOCK as f64
        })
        .collect();
    let loudness = |power: f64| -0.691 + 10.0 * power.log10();
    let gated: Vec<f64> = powers
        .into_iter()
        .filter(|&p| p > 0.0 && loudness(p) > -70.0)
        .collect();
    if gated.is_empty() {
        return None;
    }
    let relative = loudness(gated.iter().sum::<f64>() / gated.len() as f64) - 10.0;
    let kept: Vec<f64> = gated
        .into_iter()
        .filter(|&p| loudness(p) > relative)
        .collect();
    Some(loudness(kept.iter().sum::<f64>() / kept.len() as f64))
}

/// Peak magnitude around each sample, including 4x-oversampled values up to the next
/// sample (windowed-sinc interpolation), so inter-sample peaks count.
fn true_peak_envelope(channel: &[f32]) -> Vec<f32> {
    const TAPS: isize = 8;
    let kernel: Vec<[f32; 2 * TAPS as usize]> = (1..4)
        .map(|phase| {
            let offset = f64::from(phase) / 4.0;
            let mut taps = [0.0f32; 2 * TAPS as usize];
            for (i, k) in (-TAPS + 1..=TAPS).enumerate() {
                let x = offset - k as f64;
                let sinc = (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x);
                let window = 0.5 + 0.5 * (std::f64::consts::PI * x / TAPS as f64).cos();
                taps[i] = (sinc * window) as f32;
            }
            taps
        })
        .collect();
    let n = channel.len() as isize;
    let at = |i: isize| {
        if (0..n).contains(&i) {
            channel[i as usize]
        } else {
            0.0
        }
    };
    (0..n)
        .map(|i| {
            let mut peak = channel[i as usize].abs();
            for taps in &kernel {
                let value: f32 = (-TAPS + 1..=TAPS)
                    .zip(taps)
                    .map(|(k, t)| at(i + k) * t)
                    .sum();
                peak = peak.max(value.abs());
            }
            peak
        })
        .collect()
}

/// Scales both channels so no true peak exceeds `ceiling` (linear): the gain needed at each
/// peak is held for the look-ahead on either side and eased in and out, so the gain
/// changes smoothly and reaches its floor before the peak arrives.
fn limit(left: &mut [f32], right: &mut [f32], ceiling: f32) {
    let (el, er) = (true_peak_envelope(left), true_peak_envelope(right));
    let needed: Vec<f32> = el
        .iter()
        .zip(&er)
        .map(|(a, b)| (ceiling / a.max(*b).max(1e-9)).min(1.0))
        .collect();
    if needed.iter().all(|&g| g >= 1.0) {
        return;
    }
    // Sliding minimum over ±LOOKAHEAD (monotonic queue), then a centred moving average over
    // ±LOOKAHEAD/2: the average at a peak only sees values no higher than the peak's own.
    let n = needed.len();
    let mut held = vec![1.0f32; n];
    let mut window: VecDeque<usize> = VecDeque::new();
    for i in 0..n + LOOKAHEAD {
        if i < n {
            while window.back().is_some_and(|&j| needed[j] >= needed[i]) {
                window.pop_back();
            }
            window.push_back(i);
        }
        if i >= LOOKAHEAD {
            let centre = i - LOOKAHEAD;
            while window.front().is_some_and(|&j| j + LOOKAHEAD < centre) {
                window.pop_front();
            }
            held[centre] = needed[*window.front().expect("window holds the centre")];
        }
    }
    let half = LOOKAHEAD / 2;
    let mut sums = vec![0.0f64; n + 1];
    for i in 0..n {
        sums[i + 1] = sums[i] + f64::from(held[i]);
    }
    for i in 0..n {
        let (from, to) = (i.saturating_sub(half), (i + half + 1).min(n));
        let gain = ((sums[to] - sums[from]) / (to - from) as f64) as f32;
        left[i] *= gain;
        right[i] *= gain;
    }
}

/// Brings the montage to [`TARGET_LUFS`] with true peaks under [`CEILING_DBTP`]. Silence
/// (or less than 400 ms of audio) is left as it is.
pub fn normalize(left: &mut [f32], right: &mut [f32]) {
    let Some(measured) = integrated_loudness(left, right) else {
        return;
    };
    let original = (left.to_vec(), right.to_vec());
    let ceiling = 10f64.powf(CEILING_DBTP / 20.0) as f32;
    let mut gain_db = (TARGET_LUFS - measured).min(MAX_GAIN_DB);
    // Limiting lowers loudness a little; a second pass makes up for it.
    for _ in 0..3 {
        let gain = 10f64.powf(gain_db / 20.0) as f32;
        for (out, src) in left.iter_mut().zip(&original.0) {
            *out = src * gain;
        }
        for (out, src) in right.iter_mut().zip(&original.1) {
            *out = src * gain;
        }
        limit(left, right, ceiling);
        let Some(now) = integrated_loudness(left, right) else {
            return;
        };
        if (now - TARGET_LUFS).abs() < 0.3 || gain_db >= MAX_GAIN_DB {
            return;
        }
        gain_db = (gain_db + TARGET_LUFS - now).min(MAX_GAIN_DB);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Highest true peak in dBTP.
    fn true_peak_db(left: &[f32], right: &[f32]) -> f64 {
        let peak = true_peak_envelope(left)
            .into_iter()
            .chain(true_peak_envelope(right))
            .fold(0.0f32, f32::max);
        20.0 * f64::from(peak.max(1e-9)).log10()
    }

    fn sine(amplitude: f32, frequency: f32, seconds: f32) -> Vec<f32> {
        (0..(48_000.0 * seconds) as usize)
            .map(|i| {
                amplitude * (2.0 * std::f32::consts::PI * frequency * i as f32 / 48_000.0).sin()
            })
            .collect()
    }

    #[test]
    fn a_stereo_sine_reads_as_its_level() {
        // BS.1770: a 997 Hz stereo sine at A (peak) reads 20*log10(A) LUFS, within a few tenths.
        let tone = sine(0.1, 997.0, 5.0);
        let measured = integrated_loudness(&tone, &tone).unwrap();
        assert!((measured + 20.0).abs() < 0.3, "{measured}");
        assert_eq!(integrated_loudness(&[0.0; 96_000], &[0.0; 96_000]), None);
    }

    #[test]
    fn normalises_quiet_audio_up_and_loud_audio_down_under_the_ceiling() {
        for amplitude in [0.02, 0.3, 0.99] {
            let (mut l, mut r) = (sine(amplitude, 440.0, 6.0), sine(amplitude, 660.0, 6.0));
            // A loud transient that the limiter must catch.
            for s in &mut l[100_000..100_500] {
                *s = s.signum() * 0.99;
            }
            normalize(&mut l, &mut r);
            let loudness = integrated_loudness(&l, &r).unwrap();
            assert!(
                (loudness - TARGET_LUFS).abs() < 1.0,
                "{amplitude}: {loudness}"
            );
            assert!(
                true_peak_db(&l, &r) <= CEILING_DBTP + 0.1,
                "{amplitude}: {}",
                true_peak_db(&l, &r)
            );
        }
    }
}
