//! When weekly runs happen, and which seven days each covers.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};

use settings::ShowcaseConfig;

/// Seven days ending at a scheduled run: `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A run every week on `weekday` at `hour` UTC.
#[derive(Debug, Clone, Copy)]
pub struct WeeklySchedule {
    weekday: Weekday,
    hour: u32,
}

impl From<&ShowcaseConfig> for WeeklySchedule {
    fn from(config: &ShowcaseConfig) -> Self {
        Self {
            weekday: config.weekday,
            hour: config.hour.min(23),
        }
    }
}

impl WeeklySchedule {
    /// The week whose run is the latest at or before `now`.
    pub fn latest(&self, now: DateTime<Utc>) -> Week {
        let today = now.date_naive();
        let back =
            (7 + today.weekday().num_days_from_monday() - self.weekday.num_days_from_monday()) % 7;
        let hour = NaiveTime::from_hms_opt(self.hour, 0, 0).expect("hour is below 24");
        let mut end = (today - Duration::days(i64::from(back)))
            .and_time(hour)
            .and_utc();
        if end > now {
            end -= Duration::weeks(1);
        }
        Week {
            start: end - Duration::weeks(1),
            end,
        }
    }

    /// The `count` latest weeks whose run is due at `now`, oldest first.
    pub fn recent(&self, now: DateTime<Utc>, count: u32) -> Vec<Week> {
        let latest = self.latest(now);
        (0..i64::from(count))
            .rev()
            .map(|back| Week {
                start: latest.start - Duration::weeks(back),
                end: latest.end - Duration::weeks(back),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn monday_six() -> WeeklySchedule {
        WeeklySchedule {
            weekday: Weekday::Mon,
            hour: 6,
        }
    }

    #[test]
    fn the_latest_week_ends_at_the_last_run_at_or_before_now() {
        // Wednesday 2026-11-25 12:00: the last run was Monday the 23rd at 06:00.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let week = monday_six().latest(now);
        assert_eq!(
            week.end,
            Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap()
        );
        assert_eq!(
            week.start,
            Utc.with_ymd_and_hms(2026, 11, 16, 6, 0, 0).unwrap()
        );
        // Monday 05:59 is still last week's; 06:00 exactly is the new run.
        let before = Utc.with_ymd_and_hms(2026, 11, 23, 5, 59, 0).unwrap();
        assert_eq!(monday_six().latest(before).end, week.start);
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap();
        assert_eq!(monday_six().latest(at).end, at);
    }

    #[test]
    fn recent_weeks_are_consecutive_and_oldest_first() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let weeks = monday_six().recent(now, 3);
        assert_eq!(weeks.len(), 3);
        assert_eq!(weeks[2], monday_six().latest(now));
        for pair in weeks.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }
}
