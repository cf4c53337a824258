//! Kubernetes Events (`events.k8s.io/v1`) for ExternalSecrets and stores.
//!
//! kube-runtime's `Recorder` groups events by object, type, reason and action, but not by note:
//! a second `UpdateFailed` with a new error only counted up the first event's series, so
//! `kubectl describe` kept showing the first error while a different one was happening. Its
//! cache was also swept on every publish (a scan of every cached event, per event, 10,000 of
//! them at a cold start of 10,000 ExternalSecrets). This recorder keys by note too, so a new
//! message is a new Event and a repeated one counts up its own series, cuts notes to the API's
//! 1 KiB limit (longer ones were refused by the API server, and lost), and sweeps its cache at
//! most every 30 seconds, capped in size.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
pub use kube::runtime::events::{Event, EventType, Reporter};
use serde_json::json;

/// The longest note the API server accepts on an `events.k8s.io/v1` Event.
pub const MAX_NOTE_BYTES: usize = 1024;

/// How long a published event is remembered for counting repeats (kube-runtime's value).
const REMEMBER: Duration = Duration::from_secs(6 * 60);

/// How often the cache is swept of events older than [`REMEMBER`].
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Most events remembered at once; past it the oldest are forgotten (a repeat of a forgotten
/// event becomes a new Event, which is harmless).
const MAX_REMEMBERED: usize = 16_384;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    regarding: String,
    warning: bool,
    reason: String,
    action: String,
    note: u64,
}

struct Seen {
    name: String,
    count: i32,
    last: Instant,
}

struct Cache {
    seen: HashMap<Key, Seen>,
    swept: Instant,
}

/// Publishes events, counting repeats of the same message into one Event's series.
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    cache: Mutex<Cache>,
}

/// `note` cut to [`MAX_NOTE_BYTES`] on a character boundary, marked with `…` when cut.
pub fn cut_note(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_string();
    }
    let mut end = MAX_NOTE_BYTES - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            reporter,
            cache: Mutex::new(Cache {
                seen: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publish `ev` about `regarding`: a new Event the first time this message is seen (within
    /// a few minutes), otherwise one more in that Event's series.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let note = ev.note.as_deref().map(cut_note);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = Key {
            namespace: namespace.clone(),
            regarding: format!(
                "{}/{}/{}",
                regarding.kind.as_deref().unwrap_or_default(),
                regarding.name.as_deref().unwrap_or_default(),
                regarding.uid.as_deref().unwrap_or_default()
            ),
            warning: ev.type_ == EventType::Warning,
            reason: ev.reason.clone(),
            action: ev.action.clone(),
            note: {
                let mut h = DefaultHasher::new();
                note.hash(&mut h);
                h.finish()
            },
        };
        let api = Api::<K8sEvent>::namespaced(self.client.clone(), &namespace);
        let repeat = {
            let mut cache = self.lock();
            sweep(&mut cache);
            cache.seen.get_mut(&key).map(|s| {
                s.count += 1;
                s.last = Instant::now();
                (s.name.clone(), s.count)
            })
        };
        if let Some((name, count)) = repeat {
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(Timestamp::now()),
            };
            match api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "series": series })),
                )
                .await
            {
                Ok(_) => return Ok(()),
                // Expired (Events live an hour) or deleted: publish it afresh.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let now = Timestamp::now();
        let event = K8sEvent {
            metadata: ObjectMeta {
                namespace: Some(namespace),
                name: Some(format!(
                    "{}.{:x}",
                    regarding
                        .name
                        .as_deref()
                        .unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note,
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.lock().seen.insert(
            key,
            Seen {
                name,
                count: 1,
                last: Instant::now(),
            },
        );
        Ok(())
    }
}

/// Forget events older than [`REMEMBER`] (at most every [`SWEEP_EVERY`]), and the oldest ones
/// past [`MAX_REMEMBERED`].
fn sweep(cache: &mut Cache) {
    let full = cache.seen.len() >= MAX_REMEMBERED;
    if !full && cache.swept.elapsed() < SWEEP_EVERY {
        return;
    }
    cache.swept = Instant::now();
    cache.seen.retain(|_, s| s.last.elapsed() < REMEMBER);
    if cache.seen.len() >= MAX_REMEMBERED {
        let mut ages: Vec<Instant> = cache.seen.values().map(|s| s.last).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() / 2];
        cache.seen.retain(|_, s| s.last > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_api_limit_on_a_character_boundary() {
        assert_eq!(cut_note("short"), "short");
        let exact = "x".repeat(MAX_NOTE_BYTES);
        assert_eq!(cut_note(&exact), exact);
        let long = "é".repeat(MAX_NOTE_BYTES);
        let cut = cut_note(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.len() > MAX_NOTE_BYTES - 8);
    }

    fn seen(age: Duration) -> Seen {
        Seen {
            name: "e".into(),
            count: 1,
            last: Instant::now() - age,
        }
    }

    fn key(i: usize) -> Key {
        Key {
            namespace: "ns".into(),
            regarding: format!("ExternalSecret/es{i}/uid"),
            warning: true,
            reason: "UpdateFailed".into(),
            action: "Sync".into(),
            note: 0,
        }
    }

    #[test]
    fn the_cache_forgets_old_events_and_stays_bounded() {
        let mut cache = Cache {
            seen: HashMap::new(),
            swept: Instant::now() - SWEEP_EVERY,
        };
        cache
            .seen
            .insert(key(0), seen(REMEMBER + Duration::from_secs(1)));
        cache.seen.insert(key(1), seen(Duration::from_secs(1)));
        sweep(&mut cache);
        assert!(!cache.seen.contains_key(&key(0)));
        assert!(cache.seen.contains_key(&key(1)));

        // Not swept again before SWEEP_EVERY unless full.
        cache
            .seen
            .insert(key(2), seen(REMEMBER + Duration::from_secs(1)));
        sweep(&mut cache);
        assert!(cache.seen.contains_key(&key(2)));

        for i in 0..MAX_REMEMBERED {
            cache
                .seen
                .insert(key(10 + i), seen(Duration::from_millis(i as u64)));
        }
        sweep(&mut cache);
        assert!(
            cache.seen.len() <= MAX_REMEMBERED / 2 + 1,
            "{}",
            cache.seen.len()
        );
        // The newest survive.
        assert!(cache.seen.contains_key(&key(10)));
    }
}
