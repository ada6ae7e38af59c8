//! Where a job's time went: seconds per stage of its last successful attempt.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Seconds spent in each stage of a successful attempt (a `JSONB` column). The stages but
/// `audio` run one after another, so `total` minus their sum is the bookkeeping between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Jsonb)
)]
#[serde(default)]
pub struct StageTimings {
    /// Clips from storage to the worker's disk.
    pub download: f64,
    /// Starting the media process and reading every clip's header (the media process's
    /// life outside the analysis and video stages).
    pub probe: f64,
    /// Highlight analysis (loudness, motion, HUD) of every clip.
    pub analysis: f64,
    /// The soundtrack: decoding each segment's audio, joining, loudness normalisation. It is
    /// made on its own thread while `video` runs, so it is not part of the sum below.
    pub audio: f64,
    /// The pictures: decoding segments, filtering, encoding every output, posters.
    pub video: f64,
    /// Outputs and posters to storage.
    pub upload: f64,
    /// From the claim to the end of the upload.
    pub total: f64,
}

/// A stage of [`StageTimings`] timed on its own (probe is what the media process's life
/// leaves, see [`StageTimings::count_probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedStage {
    Download,
    Analysis,
    Audio,
    Video,
    Upload,
}

impl StageTimings {
    /// Adds `spent` to `stage`, rounded to the millisecond.
    pub fn add(&mut self, stage: TimedStage, spent: Duration) {
        let slot = match stage {
            TimedStage::Download => &mut self.download,
            TimedStage::Analysis => &mut self.analysis,
            TimedStage::Audio => &mut self.audio,
            TimedStage::Video => &mut self.video,
            TimedStage::Upload => &mut self.upload,
        };
        *slot = millis(*slot + spent.as_secs_f64());
    }

    /// Counts as probe whatever of the media process's life since `started` the analysis
    /// and video stages do not cover: starting the process, loading libav, the headers.
    pub fn count_probe(&mut self, started: Instant) {
        let measured = self.analysis + self.video;
        self.probe = millis((started.elapsed().as_secs_f64() - measured).max(0.0));
    }

    pub fn finish(&mut self, claimed: Instant) {
        self.total = millis(claimed.elapsed().as_secs_f64());
    }
}

fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The `JSONB` column's mapping.
#[cfg(feature = "diesel")]
mod column {
    use std::io::Write;

    use diesel::deserialize::{self, FromSql};
    use diesel::pg::{Pg, PgValue};
    use diesel::serialize::{self, IsNull, Output, ToSql};
    use diesel::sql_types::Jsonb;

    use super::StageTimings;

    impl ToSql<Jsonb, Pg> for StageTimings {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            // JSONB's binary form: a version byte, then the text.
            out.write_all(&[1])?;
            serde_json::to_writer(out, self)?;
            Ok(IsNull::No)
        }
    }

    impl FromSql<Jsonb, Pg> for StageTimings {
        fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
            let value = <serde_json::Value as FromSql<Jsonb, Pg>>::from_sql(bytes)?;
            Ok(serde_json::from_value(value)?)
        }
    }
}
