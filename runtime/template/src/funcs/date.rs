//! Sprig's date functions and Go's time formatting: Go reference layouts
//! (`2006-01-02T15:04:05Z07:00`), `time.Time.String()`, durations, and the few `time.Time`
//! methods templates call (`.Unix`, `.Format`, `.UTC`, `.Year`).
//!
//! Time zones: `UTC` and `Local` (the controller runs in UTC, so `Local` is UTC); other IANA
//! names are an error rather than a silently wrong rendering.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};

use super::{FnResult, Registry, reg, s, st};
use crate::value::Value;

type Time = DateTime<FixedOffset>;

fn now() -> Time {
    Utc::now().fixed_offset()
}

fn utc(t: &Time) -> Time {
    t.with_timezone(&Utc).fixed_offset()
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// (z_for_utc, with colons, with seconds, hours only)
    Offset(bool, bool, bool, bool),
    Frac(u8, usize, bool),
}

fn next_chunk(layout: &str) -> (usize, Option<(Std, usize)>) {
    let b = layout.as_bytes();
    let has = |i: usize, p: &str| layout[i..].starts_with(p);
    let mut i = 0;
    while i < b.len() {
        let r = match b[i] {
            b'J' if has(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if has(i, "Jan") => Some((Std::Month, 3)),
            b'M' if has(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if has(i, "Mon") => Some((Std::WeekDay, 3)),
            b'M' if has(i, "MST") => Some((Std::TZ, 3)),
            b'0' if has(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                },
                2,
            )),
            b'1' if has(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if has(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if has(i, "_2006") => {
                // A literal `_` followed by the long year.
                return (i + 1, Some((Std::LongYear, 4)));
            }
            b'_' if has(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if has(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if has(i, "PM") => Some((Std::PM, 2)),
            b'p' if has(i, "pm") => Some((Std::Pm, 2)),
            b'-' | b'Z' => {
                let z = b[i] == b'Z';
                let rest = &layout[i + 1..];
                if rest.starts_with("070000") {
                    Some((Std::Offset(z, false, true, false), 7))
                } else if rest.starts_with("07:00:00") {
                    Some((Std::Offset(z, true, true, false), 9))
                } else if rest.starts_with("0700") {
                    Some((Std::Offset(z, false, false, false), 5))
                } else if rest.starts_with("07:00") {
                    Some((Std::Offset(z, true, false, false), 6))
                } else if rest.starts_with("07") {
                    Some((Std::Offset(z, false, false, true), 3))
                } else {
                    None
                }
            }
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    Some((Std::Frac(b[i], j - i - 1, ch == b'9'), j - i))
                }
            }
            _ => None,
        };
        if let Some(r) = r {
            return (i, Some(r));
        }
        i += 1;
    }
    (i, None)
}

fn zone_abbrev(t: &Time) -> String {
    let off = t.offset().local_minus_utc();
    if off == 0 {
        return "UTC".into();
    }
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m) = (a / 3600, a / 60 % 60);
    if m == 0 {
        format!("{sign}{h:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// `time.Time.Format(layout)`.
pub(crate) fn go_format(t: &Time, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (pre, chunk) = next_chunk(rest);
        out.push_str(&rest[..pre]);
        let Some((std, len)) = chunk else { break };
        let year = t.year();
        let hour = t.hour();
        match std {
            Std::LongMonth => out.push_str(LONG_MONTHS[t.month0() as usize]),
            Std::Month => out.push_str(&LONG_MONTHS[t.month0() as usize][..3]),
            Std::NumMonth => out.push_str(&t.month().to_string()),
            Std::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            Std::LongWeekDay => {
                out.push_str(LONG_DAYS[t.weekday().num_days_from_sunday() as usize])
            }
            Std::WeekDay => {
                out.push_str(&LONG_DAYS[t.weekday().num_days_from_sunday() as usize][..3])
            }
            Std::Day => out.push_str(&t.day().to_string()),
            Std::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Std::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Std::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Std::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Std::Hour => out.push_str(&format!("{hour:02}")),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = match hour % 12 {
                    0 => 12,
                    h => h,
                };
                out.push_str(&if std == Std::Hour12 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                });
            }
            Std::Minute => out.push_str(&t.minute().to_string()),
            Std::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Std::Second => out.push_str(&t.second().to_string()),
            Std::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Std::LongYear => out.push_str(&format!("{year:04}")),
            Std::Year => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Std::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Std::TZ => out.push_str(&zone_abbrev(t)),
            Std::Offset(z, colon, secs, hours_only) => {
                let off = t.offset().local_minus_utc();
                if z && off == 0 {
                    out.push('Z');
                } else {
                    let a = off.unsigned_abs();
                    out.push(if off < 0 { '-' } else { '+' });
                    out.push_str(&format!("{:02}", a / 3600));
                    if !hours_only {
                        if colon {
                            out.push(':');
                        }
                        out.push_str(&format!("{:02}", a / 60 % 60));
                    }
                    if secs {
                        if colon {
                            out.push(':');
                        }
                        out.push_str(&format!("{:02}", a % 60));
                    }
                }
            }
            Std::Frac(sep, n, trim) => {
                let ns = format!("{:09}", t.nanosecond().min(999_999_999));
                let mut digits = ns[..n.min(9)].to_string();
                if trim {
                    while digits.ends_with('0') {
                        digits.pop();
                    }
                    if !digits.is_empty() {
                        out.push(sep as char);
                        out.push_str(&digits);
                    }
                } else {
                    out.push(sep as char);
                    out.push_str(&digits);
                }
            }
        }
        rest = &rest[pre + len..];
    }
    out
}

/// `time.Time.String()` (without the monotonic clock suffix).
pub(crate) fn go_time_string(t: &Time) -> String {
    go_format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

/// RFC 3339 with nanoseconds, as `time.Time` marshals to JSON.
pub(crate) fn rfc3339_nano(t: &Time) -> String {
    go_format(t, "2006-01-02T15:04:05.999999999Z07:00")
}

fn take_num(v: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

/// `time.ParseInLocation(layout, value, Local)` with Local = UTC.
pub(crate) fn go_parse(layout: &str, value: &str) -> Result<Time, String> {
    let bad = || format!("parsing time {:?} as {layout:?}: cannot parse", "<value>");
    let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nsec) =
        (1i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut yday: Option<i64> = None;
    let mut lay = layout;
    let mut v = value;
    loop {
        let (pre, chunk) = next_chunk(lay);
        let lit = &lay[..pre];
        v = v.strip_prefix(lit).ok_or_else(bad)?;
        let Some((std, len)) = chunk else {
            if !v.is_empty() {
                return Err(format!("parsing time: extra text after layout {layout:?}"));
            }
            break;
        };
        lay = &lay[pre + len..];
        match std {
            Std::LongYear => {
                let (n, r) = take_num(v, 4, 4).ok_or_else(bad)?;
                year = n;
                v = r;
            }
            Std::Year => {
                let (n, r) = take_num(v, 2, 2).ok_or_else(bad)?;
                year = if n >= 69 { 1900 + n } else { 2000 + n };
                v = r;
            }
            Std::LongMonth | Std::Month => {
                let idx = LONG_MONTHS
                    .iter()
                    .position(|m| {
                        let m = if std == Std::Month { &m[..3] } else { m };
                        v.len() >= m.len() && v[..m.len()].eq_ignore_ascii_case(m)
                    })
                    .ok_or_else(bad)?;
                month = idx as i64 + 1;
                let l = if std == Std::Month {
                    3
                } else {
                    LONG_MONTHS[idx].len()
                };
                v = &v[l..];
            }
            Std::LongWeekDay | Std::WeekDay => {
                let idx = LONG_DAYS
                    .iter()
                    .position(|d| {
                        let d = if std == Std::WeekDay { &d[..3] } else { d };
                        v.len() >= d.len() && v[..d.len()].eq_ignore_ascii_case(d)
                    })
                    .ok_or_else(bad)?;
                let l = if std == Std::WeekDay {
                    3
                } else {
                    LONG_DAYS[idx].len()
                };
                v = &v[l..];
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (n, r) =
                    take_num(v, if std == Std::ZeroMonth { 2 } else { 1 }, 2).ok_or_else(bad)?;
                month = n;
                v = r;
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay {
                    v = v.strip_prefix(' ').unwrap_or(v);
                }
                let (n, r) =
                    take_num(v, if std == Std::ZeroDay { 2 } else { 1 }, 2).ok_or_else(bad)?;
                day = n;
                v = r;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                let t = v.trim_start_matches(' ');
                let (n, r) = take_num(t, 1, 3).ok_or_else(bad)?;
                yday = Some(n);
                v = r;
            }
            Std::Hour | Std::Hour12 | Std::ZeroHour12 => {
                let (n, r) =
                    take_num(v, if std == Std::Hour12 { 1 } else { 2 }, 2).ok_or_else(bad)?;
                hour = n;
                v = r;
            }
            Std::Minute | Std::ZeroMinute => {
                let (n, r) =
                    take_num(v, if std == Std::Minute { 1 } else { 2 }, 2).ok_or_else(bad)?;
                min = n;
                v = r;
            }
            Std::Second | Std::ZeroSecond => {
                let (n, r) =
                    take_num(v, if std == Std::Second { 1 } else { 2 }, 2).ok_or_else(bad)?;
                sec = n;
                v = r;
                // Go accepts fractional seconds after a seconds field even if the layout lacks them.
                if (v.starts_with('.') || v.starts_with(','))
                    && !lay.starts_with('.')
                    && !lay.starts_with(',')
                {
                    let d = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    if d > 0 {
                        nsec = frac_ns(&v[1..1 + d]);
                        v = &v[1 + d..];
                    }
                }
            }
            Std::PM | Std::Pm => {
                let p = v.get(..2).ok_or_else(bad)?.to_ascii_uppercase();
                pm = Some(match p.as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return Err(bad()),
                });
                v = &v[2..];
            }
            Std::TZ => {
                if let Some(r) = v.strip_prefix("UTC") {
                    offset = Some(0);
                    v = r;
                } else {
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return Err(bad());
                    }
                    v = &v[n..];
                }
            }
            Std::Offset(z, colon, secs, hours_only) => {
                if z && v.starts_with('Z') {
                    offset = Some(0);
                    v = &v[1..];
                } else {
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => return Err(bad()),
                    };
                    v = &v[1..];
                    let (h, r) = take_num(v, 2, 2).ok_or_else(bad)?;
                    v = r;
                    let mut m = 0;
                    let mut s_ = 0;
                    if !hours_only {
                        if colon {
                            v = v.strip_prefix(':').ok_or_else(bad)?;
                        }
                        let (mm, r) = take_num(v, 2, 2).ok_or_else(bad)?;
                        m = mm;
                        v = r;
                    }
                    if secs {
                        if colon {
                            v = v.strip_prefix(':').ok_or_else(bad)?;
                        }
                        let (ss, r) = take_num(v, 2, 2).ok_or_else(bad)?;
                        s_ = ss;
                        v = r;
                    }
                    offset = Some(sign * (h * 3600 + m * 60 + s_) as i32);
                }
            }
            Std::Frac(sep, n, trim) => {
                if trim {
                    if v.starts_with(sep as char) {
                        let d = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nsec = frac_ns(&v[1..1 + d]);
                        v = &v[1 + d..];
                    }
                } else {
                    v = v.strip_prefix(sep as char).ok_or_else(bad)?;
                    let d = v.get(..n).ok_or_else(bad)?;
                    if !d.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(bad());
                    }
                    nsec = frac_ns(d);
                    v = &v[n..];
                }
            }
        }
    }
    if let Some(p) = pm {
        if hour > 12 {
            return Err("parsing time: hour out of range".to_string());
        }
        if p && hour < 12 {
            hour += 12;
        } else if !p && hour == 12 {
            hour = 0;
        }
    }
    let date = match yday {
        Some(d) => NaiveDate::from_yo_opt(year as i32, d as u32),
        None => NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32),
    }
    .ok_or_else(|| "parsing time: day out of range".to_string())?;
    let naive = date
        .and_hms_nano_opt(hour as u32, min as u32, sec as u32, nsec as u32)
        .ok_or_else(|| "parsing time: time out of range".to_string())?;
    let off = FixedOffset::east_opt(offset.unwrap_or(0))
        .ok_or_else(|| "parsing time: bad offset".to_string())?;
    off.from_local_datetime(&naive)
        .single()
        .ok_or_else(|| "parsing time: invalid time".to_string())
}

fn frac_ns(d: &str) -> i64 {
    let mut s = d.chars().take(9).collect::<String>();
    while s.len() < 9 {
        s.push('0');
    }
    s.parse().unwrap_or(0)
}

/// `time.Duration.String()`.
pub(crate) fn duration_string(d: i128) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1u128)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_str(u, div));
        out.push_str(unit);
    } else {
        let secs_ns = u % 60_000_000_000;
        let mins_total = u / 60_000_000_000;
        let h = mins_total / 60;
        let m = mins_total % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac_str(secs_ns, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn frac_str(v: u128, div: u128) -> String {
    let ip = v / div;
    let fp = v % div;
    if fp == 0 {
        return ip.to_string();
    }
    let width = div.to_string().len() - 1;
    let mut f = format!("{fp:0width$}");
    while f.ends_with('0') {
        f.pop();
    }
    format!("{ip}.{f}")
}

/// `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let unit = &rest[..u];
        rest = &rest[u..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
    }
    let v = total.round() as i128;
    Some(if neg { -v } else { v })
}

/// Sprig's date argument: a time, or unix seconds; anything else means "now".
fn as_time(v: &Value) -> Time {
    match v {
        Value::Time(t) => *t,
        Value::Int(i) => Utc
            .timestamp_opt(*i, 0)
            .single()
            .map_or_else(now, |t| t.fixed_offset()),
        _ => now(),
    }
}

fn in_zone(t: &Time, zone: &str) -> Result<Time, String> {
    match zone {
        "" | "UTC" | "Local" | "Etc/UTC" | "GMT" | "Etc/GMT" => Ok(utc(t)),
        other => Err(format!(
            "unknown time zone {other:?}: esox supports UTC and Local (UTC) only"
        )),
    }
}

pub(crate) fn time_method(t: &Time, name: &str, args: &[Value]) -> FnResult {
    let want = |n: usize| -> Result<(), String> {
        if args.len() != n {
            return Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ));
        }
        Ok(())
    };
    match name {
        "Unix" => want(0).map(|_| Value::Int(t.timestamp())),
        "UnixNano" => want(0).map(|_| Value::Int(t.timestamp_nanos_opt().unwrap_or(0))),
        "UnixMilli" => want(0).map(|_| Value::Int(t.timestamp_millis())),
        "Year" => want(0).map(|_| Value::Int(i64::from(t.year()))),
        "YearDay" => want(0).map(|_| Value::Int(i64::from(t.ordinal()))),
        "Day" => want(0).map(|_| Value::Int(i64::from(t.day()))),
        "Hour" => want(0).map(|_| Value::Int(i64::from(t.hour()))),
        "Minute" => want(0).map(|_| Value::Int(i64::from(t.minute()))),
        "Second" => want(0).map(|_| Value::Int(i64::from(t.second()))),
        "UTC" | "Local" => want(0).map(|_| Value::Time(utc(t))),
        "String" => want(0).map(|_| Value::str(go_time_string(t))),
        "Format" => {
            want(1)?;
            Ok(Value::str(go_format(t, &st(&args[0])?)))
        }
        "IsZero" => want(0).map(|_| Value::Bool(*t == zero_time())),
        other => Err(format!("can't evaluate field {other} in type time.Time")),
    }
}

fn zero_time() -> Time {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n).fixed_offset())
        .unwrap_or_else(now)
}

pub(crate) fn register(r: &mut Registry) {
    reg(r, "now", 0, |_| Ok(Value::Time(now())));
    reg(r, "date", 2, |a| {
        Ok(Value::str(go_format(&utc(&as_time(&a[1])), &st(&a[0])?)))
    });
    for name in ["dateInZone", "date_in_zone"] {
        reg(r, name, 3, |a| {
            Ok(Value::str(go_format(
                &in_zone(&as_time(&a[1]), &st(&a[2])?)?,
                &st(&a[0])?,
            )))
        });
    }
    reg(r, "htmlDate", 1, |a| {
        Ok(Value::str(go_format(&utc(&as_time(&a[0])), "2006-01-02")))
    });
    reg(r, "htmlDateInZone", 2, |a| {
        Ok(Value::str(go_format(
            &in_zone(&as_time(&a[0]), &st(&a[1])?)?,
            "2006-01-02",
        )))
    });
    reg(r, "unixEpoch", 1, |a| match &a[0] {
        Value::Time(t) => Ok(Value::str(t.timestamp().to_string())),
        other => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )),
    });
    for name in [
        "dateModify",
        "date_modify",
        "mustDateModify",
        "must_date_modify",
    ] {
        let f: fn(Vec<Value>) -> FnResult = if name.starts_with("must") {
            |a| {
                let t = time_arg(&a[1])?;
                let d = parse_duration(&st(&a[0])?).ok_or("time: invalid duration")?;
                add_duration(t, d)
                    .map(Value::Time)
                    .ok_or_else(|| "time out of range".to_string())
            }
        } else {
            |a| {
                let t = time_arg(&a[1])?;
                match parse_duration(&st(&a[0])?) {
                    Some(d) => add_duration(t, d)
                        .map(Value::Time)
                        .ok_or_else(|| "time out of range".to_string()),
                    None => Ok(Value::Time(t)),
                }
            }
        };
        reg(r, name, 2, f);
    }
    reg(r, "toDate", 2, |a| {
        Ok(Value::Time(
            go_parse(&st(&a[0])?, &st(&a[1])?).unwrap_or_else(|_| zero_time()),
        ))
    });
    reg(r, "mustToDate", 2, |a| {
        Ok(Value::Time(go_parse(&st(&a[0])?, &st(&a[1])?)?))
    });
    reg(r, "ago", 1, |a| {
        let t = as_time(&a[0]);
        let d = (now() - t).num_nanoseconds().unwrap_or(0) as i128;
        let rounded = ((d + 500_000_000 * d.signum()) / 1_000_000_000) * 1_000_000_000;
        Ok(Value::str(duration_string(rounded)))
    });
    reg(r, "duration", 1, |a| {
        let secs = match &a[0] {
            Value::Str(b) => String::from_utf8_lossy(b).parse::<i64>().unwrap_or(0),
            other => super::to_i64(other),
        };
        Ok(Value::str(duration_string(
            i128::from(secs) * 1_000_000_000,
        )))
    });
    let _ = s;
}

/// `t + d` without panicking on overflow.
fn add_duration(t: Time, nanos: i128) -> Option<Time> {
    let d = chrono::Duration::nanoseconds(i64::try_from(nanos).ok()?);
    t.checked_add_signed(d)
}

fn time_arg(v: &Value) -> Result<Time, String> {
    match v {
        Value::Time(t) => Ok(*t),
        Value::Nil => Err("invalid value; expected time.Time".into()),
        other => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )),
    }
}
