//! Counters read from `/metrics` endpoints: the API server's `apiserver_request_total` (all
//! requests, and writes to Secrets and ExternalSecrets), a controller's backend calls, and its
//! `externalsecret_sync_calls_total` series (every ExternalSecret looked at).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Request counts at one moment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Requests {
    /// Every request the API server counted.
    pub total: u64,
    /// POST, PUT, PATCH, APPLY and DELETE on any resource.
    pub writes: u64,
    /// Writes to Secrets and ExternalSecrets (incl. their status).
    pub es_and_secret_writes: u64,
}

impl Requests {
    /// The difference `self - earlier`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests {
            total: self.total.saturating_sub(earlier.total),
            writes: self.writes.saturating_sub(earlier.writes),
            es_and_secret_writes: self
                .es_and_secret_writes
                .saturating_sub(earlier.es_and_secret_writes),
        }
    }
}

/// Scrapes the API server's `/metrics` with `client` (the admin identity).
pub async fn scrape(client: &kube::Client) -> anyhow::Result<Requests> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(parse_requests(&text))
}

const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

pub fn parse_requests(text: &str) -> Requests {
    let mut out = Requests::default();
    for (labels, value) in samples(text, "apiserver_request_total") {
        let value = value as u64;
        out.total += value;
        let verb = labels.get("verb").map(String::as_str).unwrap_or("");
        if WRITE_VERBS.contains(&verb) {
            out.writes += value;
            if matches!(
                labels.get("resource").map(String::as_str),
                Some("secrets" | "externalsecrets")
            ) {
                out.es_and_secret_writes += value;
            }
        }
    }
    out
}

/// Every sample of metric `name` (exact name, with labels) in a Prometheus text exposition.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.split_once("} ") {
                Some((labels, value)) => (parse_labels(labels), value),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(value) => (BTreeMap::new(), value),
                None => continue,
            },
        };
        if let Some(v) = value.split_whitespace().next().and_then(|v| v.parse().ok()) {
            out.push((labels, v));
        }
    }
    out
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    out
}

/// The text of a `/metrics` endpoint.
pub async fn get(url: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

/// The backend calls a controller made so far: esox's `esox_plugin_calls_total` (every plugin
/// and call) or ESO's `externalsecret_provider_api_calls_count` (every provider, call and
/// status); `None` for a controller with neither (ESO's fake provider counts no API calls).
pub async fn backend_calls(url: &str) -> Option<u64> {
    parse_backend_calls(&get(url).await.ok()?)
}

/// esox exports both series (the second for ESO's dashboards, counting the same calls), so
/// its own wins; ESO has only the second.
pub fn parse_backend_calls(text: &str) -> Option<u64> {
    [
        "esox_plugin_calls_total",
        "externalsecret_provider_api_calls_count",
    ]
    .iter()
    .map(|name| samples(text, name))
    .find(|calls| !calls.is_empty())
    .map(|calls| calls.iter().map(|(_, v)| *v as u64).sum())
}

/// The ExternalSecrets a controller has looked at since it started: a series in
/// `externalsecret_sync_calls_total` (ESO counts every reconcile there; esox only syncs) or a
/// Ready=True `externalsecret_status_condition` gauge (esox sets it when it finds the Secret
/// intact and skips the sync).
pub fn looked_at(text: &str) -> usize {
    let mut names = std::collections::BTreeSet::new();
    for (labels, v) in samples(text, "externalsecret_sync_calls_total") {
        if v >= 1.0 {
            names.insert((
                labels.get("namespace").cloned(),
                labels.get("name").cloned(),
            ));
        }
    }
    for (labels, v) in samples(text, "externalsecret_status_condition") {
        let ready = labels.get("condition").map(String::as_str) == Some("Ready")
            && labels.get("status").map(String::as_str) == Some("True");
        if ready && v >= 1.0 {
            names.insert((
                labels.get("namespace").cloned(),
                labels.get("name").cloned(),
            ));
        }
    }
    names.len()
}

/// Waits until the controller has looked at `count` ExternalSecrets (see [`looked_at`]).
pub async fn wait_for_looked_at(url: &str, count: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while Instant::now() < deadline {
        if let Ok(text) = get(url).await {
            seen = looked_at(&text);
            if seen >= count {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the controller looked at {seen} of {count} ExternalSecrets within {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",group="",resource="secrets",scope="resource",subresource="",verb="APPLY",version="v1"} 10
apiserver_request_total{code="200",component="apiserver",group="external-secrets.io",resource="externalsecrets",scope="resource",subresource="status",verb="PATCH",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",group="",resource="secrets",scope="cluster",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total_other 99
"#;

    #[test]
    fn counts_all_requests_writes_and_those_on_our_resources() {
        let r = parse_requests(TEXT);
        assert_eq!(r.total, 25);
        assert_eq!(r.writes, 22);
        assert_eq!(r.es_and_secret_writes, 15);
        let later = Requests {
            total: 30,
            writes: 22,
            es_and_secret_writes: 15,
        };
        assert_eq!(later.since(&r).total, 5);
        assert_eq!(later.since(&r).writes, 0);
    }

    #[test]
    fn looked_at_counts_each_external_secret_once() {
        let text = r#"externalsecret_sync_calls_total{name="a",namespace="n"} 2
externalsecret_sync_calls_total{name="b",namespace="n"} 0
externalsecret_status_condition{name="a",namespace="n",condition="Ready",status="True"} 1
externalsecret_status_condition{name="c",namespace="n",condition="Ready",status="True"} 1
externalsecret_status_condition{name="d",namespace="n",condition="Ready",status="False"} 1
externalsecret_status_condition{name="e",namespace="n",condition="Ready",status="True"} 0
"#;
        assert_eq!(looked_at(text), 2);
    }

    #[test]
    fn backend_calls_of_esox_and_eso() {
        let esox = "esox_plugin_calls_total{plugin=\"aws\",call=\"get\"} 100\nesox_plugin_calls_total{plugin=\"aws\",call=\"validate\"} 2\n";
        assert_eq!(parse_backend_calls(esox), Some(102));
        let eso = "# TYPE externalsecret_provider_api_calls_count counter\nexternalsecret_provider_api_calls_count{call=\"GetSecretValue\",provider=\"AWS/SecretsManager\",status=\"success\"} 1000\n";
        assert_eq!(parse_backend_calls(eso), Some(1000));
        let both = format!(
            "{esox}externalsecret_provider_api_calls_count{{call=\"get-secrets\",provider=\"aws\",status=\"success\"}} 100\n"
        );
        assert_eq!(
            parse_backend_calls(&both),
            Some(102),
            "esox's own series wins"
        );
        assert_eq!(
            parse_backend_calls("controller_runtime_reconcile_total 3\n"),
            None
        );
    }

    #[test]
    fn labels_with_escapes_and_commas() {
        let labels = parse_labels(r#"a="x,y",b="say \"hi\"""#);
        assert_eq!(labels["a"], "x,y");
        assert_eq!(labels["b"], "say \"hi\"");
    }
}
