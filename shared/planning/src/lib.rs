//! Montage planning, free of I/O: style presets, which moments of which clips make the cut,
//! and where a game's HUD sits.

pub mod hud;
pub mod montage;
pub mod music;
pub mod styles;
