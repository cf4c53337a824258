//! `spec.syncWindows`: cron windows that allow or deny periodic refreshes, as ESO (v2.7+)
//! evaluates them with robfig/cron's standard parser, in UTC.
//!
//! - A schedule is 5 fields (minute, hour, day of month, month, day of week; lists `a,b`,
//!   ranges `a-b`, steps `*/n` and `a/n`, `*` or `?`, month and weekday names), or a
//!   descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
//!   `@hourly`, `@every <duration>`).
//! - Day of month and day of week: when both are restricted, either may match; when one is
//!   `*`, both must (robfig's rule).
//! - A window is open at `t` when the schedule fired at some `f` with `t - duration <= f <= t`.
//!   `@every d` follows robfig's constant-delay schedule, which makes such a window open at
//!   every instant when `d <= duration + 1s` and never otherwise (ESO's result too).
//! - `allow`: refreshes only while at least one window is open; `deny`: none while any is.
//! - Only periodic refreshes are gated: first syncs, edits, forced syncs and repairs of an
//!   edited Secret are not (ESO's rule).
//!
//! Where ESO skips a schedule it cannot parse (so a typo silently changes when refreshes
//! happen), esox refuses the ExternalSecret naming the window: see [`check`].
//!
//! Pure: times are seconds since the Unix epoch.

use std::time::Duration;

use esox_api::duration::parse_go_duration;
use esox_api::{SyncWindowKind, SyncWindows};

/// The furthest ahead esox looks for the next opening of an `allow` window.
const LOOK_AHEAD_SECS: i64 = 400 * 86_400;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Schedule {
    Cron(Cron),
    /// robfig's `@every`: a constant delay, in whole seconds (at least 1).
    Every(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Whether day of month or day of week was `*`/`?` (robfig's star bit).
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_value(text: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + offset);
    }
    text.parse::<u32>().map_err(|_| {
        format!(
            "{text:?} is not a number{}",
            if names.is_empty() { "" } else { " or a name" }
        )
    })
}

/// One field: bits for the allowed values, and whether it was a star.
fn parse_field(
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                if s.contains('/') {
                    return Err(format!("too many slashes in {part:?}"));
                }
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("step {s:?} is not a number"))?;
                (r, Some(step))
            }
            None => (part, None),
        };
        let (mut start, mut end, mut is_star) = if range == "*" || range == "?" {
            (min, max, true)
        } else {
            match range.split_once('-') {
                Some((a, b)) => {
                    if b.contains('-') {
                        return Err(format!("too many hyphens in {part:?}"));
                    }
                    (
                        parse_value(a, names, offset)?,
                        parse_value(b, names, offset)?,
                        false,
                    )
                }
                None => {
                    let v = parse_value(range, names, offset)?;
                    (v, v, false)
                }
            }
        };
        let step = match step {
            Some(step) => {
                // "N/step" means "N-max/step"; a step above 1 clears the star.
                if !range.contains('-') && range != "*" && range != "?" {
                    end = max;
                }
                if step > 1 {
                    is_star = false;
                }
                step
            }
            None => 1,
        };
        if start < min {
            return Err(format!("{part:?} starts below {min}"));
        }
        if end > max {
            return Err(format!("{part:?} ends above {max}"));
        }
        if start > end {
            return Err(format!("{part:?} starts after it ends"));
        }
        if step == 0 {
            return Err(format!("{part:?} has a step of 0"));
        }
        while start <= end {
            bits |= 1 << start;
            start += step;
        }
        star |= is_star;
    }
    Ok((bits, star))
}

fn parse(schedule: &str) -> Result<Schedule, String> {
    let descriptor = match schedule {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    };
    if let Some(every) = schedule.strip_prefix("@every ") {
        let d = parse_go_duration(every.trim()).map_err(|e| e.to_string())?;
        // robfig rounds the delay down to whole seconds, and never below one second.
        return Ok(Schedule::Every((d.as_secs() as i64).max(1)));
    }
    if schedule.starts_with('@') && descriptor.is_none() {
        return Err(format!("unknown descriptor {schedule:?}"));
    }
    let text = descriptor.unwrap_or(schedule);
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    }
    let (minute, _) = parse_field(fields[0], 0, 59, &[], 0).map_err(|e| format!("minute: {e}"))?;
    let (hour, _) = parse_field(fields[1], 0, 23, &[], 0).map_err(|e| format!("hour: {e}"))?;
    let (dom, dom_star) =
        parse_field(fields[2], 1, 31, &[], 0).map_err(|e| format!("day of month: {e}"))?;
    let (month, _) =
        parse_field(fields[3], 1, 12, &MONTHS, 1).map_err(|e| format!("month: {e}"))?;
    let (dow, dow_star) =
        parse_field(fields[4], 0, 6, &DAYS, 0).map_err(|e| format!("day of week: {e}"))?;
    Ok(Schedule::Cron(Cron {
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    }))
}

/// Civil date (UTC) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Cron {
    fn day_matches(&self, day: i64) -> bool {
        let (_, month, dom) = civil(day);
        if self.month & (1 << month) == 0 {
            return false;
        }
        let dow = (day + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let dom_match = self.dom & (1 << dom) != 0;
        let dow_match = self.dow & (1 << dow) != 0;
        if self.dom_star || self.dow_star {
            dom_match && dow_match
        } else {
            dom_match || dow_match
        }
    }

    /// The latest firing (a minute start, in epoch seconds) in `[from, to]`.
    fn latest_in(&self, from: i64, to: i64) -> Option<i64> {
        let mut m = to.div_euclid(60);
        let first = (from + 59).div_euclid(60);
        while m >= first {
            let day = m.div_euclid(1440);
            if !self.day_matches(day) {
                m = day * 1440 - 1;
                continue;
            }
            let minute_of_day = m.rem_euclid(1440);
            let hour = minute_of_day / 60;
            if self.hour & (1 << hour) == 0 {
                m = day * 1440 + hour * 60 - 1;
                continue;
            }
            if self.minute & (1 << (minute_of_day % 60)) != 0 {
                return Some(m * 60);
            }
            m -= 1;
        }
        None
    }

    /// The first firing strictly after `after`, within `limit` seconds.
    fn next_after(&self, after: i64, limit: i64) -> Option<i64> {
        let mut m = after.div_euclid(60) + 1;
        let last = (after + limit).div_euclid(60);
        while m <= last {
            let day = m.div_euclid(1440);
            if !self.day_matches(day) {
                m = (day + 1) * 1440;
                continue;
            }
            let minute_of_day = m.rem_euclid(1440);
            let hour = minute_of_day / 60;
            if self.hour & (1 << hour) == 0 {
                m = day * 1440 + (hour + 1) * 60;
                continue;
            }
            if self.minute & (1 << (minute_of_day % 60)) != 0 {
                return Some(m * 60);
            }
            m += 1;
        }
        None
    }
}

/// One window, parsed.
struct Window {
    schedule: Schedule,
    duration: i64,
}

impl Window {
    /// When the open window that covers `at` closes, if one does.
    fn open_until(&self, at: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::Cron(c) => c
                .latest_in(at - self.duration, at)
                .map(|f| f + self.duration),
            Schedule::Every(delay) => {
                // robfig: prev = Next(at - duration - 1s) = that instant + delay.
                let prev = at - self.duration - 1 + delay;
                (prev <= at && at <= prev + self.duration).then_some(prev + self.duration)
            }
        }
    }

    fn next_open_after(&self, at: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::Cron(c) => c.next_after(at, LOOK_AHEAD_SECS),
            Schedule::Every(_) => None,
        }
    }
}

fn parse_windows(sw: &SyncWindows) -> Result<Vec<Window>, String> {
    sw.windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let schedule = parse(w.schedule.trim()).map_err(|e| {
                format!(
                    "spec.syncWindows.windows[{i}].schedule {:?}: {e}",
                    w.schedule
                )
            })?;
            let duration = parse_go_duration(&w.duration)
                .map_err(|e| format!("spec.syncWindows.windows[{i}].duration: {e}"))?;
            Ok(Window {
                schedule,
                duration: duration.as_secs() as i64,
            })
        })
        .collect()
}

/// Refuse windows esox cannot evaluate, naming the field (ESO would skip them silently).
pub fn check(sw: Option<&SyncWindows>) -> Result<(), String> {
    sw.map(parse_windows).transpose().map(|_| ())
}

/// Whether a periodic refresh may happen at `at` (epoch seconds), and if not, how long until
/// it is worth looking again (`None`: no opening ahead; wait for the next interval).
pub fn allowed_at(sw: Option<&SyncWindows>, at: i64) -> (bool, Option<Duration>) {
    let Some(sw) = sw else {
        return (true, None);
    };
    let Ok(windows) = parse_windows(sw) else {
        // Refused before this is asked (`check`); allow rather than block forever.
        return (true, None);
    };
    if windows.is_empty() {
        return (true, None);
    }
    let open: Vec<i64> = windows.iter().filter_map(|w| w.open_until(at)).collect();
    match sw.kind {
        SyncWindowKind::Allow if !open.is_empty() => (true, None),
        SyncWindowKind::Allow => {
            let next = windows.iter().filter_map(|w| w.next_open_after(at)).min();
            (
                false,
                next.map(|n| Duration::from_secs((n - at).max(1) as u64)),
            )
        }
        SyncWindowKind::Deny if open.is_empty() => (true, None),
        SyncWindowKind::Deny => {
            let closes = open.into_iter().max().unwrap_or(at);
            (
                false,
                Some(Duration::from_secs((closes - at + 1).max(1) as u64)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::SyncWindow;

    /// Epoch seconds of a UTC civil time.
    fn t(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        // Count days with the inverse of `civil`, by search (tests only).
        let mut day = (y - 1970) * 365 + (y - 1969) / 4 - 40;
        while civil(day) < (y, mo, d) {
            day += 1;
        }
        while civil(day) > (y, mo, d) {
            day -= 1;
        }
        day * 86_400 + h * 3600 + mi * 60
    }

    fn windows(kind: SyncWindowKind, list: &[(&str, &str)]) -> SyncWindows {
        SyncWindows {
            kind,
            windows: list
                .iter()
                .map(|(s, d)| SyncWindow {
                    schedule: s.to_string(),
                    duration: d.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn civil_dates_and_weekdays_are_right() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(20_513), (2026, 3, 1));
        // 2026-12-05 is a Saturday.
        let day = t(2026, 12, 5, 0, 0) / 86_400;
        assert_eq!(civil(day), (2026, 12, 5));
        assert_eq!((day + 4).rem_euclid(7), 6);
    }

    #[test]
    fn an_allow_window_opens_on_its_schedule_for_its_duration() {
        // Weekdays 22:00 for 8 hours.
        let sw = windows(SyncWindowKind::Allow, &[("0 22 * * 1-5", "8h")]);
        let fri = |h, m| t(2026, 12, 4, h, m);
        assert!(allowed_at(Some(&sw), fri(22, 0)).0);
        assert!(allowed_at(Some(&sw), fri(23, 59)).0);
        // Saturday 05:59 is inside Friday's window, 06:01 is not.
        assert!(allowed_at(Some(&sw), t(2026, 12, 5, 5, 59)).0);
        let (ok, wait) = allowed_at(Some(&sw), t(2026, 12, 5, 6, 1));
        assert!(!ok);
        // The next opening is Monday 22:00.
        assert_eq!(
            wait,
            Some(Duration::from_secs(
                (t(2026, 12, 7, 22, 0) - t(2026, 12, 5, 6, 1)) as u64
            ))
        );
        let (ok, wait) = allowed_at(Some(&sw), fri(21, 59));
        assert!(!ok);
        assert_eq!(wait, Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_deny_window_blocks_until_it_closes() {
        let sw = windows(
            SyncWindowKind::Deny,
            &[("@daily", "2h"), ("30 12 * * *", "30m")],
        );
        assert_eq!(allowed_at(Some(&sw), t(2026, 12, 5, 3, 0)), (true, None));
        let (ok, wait) = allowed_at(Some(&sw), t(2026, 12, 5, 1, 0));
        assert!(!ok);
        assert_eq!(wait, Some(Duration::from_secs(3601)));
        assert!(!allowed_at(Some(&sw), t(2026, 12, 5, 12, 45)).0);
        assert!(allowed_at(Some(&sw), t(2026, 12, 5, 13, 1)).0);
    }

    #[test]
    fn fields_follow_robfig_cron() {
        let Schedule::Cron(c) = parse("*/15 9-17 1,15 JAN-mar ?").unwrap() else {
            panic!()
        };
        assert_eq!(c.minute, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(c.hour, (9..=17).fold(0, |b, h| b | 1 << h));
        assert_eq!(c.month, 1 << 1 | 1 << 2 | 1 << 3);
        assert!(c.dow_star && !c.dom_star);
        // "N/step" runs to the maximum.
        let Schedule::Cron(c) = parse("5/20 * * * *").unwrap() else {
            panic!()
        };
        assert_eq!(c.minute, 1 << 5 | 1 << 25 | 1 << 45);
        // Both days restricted: either matches. 2026-12-05 is the 5th and a Saturday.
        let Schedule::Cron(c) = parse("0 0 1 * sat").unwrap() else {
            panic!()
        };
        assert!(c.day_matches(t(2026, 12, 5, 0, 0) / 86_400));
        let Schedule::Cron(c) = parse("0 0 1 * *").unwrap() else {
            panic!()
        };
        assert!(!c.day_matches(t(2026, 12, 5, 0, 0) / 86_400));
        assert_eq!(parse("@every 90m").unwrap(), Schedule::Every(5400));
    }

    #[test]
    fn every_follows_robfigs_constant_delay() {
        let open = windows(SyncWindowKind::Allow, &[("@every 1h", "1h")]);
        let closed = windows(SyncWindowKind::Allow, &[("@every 2h", "1h")]);
        let at = t(2026, 12, 5, 10, 17);
        assert!(allowed_at(Some(&open), at).0);
        assert_eq!(allowed_at(Some(&closed), at), (false, None));
    }

    #[test]
    fn schedules_that_do_not_parse_are_refused_by_position() {
        for (schedule, words) in [
            ("61 * * * *", "minute: \"61\" ends above 59"),
            ("* * * *", "expected 5 fields"),
            ("@fortnightly", "unknown descriptor"),
            ("* * 0 * *", "day of month: \"0\" starts below 1"),
            ("*/0 * * * *", "has a step of 0"),
            ("* * * foo *", "month: \"foo\" is not a number or a name"),
        ] {
            let sw = windows(SyncWindowKind::Allow, &[("@daily", "1h"), (schedule, "1h")]);
            let e = check(Some(&sw)).unwrap_err();
            assert!(
                e.starts_with("spec.syncWindows.windows[1].schedule") && e.contains(words),
                "{schedule}: {e}"
            );
        }
        assert!(check(None).is_ok());
    }
}
