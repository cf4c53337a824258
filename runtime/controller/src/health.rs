//! What `/readyz` and `/healthz` answer, from the watches themselves and a probe of the API
//! server.
//!
//! - **Ready** once every watch cache has its first full list, no watch has been failing for
//!   longer than [`READY_WATCH_GRACE`], and the API server answered the last probe: a rollout
//!   waits for a warm controller, and a Service stops sending to one that lost the API server.
//! - **Live** unless a watch has been failing for longer than [`LIVE_WATCH_GRACE`] while the
//!   API server itself answers: that is a controller that cannot recover by itself (its
//!   permissions were revoked, a stream is stuck), which a restart fixes. An API server that
//!   is down is not a reason to restart: every replica would fail the same way, so liveness
//!   stays green and readiness says what is wrong.
//!
//! Each answer lists its checks, one per line (`[+]watch ExternalSecret ok`,
//! `[-]apiserver: ...`), like the API server's own health endpoints.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a watch may fail before the controller reports not ready.
pub const READY_WATCH_GRACE: Duration = Duration::from_secs(15);
/// How long a watch may fail, with the API server reachable, before the controller reports
/// not live.
pub const LIVE_WATCH_GRACE: Duration = Duration::from_secs(300);
/// How often the API server is probed (`GET /version`).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// How old the last successful probe may be for the controller to be ready.
pub const PROBE_STALE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Default)]
struct Watch {
    synced: bool,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Probe {
    last_ok: Option<Instant>,
    last_error: Option<String>,
}

/// The controller's health, fed by the watch streams and the API probe.
#[derive(Debug, Default)]
pub struct Health {
    watches: Mutex<BTreeMap<&'static str, Watch>>,
    probe: Mutex<Probe>,
    unsynced: AtomicUsize,
    standby: AtomicBool,
}

impl Health {
    /// Health for these watches (their names appear in the answers).
    pub fn new(watches: &[&'static str]) -> Self {
        Health {
            watches: Mutex::new(watches.iter().map(|w| (*w, Watch::default())).collect()),
            probe: Mutex::new(Probe::default()),
            unsynced: AtomicUsize::new(watches.len()),
            standby: AtomicBool::new(false),
        }
    }

    /// Whether this replica waits for the leader election's lease (its watches not started):
    /// a standby is ready (a rollout must not wait on it) when the API server answers.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Release);
    }

    fn with_watch(&self, name: &'static str, f: impl FnOnce(&mut Watch)) {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        f(watches.entry(name).or_default());
    }

    /// The watch delivered its first full list. Returns true when it was the last one.
    pub fn synced(&self, name: &'static str) -> bool {
        let mut first = false;
        self.with_watch(name, |w| {
            first = !w.synced;
            w.synced = true;
        });
        first && self.unsynced.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The watch delivered an event: whatever failed before has recovered.
    pub fn watch_ok(&self, name: &'static str) {
        self.with_watch(name, |w| {
            w.failing_since = None;
        });
    }

    /// The watch failed (it retries with backoff).
    pub fn watch_failed(&self, name: &'static str, error: &str, now: Instant) {
        self.with_watch(name, |w| {
            w.failing_since.get_or_insert(now);
            w.last_error = Some(error.chars().take(300).collect());
        });
    }

    /// The API server answered a probe.
    pub fn probe_ok(&self, now: Instant) {
        let mut p = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        p.last_ok = Some(now);
        p.last_error = None;
    }

    /// A probe failed.
    pub fn probe_failed(&self, error: &str) {
        let mut p = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        p.last_error = Some(error.chars().take(300).collect());
    }

    fn api_reachable(&self, now: Instant) -> Result<(), String> {
        let p = self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match (p.last_ok, p.last_error) {
            (Some(t), _) if now.saturating_duration_since(t) <= PROBE_STALE => Ok(()),
            (_, Some(e)) => Err(format!("apiserver: unreachable: {e}")),
            (Some(t), None) => Err(format!(
                "apiserver: no answer for {}s",
                now.saturating_duration_since(t).as_secs()
            )),
            (None, None) => Err("apiserver: not probed yet".into()),
        }
    }

    /// `/readyz`: `Ok(report)` or `Err(report)`, one check per line.
    pub fn readiness(&self, now: Instant) -> Result<String, String> {
        let mut lines = Vec::new();
        let mut ok = true;
        let standby = self.standby.load(Ordering::Acquire);
        if standby {
            lines.push("[+]leader election: standby, waiting for the lease".into());
        }
        let watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        for (name, w) in watches.iter().filter(|_| !standby) {
            let failing = w
                .failing_since
                .filter(|t| now.saturating_duration_since(*t) > READY_WATCH_GRACE);
            if let Some(t) = failing {
                ok = false;
                lines.push(format!(
                    "[-]watch {name}: failing for {}s: {}",
                    now.saturating_duration_since(t).as_secs(),
                    w.last_error.as_deref().unwrap_or("")
                ));
            } else if !w.synced {
                ok = false;
                lines.push(format!("[-]watch {name}: first list not complete"));
            } else {
                lines.push(format!("[+]watch {name} ok"));
            }
        }
        match self.api_reachable(now) {
            Ok(()) => lines.push("[+]apiserver ok".into()),
            Err(e) => {
                ok = false;
                lines.push(format!("[-]{e}"));
            }
        }
        report(ok, lines)
    }

    /// `/healthz`: `Ok(report)` or `Err(report)`, one check per line.
    pub fn liveness(&self, now: Instant) -> Result<String, String> {
        let api = self.api_reachable(now);
        let mut lines = Vec::new();
        let mut ok = true;
        for (name, w) in self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            match w.failing_since {
                Some(t) if api.is_ok() && now.saturating_duration_since(t) > LIVE_WATCH_GRACE => {
                    ok = false;
                    lines.push(format!(
                        "[-]watch {name}: failing for {}s while the API server answers: {}",
                        now.saturating_duration_since(t).as_secs(),
                        w.last_error.as_deref().unwrap_or("")
                    ));
                }
                _ => lines.push(format!("[+]watch {name} ok")),
            }
        }
        report(ok, lines)
    }
}

fn report(ok: bool, mut lines: Vec<String>) -> Result<String, String> {
    lines.push(if ok { "ok" } else { "failed" }.into());
    let text = lines.join("\n") + "\n";
    if ok { Ok(text) } else { Err(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(names: &[&'static str]) -> Health {
        let h = Health::new(names);
        for n in names {
            h.synced(n);
        }
        h
    }

    #[test]
    fn ready_only_after_every_first_list_and_an_api_answer() {
        let h = Health::new(&["ExternalSecret", "SecretStore"]);
        let now = Instant::now();
        h.probe_ok(now);
        assert!(h.readiness(now).is_err());
        assert!(!h.synced("ExternalSecret"));
        assert!(
            !h.synced("ExternalSecret"),
            "a second list does not count twice"
        );
        let err = h.readiness(now).unwrap_err();
        assert!(
            err.contains("[-]watch SecretStore: first list not complete"),
            "{err}"
        );
        assert!(h.synced("SecretStore"), "the last first list reports it");
        let ok = h.readiness(now).unwrap();
        assert!(
            ok.contains("[+]watch ExternalSecret ok") && ok.ends_with("ok\n"),
            "{ok}"
        );
    }

    #[test]
    fn a_watch_failing_past_the_grace_is_not_ready_until_it_recovers() {
        let h = synced(&["ExternalSecret"]);
        let t0 = Instant::now();
        h.probe_ok(t0 + Duration::from_secs(20));
        h.watch_failed("ExternalSecret", "403 Forbidden", t0);
        assert!(
            h.readiness(t0 + Duration::from_secs(5)).is_ok(),
            "within the grace"
        );
        let err = h.readiness(t0 + Duration::from_secs(20)).unwrap_err();
        assert!(err.contains("failing for 20s: 403 Forbidden"), "{err}");
        h.watch_ok("ExternalSecret");
        assert!(h.readiness(t0 + Duration::from_secs(21)).is_ok());
    }

    #[test]
    fn an_unreachable_api_server_is_not_ready_but_still_live() {
        let h = synced(&["ExternalSecret"]);
        let t0 = Instant::now();
        h.probe_ok(t0);
        h.probe_failed("connection refused");
        h.watch_failed("ExternalSecret", "connection refused", t0);
        let later = t0 + LIVE_WATCH_GRACE + Duration::from_secs(60);
        let err = h.readiness(later).unwrap_err();
        assert!(
            err.contains("[-]apiserver: unreachable: connection refused"),
            "{err}"
        );
        assert!(
            h.liveness(later).is_ok(),
            "a restart would not bring the API server back"
        );
    }

    #[test]
    fn a_watch_failing_for_long_while_the_api_answers_is_not_live() {
        let h = synced(&["Secret"]);
        let t0 = Instant::now();
        h.watch_failed("Secret", "secrets is forbidden", t0);
        let later = t0 + LIVE_WATCH_GRACE + Duration::from_secs(1);
        h.probe_ok(later);
        let err = h.liveness(later).unwrap_err();
        assert!(err.contains("[-]watch Secret: failing for 301s"), "{err}");
        assert!(h.liveness(t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn a_standby_is_ready_without_watches_while_the_api_answers() {
        let h = Health::new(&["ExternalSecret"]);
        let t0 = Instant::now();
        h.set_standby(true);
        assert!(
            h.readiness(t0).is_err(),
            "not before the API server answered"
        );
        h.probe_ok(t0);
        let ok = h.readiness(t0).unwrap();
        assert!(ok.contains("[+]leader election: standby"), "{ok}");
        h.set_standby(false);
        assert!(h.readiness(t0).is_err(), "leading: the watches count again");
    }

    #[test]
    fn a_stale_probe_is_not_ready() {
        let h = synced(&["ExternalSecret"]);
        let t0 = Instant::now();
        h.probe_ok(t0);
        assert!(h.readiness(t0 + PROBE_STALE).is_ok());
        let err = h
            .readiness(t0 + PROBE_STALE + Duration::from_secs(1))
            .unwrap_err();
        assert!(err.contains("no answer for 31s"), "{err}");
    }
}
