//! The style presets: one table that decides pace, transitions and look. The planner and
//! the renderer read it; nothing else branches on the style.

use serde::Serialize;
use utoipa::ToSchema;

use domain::jobs::Style;

/// How one segment hands over to the next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transition {
    /// A straight cut (with a few milliseconds of audio fade so it does not click).
    Cut,
    /// Picture and sound cross-fade over `seconds`; the segments overlap by that much.
    Dissolve { seconds: f64 },
    /// The picture cuts to white, which fades into the next shot over `seconds`.
    Flash { seconds: f64 },
}

/// Colour adjustments, applied to every frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Grade {
    /// 1.0 leaves saturation as it is.
    pub saturation: f64,
    /// 1.0 leaves contrast as it is.
    pub contrast: f64,
    /// Added to luma, -1.0 to 1.0.
    pub brightness: f64,
    /// Positive shifts towards warm (red/yellow), negative towards cool.
    pub warmth: f64,
    /// Gaussian blur sigma in pixels for a softer look; 0 for none.
    pub softness: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StylePreset {
    pub id: Style,
    pub name: &'static str,
    pub description: &'static str,
    /// Shortest and longest segment, seconds.
    pub segment_seconds: [f64; 2],
    pub transition: Transition,
    pub grade: Grade,
    /// Fade in from black and out to black over this many seconds (0 for none).
    pub fade_seconds: f64,
    /// The typeface of the montage's title: a TrueType file in the font directory
    /// (`FONT_DIR`; the Debian package `fonts-dejavu-core` has them all).
    pub title_font: &'static str,
}

const NEUTRAL: Grade = Grade {
    saturation: 1.0,
    contrast: 1.0,
    brightness: 0.0,
    warmth: 0.0,
    softness: 0.0,
};

pub static PRESETS: [StylePreset; 4] = [
    StylePreset {
        id: Style::Cinematic,
        name: "Cinematic",
        description: "Longer shots joined by soft cross-dissolves, with a gentle filmic grade.",
        segment_seconds: [3.0, 5.0],
        transition: Transition::Dissolve { seconds: 0.5 },
        grade: Grade {
            saturation: 0.92,
            contrast: 1.08,
            brightness: -0.02,
            warmth: 0.03,
            ..NEUTRAL
        },
        fade_seconds: 0.0,
        title_font: "DejaVuSerif-Bold.ttf",
    },
    StylePreset {
        id: Style::Gaming,
        name: "Gaming",
        description: "Punchy hard cuts every few seconds, extra saturation and contrast.",
        segment_seconds: [2.0, 3.0],
        transition: Transition::Cut,
        grade: Grade {
            saturation: 1.3,
            contrast: 1.15,
            ..NEUTRAL
        },
        fade_seconds: 0.0,
        title_font: "DejaVuSans-Bold.ttf",
    },
    StylePreset {
        id: Style::Energetic,
        name: "Energetic",
        description: "Fast 1-2 s cuts, each marked by a quick white flash.",
        segment_seconds: [1.0, 2.0],
        transition: Transition::Flash { seconds: 0.2 },
        grade: Grade {
            saturation: 1.2,
            contrast: 1.1,
            brightness: 0.02,
            ..NEUTRAL
        },
        fade_seconds: 0.0,
        title_font: "DejaVuSans-Bold.ttf",
    },
    StylePreset {
        id: Style::Chill,
        name: "Chill",
        description:
            "Long, unhurried shots with one-second dissolves, a warm soft grade, fading in and out.",
        segment_seconds: [5.0, 8.0],
        transition: Transition::Dissolve { seconds: 1.0 },
        grade: Grade {
            saturation: 0.9,
            contrast: 0.95,
            brightness: 0.02,
            warmth: 0.08,
            softness: 0.8,
        },
        fade_seconds: 1.0,
        title_font: "DejaVuSerif.ttf",
    },
];

pub fn preset(style: Style) -> &'static StylePreset {
    PRESETS
        .iter()
        .find(|p| p.id == style)
        .expect("every style has a preset")
}

impl Transition {
    /// How long consecutive segments overlap in the output.
    pub fn overlap_seconds(self) -> f64 {
        match self {
            Transition::Dissolve { seconds } => seconds,
            Transition::Cut | Transition::Flash { .. } => 0.0,
        }
    }
}

/// Chroma shift (8-bit levels) per unit of warmth: what raising red and lowering blue by
/// that fraction of the video range does to Cb and Cr (BT.601/709 weights, rounded).
const WARMTH_CB: f64 = 175.0;
const WARMTH_CR: f64 = 100.0;

impl Grade {
    /// The libavfilter chain for this grade's tone and softness, or `None` when it changes
    /// neither. Warmth is not in it: see [`Grade::chroma_shift`].
    pub fn filter(&self) -> Option<String> {
        let mut parts = Vec::new();
        if (self.saturation, self.contrast, self.brightness) != (1.0, 1.0, 0.0) {
            parts.push(format!(
                "eq=saturation={}:contrast={}:brightness={}",
                self.saturation, self.contrast, self.brightness
            ));
        }
        if self.softness > 0.0 {
            parts.push(format!("gblur=sigma={}", self.softness));
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// How far this grade moves Cb and Cr (8-bit levels), after the filter, if at all.
    /// Warmer is chroma towards red and away from blue. The renderer adds it to the chroma
    /// planes itself: `colorbalance` works in RGB and converted every frame there and back
    /// (more than encoding it cost), and `lutyuv` looks up every luma sample too.
    pub fn chroma_shift(&self) -> Option<(i16, i16)> {
        let level = |per_unit: f64| (per_unit * self.warmth).round() as i16;
        let shift = (level(-WARMTH_CB), level(WARMTH_CR));
        (shift != (0, 0)).then_some(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_has_exactly_one_preset() {
        for style in Style::ALL {
            assert_eq!(
                PRESETS.iter().filter(|p| p.id == *style).count(),
                1,
                "{style}"
            );
        }
    }

    #[test]
    fn presets_differ_in_pace_and_look() {
        let pace = |s| preset(s).segment_seconds[1];
        assert!(pace(Style::Energetic) < pace(Style::Gaming));
        assert!(pace(Style::Gaming) < pace(Style::Cinematic));
        assert!(pace(Style::Cinematic) < pace(Style::Chill));
        for p in &PRESETS {
            assert!(p.segment_seconds[0] <= p.segment_seconds[1]);
            assert!(
                p.transition.overlap_seconds() < p.segment_seconds[0] / 2.0,
                "{:?}",
                p.id
            );
            assert!(p.grade.filter().is_some(), "{:?} has a grade", p.id);
        }
    }

    #[test]
    fn warm_grades_move_chroma_towards_red_and_cool_ones_towards_blue() {
        let warmth = |warmth| Grade { warmth, ..NEUTRAL }.chroma_shift();
        assert_eq!(warmth(0.0), None);
        let (cb, cr) = warmth(0.08).expect("a warm grade shifts chroma");
        assert!(cb < 0 && cr > 0, "{cb} {cr}");
        let (cb, cr) = warmth(-0.08).expect("a cool grade shifts chroma");
        assert!(cb > 0 && cr < 0, "{cb} {cr}");
    }
}
