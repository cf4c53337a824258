//! Go duration strings (`"1h"`, `"1h30m"`, `"0"`, `"1.5s"`), the format ESO's API uses for
//! `refreshInterval`, `syncWindows[].duration` and `retrySettings.retryInterval`.
//!
//! The fields stay `String`s in the API types so that deserialising a stored object never fails
//! on a value the API server accepted; this module turns them into [`std::time::Duration`] where
//! the controller needs a number, with Go's `time.ParseDuration` grammar.

use std::time::Duration;

/// The regular expression the CRDs use to refuse strings that are not Go durations.
/// Mirrors `time.ParseDuration`: an optional sign, then `0` or one or more `<number><unit>`.
pub const GO_DURATION_PATTERN: &str =
    r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/// Why a string is not a usable duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string does not follow Go's duration grammar.
    #[error(
        "invalid duration {0:?}: use a Go duration such as \"1h\", \"30m\", \"1h30m\" or \"0\""
    )]
    Invalid(String),
    /// Go accepts negative durations, but no field of this API means anything by them.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// More than Go's `time.Duration` can hold (about 292 years).
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Parses a Go duration string (`time.ParseDuration`) into a non-negative [`Duration`].
///
/// ```
/// use std::time::Duration;
/// use esox_api::duration::parse_go_duration;
/// assert_eq!(parse_go_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
/// assert_eq!(parse_go_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// ```
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(s.to_string());
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    let mut chars = rest;
    while !chars.is_empty() {
        // number: digits, optional '.', digits (at least one digit overall)
        let num_len = chars
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(chars.len());
        let number = &chars[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        chars = &chars[num_len..];
        let unit_len = chars
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(chars.len());
        let unit = &chars[..unit_len];
        chars = &chars[unit_len..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(invalid()),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| DurationError::Overflow(s.to_string()))?
        };
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
        // Fraction: Go keeps precision down to the nanosecond and truncates the rest.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
    }
    if total_nanos > i64::MAX as u128 {
        return Err(DurationError::Overflow(s.to_string()));
    }
    if negative && total_nanos > 0 {
        return Err(DurationError::Negative(s.to_string()));
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's `time.Duration.String()` does for whole seconds and above
/// (`1h0m0s`, `15m0s`, `30s`, `0s`), which is how ESO writes defaults back.
pub fn format_go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let subsec = d.subsec_nanos();
    if total == 0 && subsec == 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let secs = if subsec == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{subsec:09}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_durations_eso_manifests_use() {
        let cases = [
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1h0m0s", 3_600_000),
            ("15s", 15_000),
            ("0", 0),
            ("0s", 0),
            ("-0", 0),
            ("+5m", 300_000),
            ("1.5s", 1500),
            (".5s", 500),
            ("5.s", 5000),
            ("300ms", 300),
            ("2h45m0.5s", 9_900_500),
            ("1m30s", 90_000),
        ];
        for (input, millis) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_millis(millis)),
                "{input}"
            );
        }
        assert_eq!(parse_go_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_go_duration("1µs"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_go_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for input in ["", "1", "h", "1d", "1hh", "1.2.3s", "abc", "1 h", "-", "."] {
            assert!(
                matches!(parse_go_duration(input), Err(DurationError::Invalid(_))),
                "{input:?}"
            );
        }
        assert!(matches!(
            parse_go_duration("-1h"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("3000000h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_like_go_duration_string() {
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn crd_pattern_agrees_with_the_parser_on_examples() {
        // The pattern is checked by the API server; keep it in step with the parser.
        let re = regex::Regex::new(GO_DURATION_PATTERN).unwrap();
        for ok in [
            "1h", "1h30m", "0", "15s", "1.5s", ".5s", "300ms", "-0", "1µs",
        ] {
            assert!(re.is_match(ok), "{ok}");
            assert!(parse_go_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1", "1d", "abc", "1 h", "1.2.3s"] {
            assert!(!re.is_match(bad), "{bad}");
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
