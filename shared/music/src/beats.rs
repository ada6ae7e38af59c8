//! Beat tracking, after Ellis (2007), "Beat Tracking by Dynamic Programming":
//! 1. an onset-strength envelope, the spectral flux of log band energies every 10 ms;
//! 2. the tempo, the autocorrelation peak of that envelope under a prior around 120 BPM;
//! 3. the beats, the chain of strong onsets whose spacing stays closest to that tempo,
//!    found by dynamic programming, each then refined to a fraction of a frame.

use realfft::RealFftPlanner;

/// The rate [`track_beats`] expects: enough for onsets, a quarter of the render's 48 kHz.
pub const ANALYSIS_RATE: u32 = 12_000;
const FFT_SIZE: usize = 512;
/// 10 ms between envelope frames.
const HOP: usize = 120;
const FRAMES_PER_SECOND: f64 = ANALYSIS_RATE as f64 / HOP as f64;
/// Log-spaced bands from 40 Hz to 5.6 kHz.
const BANDS: usize = 32;
const LOWEST_HZ: f64 = 40.0;
const HIGHEST_HZ: f64 = 5_600.0;
/// A band's level never counts below this many dB under the loudest band, so that noise in
/// silence does not read as onsets.
const DYNAMIC_RANGE_DB: f32 = 80.0;
const MIN_BPM: f64 = 60.0;
const MAX_BPM: f64 = 200.0;
/// Where the tempo prior peaks, and its spread in octaves.
const PRIOR_BPM: f64 = 120.0;
const PRIOR_OCTAVES: f64 = 1.0;
/// How strongly the tracker holds the tempo against off-beat onsets (Ellis' alpha).
const TIGHTNESS: f64 = 100.0;
/// The envelope's frame `f` compares the window starting `f` hops in with the one before, so
/// a sharp onset peaks there about half a window and one hop before it happens (measured on
/// click tracks at 90 to 150 BPM: within 3 ms).
const ONSET_LAG_SECONDS: f64 = (FFT_SIZE / 2 + HOP) as f64 / ANALYSIS_RATE as f64;

/// What beat tracking found in a piece of music.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatAnalysis {
    /// The tempo the beats keep, from their spacing.
    pub tempo_bpm: f64,
    /// Beat instants in seconds from the start, rising.
    pub beats: Vec<f64>,
}

/// Averages stereo at 48 kHz into the mono [`ANALYSIS_RATE`] signal [`track_beats`] reads.
pub fn analysis_signal(left: &[f32], right: &[f32]) -> Vec<f32> {
    left.chunks_exact(4)
        .zip(right.chunks_exact(4))
        .map(|(l, r)| (l.iter().sum::<f32>() + r.iter().sum::<f32>()) / 8.0)
        .collect()
}

/// The beats of `signal`, mono at [`ANALYSIS_RATE`]. Too short or too even a signal has
/// no beats.
pub fn track_beats(signal: &[f32]) -> BeatAnalysis {
    let envelope = onset_envelope(signal);
    let Some(period) = tempo_period(&envelope) else {
        return BeatAnalysis {
            tempo_bpm: 0.0,
            beats: Vec::new(),
        };
    };
    let frames = trim_weak(&envelope, dynamic_beats(&envelope, period));
    let beats: Vec<f64> = frames
        .iter()
        .map(|&frame| refined_frame(&envelope, frame) / FRAMES_PER_SECOND + ONSET_LAG_SECONDS)
        .collect();
    BeatAnalysis {
        tempo_bpm: tempo_of(&beats).unwrap_or(60.0 * FRAMES_PER_SECOND / period),
        beats,
    }
}

/// Spectral flux of log band energies, detrended and scaled to unit deviation.
fn onset_envelope(signal: &[f32]) -> Vec<f64> {
    let levels = band_levels(signal);
    let Some(loudest) = levels.iter().flatten().copied().reduce(f32::max) else {
        return Vec::new();
    };
    let floor = loudest - DYNAMIC_RANGE_DB;
    let mut flux = vec![0.0f64; levels.len()];
    for (f, pair) in levels.windows(2).enumerate() {
        let rise: f32 = pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(before, now)| (now.max(floor) - before.max(floor)).max(0.0))
            .sum();
        flux[f + 1] = f64::from(rise) / BANDS as f64;
    }
    detrend(&flux)
}

/// Each frame's band levels in dB.
fn band_levels(signal: &[f32]) -> Vec<[f32; BANDS]> {
    if signal.len() < FFT_SIZE {
        return Vec::new();
    }
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
    let (mut input, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let mut scratch = fft.make_scratch_vec();
    let window: Vec<f32> = (0..FFT_SIZE)
        .map(|i| {
            let phase = std::f32::consts::TAU * i as f32 / FFT_SIZE as f32;
            0.5 - 0.5 * phase.cos()
        })
        .collect();
    let edges = band_edges();
    let frames = (signal.len() - FFT_SIZE) / HOP + 1;
    (0..frames)
        .map(|f| {
            let chunk = &signal[f * HOP..f * HOP + FFT_SIZE];
            for ((slot, sample), weight) in input.iter_mut().zip(chunk).zip(&window) {
                *slot = sample * weight;
            }
            fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan");
            let mut levels = [0.0f32; BANDS];
            for (level, pair) in levels.iter_mut().zip(edges.windows(2)) {
                let energy: f32 = spectrum[pair[0]..pair[1]]
                    .iter()
                    .map(|c| c.norm_sqr())
                    .sum();
                *level = 10.0 * (energy + 1e-12).log10();
            }
            levels
        })
        .collect()
}

/// FFT bin boundaries of the bands: log-spaced, each at least one bin wide.
fn band_edges() -> Vec<usize> {
    let bin_hz = f64::from(ANALYSIS_RATE) / FFT_SIZE as f64;
    let ratio = (HIGHEST_HZ / LOWEST_HZ).powf(1.0 / BANDS as f64);
    let mut edges = vec![(LOWEST_HZ / bin_hz).round() as usize];
    for band in 1..=BANDS {
        let hz = LOWEST_HZ * ratio.powi(band as i32);
        let bin = ((hz / bin_hz).round() as usize).max(edges[band - 1] + 1);
        edges.push(bin.min(FFT_SIZE / 2 + 1));
    }
    edges
}

/// Subtracts a half-second moving average (keeping what rises above it) and scales to unit
/// deviation, so loud and quiet passages weigh alike.
fn detrend(flux: &[f64]) -> Vec<f64> {
    let reach = (FRAMES_PER_SECOND / 4.0) as usize;
    let mut sums = vec![0.0; flux.len() + 1];
    for (i, value) in flux.iter().enumerate() {
        sums[i + 1] = sums[i] + value;
    }
    let above: Vec<f64> = (0..flux.len())
        .map(|i| {
            let (from, to) = (i.saturating_sub(reach), (i + reach + 1).min(flux.len()));
            let mean = (sums[to] - sums[from]) / (to - from) as f64;
            (flux[i] - mean).max(0.0)
        })
        .collect();
    let n = above.len().max(1) as f64;
    let mean = above.iter().sum::<f64>() / n;
    let deviation = (above.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if deviation < 1e-9 {
        return vec![0.0; above.len()];
    }
    above.iter().map(|v| v / deviation).collect()
}

/// The beat period in frames (a fraction of one): the envelope's autocorrelation peak
/// between [`MIN_BPM`] and [`MAX_BPM`], weighted by a log-normal prior around
/// [`PRIOR_BPM`], refined by a parabola through the peak.
fn tempo_period(envelope: &[f64]) -> Option<f64> {
    let shortest = (60.0 * FRAMES_PER_SECOND / MAX_BPM).floor() as usize;
    let longest = (60.0 * FRAMES_PER_SECOND / MIN_BPM).ceil() as usize;
    if envelope.len() < 2 * longest {
        return None;
    }
    let weighted: Vec<f64> = (shortest - 1..=longest + 1)
        .map(|lag| {
            let pairs = envelope.len() - lag;
            let sum: f64 = envelope[..pairs]
                .iter()
                .zip(&envelope[lag..])
                .map(|(a, b)| a * b)
                .sum();
            let bpm = 60.0 * FRAMES_PER_SECOND / lag as f64;
            let octaves = (bpm / PRIOR_BPM).log2() / PRIOR_OCTAVES;
            sum / pairs as f64 * (-0.5 * octaves * octaves).exp()
        })
        .collect();
    let peak = (1..weighted.len() - 1).max_by(|&a, &b| weighted[a].total_cmp(&weighted[b]))?;
    if weighted[peak] <= 0.0 {
        return None;
    }
    let offset = parabola_peak(weighted[peak - 1], weighted[peak], weighted[peak + 1]);
    Some((shortest - 1 + peak) as f64 + offset)
}

/// Where the top of a parabola through three equally spaced values lies, relative to the
/// middle one (-0.5..=0.5).
fn parabola_peak(before: f64, middle: f64, after: f64) -> f64 {
    let curve = before - 2.0 * middle + after;
    if curve >= 0.0 {
        return 0.0;
    }
    (0.5 * (before - after) / curve).clamp(-0.5, 0.5)
}

/// The best chain of beats: each frame's score is its onset strength plus the best score of
/// a previous beat half a period to two periods back, less a penalty that grows with the
/// log of how far that spacing is from the period. The chain ends at the best score in the
/// last period.
fn dynamic_beats(envelope: &[f64], period: f64) -> Vec<usize> {
    let (nearest, furthest) = ((period / 2.0).round() as usize, (2.0 * period) as usize);
    let mut score = vec![0.0f64; envelope.len()];
    let mut previous = vec![None; envelope.len()];
    for t in 0..envelope.len() {
        let best = (nearest..=furthest.min(t))
            .map(|gap| {
                let stretch = (gap as f64 / period).ln();
                (t - gap, score[t - gap] - TIGHTNESS * stretch * stretch)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        score[t] = envelope[t] + best.map_or(0.0, |(_, s)| s.max(0.0));
        previous[t] = best.filter(|(_, s)| *s > 0.0).map(|(from, _)| from);
    }
    let tail = envelope.len().saturating_sub(period.ceil() as usize);
    let Some(mut beat) = (tail..envelope.len()).max_by(|&a, &b| score[a].total_cmp(&score[b]))
    else {
        return Vec::new();
    };
    let mut beats = vec![beat];
    while let Some(before) = previous[beat] {
        beats.push(before);
        beat = before;
    }
    beats.reverse();
    beats
}

/// Drops beats at either end that land on next to no onset (the chain running on through
/// silence or an intro without a pulse).
fn trim_weak(envelope: &[f64], beats: Vec<usize>) -> Vec<usize> {
    let strength = |frame: usize| {
        envelope[frame.saturating_sub(2)..(frame + 3).min(envelope.len())]
            .iter()
            .copied()
            .fold(0.0, f64::max)
    };
    let mut strengths: Vec<f64> = beats.iter().map(|&b| strength(b)).collect();
    strengths.sort_by(f64::total_cmp);
    let Some(&median) = strengths.get(strengths.len() / 2) else {
        return beats;
    };
    let strong = |frame: &usize| strength(*frame) >= 0.2 * median;
    let first = beats.iter().position(strong).unwrap_or(beats.len());
    let last = beats.iter().rposition(strong).map_or(first, |l| l + 1);
    beats[first..last.max(first)].to_vec()
}

/// A beat frame moved to the top of the envelope's peak next to it.
fn refined_frame(envelope: &[f64], frame: usize) -> f64 {
    let peak = (frame.saturating_sub(1)..=(frame + 1).min(envelope.len() - 1))
        .max_by(|&a, &b| envelope[a].total_cmp(&envelope[b]))
        .unwrap_or(frame);
    if peak == 0 || peak + 1 >= envelope.len() {
        return peak as f64;
    }
    peak as f64 + parabola_peak(envelope[peak - 1], envelope[peak], envelope[peak + 1])
}

/// The tempo the beats keep: a straight line through them (counting a skipped beat as
/// such), so that it is as exact as the whole run of beats allows.
pub fn tempo_of(beats: &[f64]) -> Option<f64> {
    let mut gaps: Vec<f64> = beats.windows(2).map(|p| p[1] - p[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let typical = *gaps.get(gaps.len() / 2)?;
    let counts: Vec<f64> = beats
        .iter()
        .map(|t| ((t - beats[0]) / typical).round())
        .collect();
    let n = beats.len() as f64;
    let (mean_k, mean_t) = (
        counts.iter().sum::<f64>() / n,
        beats.iter().sum::<f64>() / n,
    );
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (k, t) in counts.iter().zip(beats) {
        covariance += (k - mean_k) * (t - mean_t);
        variance += (k - mean_k) * (k - mean_k);
    }
    (variance > 0.0).then(|| 60.0 * variance / covariance)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A click track: a 5 ms decaying 2 kHz burst on every beat from `first`, over a little
    /// noise, as the analysis rate sees it.
    pub(crate) fn clicks(bpm: f64, first: f64, seconds: f64) -> (Vec<f32>, Vec<f64>) {
        let rate = f64::from(ANALYSIS_RATE);
        let mut signal: Vec<f32> = (0..(seconds * rate) as usize)
            .map(|i| 0.01 * ((i * 7919 % 1000) as f32 / 500.0 - 1.0))
            .collect();
        let beats: Vec<f64> = (0..)
            .map(|k| first + f64::from(k) * 60.0 / bpm)
            .take_while(|t| *t < seconds - 0.1)
            .collect();
        for beat in &beats {
            let start = (beat * rate).round() as usize;
            for i in 0..(0.005 * rate) as usize {
                let t = i as f64 / rate;
                let value = (std::f64::consts::TAU * 2000.0 * t).sin() * (-t / 0.0015).exp();
                signal[start + i] += 0.8 * value as f32;
            }
        }
        (signal, beats)
    }

    #[test]
    fn finds_every_click_of_a_click_track_at_its_tempo() {
        for bpm in [90.0, 120.0, 128.0, 150.0] {
            let (signal, clicks) = clicks(bpm, 0.37, 30.0);
            let found = track_beats(&signal);
            assert!(
                (found.tempo_bpm - bpm).abs() < 0.01 * bpm,
                "{bpm}: {}",
                found.tempo_bpm
            );
            assert_eq!(found.beats.len(), clicks.len(), "{bpm}: {:?}", found.beats);
            for (beat, click) in found.beats.iter().zip(&clicks) {
                assert!((beat - click).abs() < 0.005, "{bpm}: {beat} for {click}");
            }
        }
    }

    #[test]
    fn silence_and_short_signals_have_no_beats() {
        assert!(track_beats(&[]).beats.is_empty());
        assert!(track_beats(&vec![0.0; ANALYSIS_RATE as usize * 10])
            .beats
            .is_empty());
        assert!(track_beats(&[0.5; 1000]).beats.is_empty());
    }
}
