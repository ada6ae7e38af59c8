//! HUD removal: find static overlays (score, minimap, health bars: pixels that barely
//! change while the game picture moves) along the edges of a clip, and choose a crop that
//! keeps the moving content.
//!
//! Input is a small map of each pixel's mean change between sampled frames. An edge line
//! (row or column) counts as HUD when a good share of its pixels are static; lines are
//! trimmed from each edge while they look like HUD, up to [`MAX_TRIM`] of the picture.
//! Limits: overlays in the middle of the picture (crosshairs, subtitles mid-frame) cannot
//! be cropped away; a HUD that animates constantly looks like game content; a game scene
//! that is itself still (menus, pauses) gives no signal, and then a modest margin crop is
//! used instead.

/// Fraction of a picture's width or height that may be cropped from one edge.
pub const MAX_TRIM: f64 = 0.2;
/// What is cropped from each edge when no HUD is found.
pub const FALLBACK_MARGIN: f64 = 0.04;
/// Mean change (0-255 luma) under which a pixel counts as static.
const STATIC_BELOW: f32 = 0.75;
/// Share of static pixels that makes an edge line look like HUD.
const HUD_LINE_SHARE: f64 = 0.15;
/// At least 30 % of the picture must change this much for stillness elsewhere to mean
/// anything.
const MIN_MOTION: f32 = 1.5;

/// What to crop from each edge, as fractions of the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Crop {
    pub fn margin(fraction: f64) -> Self {
        Self {
            left: fraction,
            top: fraction,
            right: fraction,
            bottom: fraction,
        }
    }

    /// In pixels of a `width`x`height` picture: (width, height, x, y), even numbers so
    /// 4:2:0 chroma stays aligned.
    pub fn pixels(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let even = |v: f64| (v.round() as u32) & !1;
        let (x, y) = (
            even(self.left * f64::from(width)),
            even(self.top * f64::from(height)),
        );
        let w = even(f64::from(width) * (1.0 - self.left - self.right)).max(2);
        let h = even(f64::from(height) * (1.0 - self.top - self.bottom)).max(2);
        (w.min(width - x), h.min(height - y), x, y)
    }
}

/// Finds the static edge bands of a `width`x`height` change map (row-major). `None` when
/// nothing looks like HUD (or the picture is too still to tell).
pub fn detect(change: &[f32], width: usize, height: usize) -> Option<Crop> {
    assert_eq!(change.len(), width * height, "one value per pixel");
    let mut sorted: Vec<f32> = change.to_vec();
    sorted.sort_by(f32::total_cmp);
    if sorted
        .get(sorted.len() * 7 / 10)
        .is_none_or(|busy| *busy < MIN_MOTION)
    {
        return None;
    }
    let is_static = |x: usize, y: usize| change[y * width + x] < STATIC_BELOW;
    let row_is_hud = |y: usize| {
        (0..width).filter(|&x| is_static(x, y)).count() as f64 / width as f64 >= HUD_LINE_SHARE
    };
    let column_is_hud = |x: usize| {
        (0..height).filter(|&y| is_static(x, y)).count() as f64 / height as f64 >= HUD_LINE_SHARE
    };
    let limit = |size: usize| ((size as f64) * MAX_TRIM).floor() as usize;
    let top = (0..limit(height)).take_while(|&y| row_is_hud(y)).count();
    let bottom = (0..limit(height))
        .take_while(|&i| row_is_hud(height - 1 - i))
        .count();
    let left = (0..limit(width)).take_while(|&x| column_is_hud(x)).count();
    let right = (0..limit(width))
        .take_while(|&i| column_is_hud(width - 1 - i))
        .count();
    if top + bottom + left + right == 0 {
        return None;
    }
    Some(Crop {
        left: left as f64 / width as f64,
        top: top as f64 / height as f64,
        right: right as f64 / width as f64,
        bottom: bottom as f64 / height as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 160;
    const H: usize = 90;

    fn moving() -> Vec<f32> {
        (0..W * H).map(|i| 5.0 + (i % 7) as f32).collect()
    }

    fn paint_static(map: &mut [f32], xs: std::ops::Range<usize>, ys: std::ops::Range<usize>) {
        for y in ys {
            for x in xs.clone() {
                map[y * W + x] = 0.1;
            }
        }
    }

    #[test]
    fn a_score_bar_on_top_and_a_minimap_in_a_corner_are_cropped() {
        let mut map = moving();
        paint_static(&mut map, 0..W, 0..11); // bar across the top, 12 %
        paint_static(&mut map, 125..W, 68..H); // minimap bottom right
        let crop = detect(&map, W, H).unwrap();
        assert!((crop.top - 11.0 / 90.0).abs() < 1e-9, "{crop:?}");
        assert!(crop.bottom > 0.15 && crop.bottom <= MAX_TRIM, "{crop:?}");
        assert_eq!(crop.left, 0.0);
    }

    #[test]
    fn nothing_static_or_nothing_moving_finds_nothing() {
        assert_eq!(detect(&moving(), W, H), None);
        assert_eq!(
            detect(&vec![0.0; W * H], W, H),
            None,
            "a still picture tells nothing"
        );
    }

    #[test]
    fn trimming_stops_at_the_maximum() {
        let mut map = moving();
        paint_static(&mut map, 0..W, 0..60);
        assert_eq!(detect(&map, W, H).unwrap().top, 18.0 / 90.0);
    }

    #[test]
    fn pixel_crops_are_even_and_inside() {
        let crop = Crop {
            left: 0.0,
            top: 0.123,
            right: 0.05,
            bottom: 0.0,
        };
        let (w, h, x, y) = crop.pixels(1920, 1080);
        assert_eq!((w % 2, h % 2, x % 2, y % 2), (0, 0, 0, 0));
        assert!(x + w <= 1920 && y + h <= 1080);
        assert_eq!(Crop::margin(0.04).pixels(1000, 500), (920, 460, 40, 20));
    }
}
