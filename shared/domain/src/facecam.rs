//! Where a streamer's camera sits in their clips: a rectangle in fractions of the frame.
//! With one, the portrait cut is split: the camera fills the top third and the gameplay,
//! cropped clear of the camera, the rest.

use crate::error::{ServiceError, ServiceResult};
use crate::wire::text_column;

/// The smallest side a camera rectangle may have, as a fraction of the frame's.
pub const MIN_SIDE: f64 = 0.05;

/// A rectangle in fractions of the frame: `x`, `y` its top-left corner, `w`, `h` its size.
/// Written `x,y,w,h` in forms and in the database (`0.7,0.05,0.25,0.3`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[serde(try_from = "Corners")]
pub struct Facecam {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// What a reader gets before it is checked.
#[derive(serde::Deserialize)]
struct Corners {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl TryFrom<Corners> for Facecam {
    type Error = String;

    fn try_from(Corners { x, y, w, h }: Corners) -> Result<Self, String> {
        Self::new(x, y, w, h)
    }
}

impl Facecam {
    /// A rectangle inside the frame whose sides are at least [`MIN_SIDE`].
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Result<Self, String> {
        let inside = [x, y, w, h].iter().all(|v| v.is_finite() && *v >= 0.0)
            && x + w <= 1.0 + 1e-9
            && y + h <= 1.0 + 1e-9;
        if !inside {
            return Err(
                "must lie inside the frame: x,y,w,h fractions with x+w and y+h at most 1".into(),
            );
        }
        if w < MIN_SIDE || h < MIN_SIDE {
            return Err(format!("sides must be at least {MIN_SIDE} of the frame's"));
        }
        Ok(Self { x, y, w, h })
    }

    /// A form's `field`: `x,y,w,h`.
    pub fn parse(field: &str, raw: &str) -> ServiceResult<Self> {
        raw.parse().map_err(|why| {
            ServiceError::invalid_field(
                field,
                format!("{field} {why} (x,y,w,h, fractions of the frame)"),
            )
        })
    }
}

impl std::str::FromStr for Facecam {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let values: Vec<f64> = raw
            .split(',')
            .map(|part| part.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| "must be four numbers".to_owned())?;
        match values[..] {
            [x, y, w, h] => Self::new(x, y, w, h),
            _ => Err("must be four numbers".into()),
        }
    }
}

impl std::fmt::Display for Facecam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.w, self.h)
    }
}

text_column!(Facecam);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_lies_inside_the_frame_and_reads_back_as_written() {
        let cam = Facecam::parse("facecam", " 0.7, 0.05,0.25,0.3").unwrap();
        assert_eq!(
            cam,
            Facecam {
                x: 0.7,
                y: 0.05,
                w: 0.25,
                h: 0.3
            }
        );
        assert_eq!(cam.to_string().parse::<Facecam>().unwrap(), cam);
        for bad in [
            "",
            "0.1,0.1,0.2",
            "0.9,0,0.2,0.2",
            "0,0,0.01,0.5",
            "a,b,c,d",
            "-0.1,0,0.2,0.2",
            "NaN,0,0.2,0.2",
            "0,0,0.2,0.2,0.2",
        ] {
            assert!(Facecam::parse("facecam", bad).is_err(), "{bad:?}");
        }
        let json: Result<Facecam, _> = serde_json::from_str(r#"{"x":0.9,"y":0,"w":0.5,"h":0.5}"#);
        assert!(json.is_err(), "reads are checked too");
    }
}
