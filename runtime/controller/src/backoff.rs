//! When to look at an object again: exponential backoff with jitter after failures, and
//! jittered refresh requeues after successes. Pure arithmetic; the randomness is passed in so
//! the rules are testable.
//!
//! Why jitter: after a restart every ExternalSecret with the same `refreshInterval` would come
//! due at the same instant and hit the backend together (ESO users report AWS throttling from
//! exactly that). Spreading requeues by ±10 % and failures over `[d/2, d]` keeps the load flat.

use std::time::Duration;

/// First retry delay after a failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay after repeated failures.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Delay before retry number `failures` (1 = first failure): `base * 2^(failures-1)`, capped,
/// then "equal jitter": a uniform point in `[d/2, d]`. `unit` is a random number in `[0, 1)`.
pub fn failure_delay(failures: u32, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// A refresh delay spread by ±10 %: `unit` in `[0, 1)` maps to `[0.9 d, 1.1 d)`.
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    delay.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
}

/// A cheap random number in `[0, 1)` for jitter (not for anything secret): std's randomly
/// seeded SipHash over a counter.
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static STATE: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = STATE.with(|s| {
        let mut h = s.build_hasher();
        h.write_u64(n);
        h.finish()
    });
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_delay_doubles_from_one_second_with_equal_jitter() {
        assert_eq!(failure_delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(
            failure_delay(1, 0.999_999),
            Duration::from_millis(999) + Duration::from_nanos(999_500)
        );
        assert_eq!(failure_delay(2, 0.0), Duration::from_secs(1));
        assert_eq!(failure_delay(4, 0.5), Duration::from_secs(6));
    }

    #[test]
    fn failure_delay_is_capped_at_five_minutes() {
        assert_eq!(failure_delay(9, 1.0), Duration::from_secs(256));
        assert_eq!(failure_delay(10, 1.0), Duration::from_secs(300));
        assert_eq!(failure_delay(1000, 1.0), Duration::from_secs(300));
        assert_eq!(failure_delay(u32::MAX, 0.0), Duration::from_secs(150));
    }

    #[test]
    fn refresh_jitter_stays_within_ten_percent() {
        let hour = Duration::from_secs(3600);
        assert_eq!(jittered(hour, 0.0), Duration::from_secs(3240));
        assert_eq!(jittered(hour, 0.5), hour);
        assert_eq!(jittered(hour, 1.0), Duration::from_secs(3960));
    }

    #[test]
    fn random_units_are_in_range_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
