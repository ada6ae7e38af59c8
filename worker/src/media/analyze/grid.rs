//! The sampling grid pictures are measured on, shared by the measuring pass and the cutting
//! of clips into stretches (a stretch starts on a grid point).

/// Pictures are sampled this often.
pub const SAMPLES_PER_SECOND: f64 = 8.0;
/// Times this close count as equal (timestamps converted from a time base are inexact).
pub const TIME_SLACK: f64 = 1e-6;

/// The first sampling grid point after `time`.
pub fn grid_after(time: f64) -> f64 {
    ((time + TIME_SLACK) * SAMPLES_PER_SECOND).floor() / SAMPLES_PER_SECOND
        + 1.0 / SAMPLES_PER_SECOND
}

/// The first sampling grid point at or after `time`.
pub fn grid_at_or_after(time: f64) -> f64 {
    ((time - TIME_SLACK) * SAMPLES_PER_SECOND).ceil() / SAMPLES_PER_SECOND
}
