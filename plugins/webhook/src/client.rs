//! One store's client: reads the `secrets[]` keys through the host, renders the request as ESO's
//! `GetWebhookData` does, sends it over wasi:http and reads the answer ([`crate::response`]).

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use esox_plugin_sdk::{
    Error, FindQuery, RemoteRef, SecretClient, SecretMap, StoreContext, Validation, host, http,
};
use wstd::future::FutureExt as _;

use crate::config::WebhookConfig;
use crate::response;
use crate::template::{self, SecretData};

/// A request ready to send: everything rendered. Holds secret values: never log it.
#[derive(Clone, PartialEq)]
pub struct Prepared {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("method", &self.method)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The webhook store's client.
pub struct WebhookClient {
    config: WebhookConfig,
    /// `.remoteRef.namespace`: the namespace of the ExternalSecret being synced.
    namespace: String,
    /// A ClusterSecretStore reads each Secret from the namespace its reference names.
    cluster: bool,
}

impl WebhookClient {
    /// A client for `store`. ESO's rule: a ClusterSecretStore must name the namespace of every
    /// `secrets[]` Secret; a SecretStore reads them from its own namespace.
    pub fn new(config: WebhookConfig, store: &StoreContext) -> Result<Self, Error> {
        let cluster = store.is_cluster_store();
        if cluster && config.ca_provider_namespace == Some(None) {
            return Err(Error::invalid_config(
                "caProvider.namespace",
                "a ClusterSecretStore must name the namespace of its caProvider",
            ));
        }
        for (i, s) in config.secrets.iter().enumerate() {
            let written = s.secret_ref.namespace.as_deref().filter(|n| !n.is_empty());
            let field = || format!("secrets[{i}].secretRef.namespace");
            if cluster && written.is_none() {
                return Err(Error::invalid_config(
                    field(),
                    "a ClusterSecretStore must name the namespace of each webhook secret",
                ));
            }
            // ESO reads a SecretStore's webhook secrets from the store's namespace whatever the
            // reference says; the host grants what the reference says, so refuse the mismatch.
            if !cluster && written.is_some() && written != store.namespace.as_deref() {
                return Err(Error::invalid_config(
                    field(),
                    "a SecretStore reads webhook secrets from its own namespace: leave namespace out",
                ));
            }
        }
        let namespace = store
            .namespace
            .as_deref()
            .or(store.referent_namespace.as_deref())
            .unwrap_or_default()
            .to_string();
        Ok(WebhookClient {
            config,
            namespace,
            cluster,
        })
    }

    /// The keys of the `secrets[]` Secrets that the templates read, through the host.
    fn load_secrets(&self) -> Result<SecretData, Error> {
        let mut data = SecretData::new();
        for s in &self.config.secrets {
            let namespace = if self.cluster {
                s.secret_ref.namespace.as_deref()
            } else {
                None
            };
            let mut values = BTreeMap::new();
            for key in &s.keys {
                values.insert(
                    key.clone(),
                    host::secret_key(&s.secret_ref.name, key, namespace)?,
                );
            }
            data.insert(s.name.clone(), values);
        }
        Ok(data)
    }

    /// Render the request for `remote` (ESO's `GetWebhookData` up to sending it).
    pub fn prepare(&self, remote: &RemoteRef, secrets: &SecretData) -> Result<Prepared, Error> {
        let escaped = template::data(remote, &self.namespace, secrets, true);
        let raw = template::data(remote, &self.namespace, secrets, false);
        let url = template::render("url", &self.config.url, &escaped)?;
        let url = String::from_utf8(url)
            .map_err(|_| Error::invalid_config("url", "the rendered url is not UTF-8 text"))?;
        let body = template::render("body", &self.config.body, &raw)?;
        let mut headers = Vec::new();
        for (name, value) in &self.config.headers {
            let value = template::render(&format!("headers.{name}"), value, &raw)?;
            headers.push((name.clone(), value));
        }
        let (url, userinfo) = split_userinfo(url.trim())?;
        // Go's client sends URL credentials as basic auth unless a header set Authorization.
        if let Some((user, password)) = userinfo
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            let mut pair = user;
            pair.push(b':');
            pair.extend(password);
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            headers.push((
                "Authorization".to_string(),
                format!("Basic {encoded}").into_bytes(),
            ));
        }
        Ok(Prepared {
            method: self.config.method.clone(),
            url,
            headers,
            body,
        })
    }

    /// The rendered `result.jsonPath` for `remote` (ESO renders it with the raw data).
    pub fn json_path(&self, remote: &RemoteRef, secrets: &SecretData) -> Result<String, Error> {
        let raw = template::data(remote, &self.namespace, secrets, false);
        let path = template::render("result.jsonPath", &self.config.json_path, &raw)?;
        String::from_utf8(path).map_err(|_| {
            Error::invalid_config("result.jsonPath", "the rendered path is not UTF-8 text")
        })
    }

    /// Send a prepared request and return the answer's body, or the error its status means.
    async fn send(&self, p: Prepared) -> Result<Vec<u8>, Error> {
        let method = http::Method::from_bytes(p.method.as_bytes())
            .map_err(|_| Error::invalid_config("method", "not a valid HTTP method"))?;
        let uri: http::Uri = p
            .url
            .parse()
            .map_err(|_| Error::invalid_config("url", "the rendered url is not a valid URL"))?;
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in &p.headers {
            let value = http::HeaderValue::from_bytes(value).map_err(|_| {
                Error::invalid_config(
                    format!("headers.{name}"),
                    "the rendered value is not a valid header value (line breaks or control characters)",
                )
            })?;
            builder = builder.header(name.as_str(), value);
        }
        let body = if p.body.is_empty() {
            http::body::Body::empty()
        } else {
            http::body::Body::from(p.body)
        };
        let request = builder
            .body(body)
            .map_err(|_| Error::invalid_config("", "the rendered request is not valid"))?;
        let exchange = async move {
            let mut response = http::Client::new()
                .send(request)
                .await
                .map_err(|e| Error::http("calling the webhook", &e))?;
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if let Some(e) =
                response::status_error(response.status().as_u16(), retry_after.as_deref())
            {
                return Err(e);
            }
            response
                .body_mut()
                .contents()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| Error::http("reading the webhook's answer", &e))
        };
        match self.config.timeout {
            None => exchange.await,
            Some(limit) => exchange
                .timeout(wstd::time::Duration::from(limit))
                .await
                .map_err(|_| {
                    Error::unavailable(format!(
                        "the webhook did not answer within the store's timeout ({limit:?})"
                    ))
                })?,
        }
    }

    fn fetch(&self, remote: &RemoteRef, secrets: &SecretData) -> Result<Vec<u8>, Error> {
        let prepared = self.prepare(remote, secrets)?;
        esox_plugin_sdk::block_on(self.send(prepared))
    }

    fn get_secret_with(&self, remote: &RemoteRef, secrets: &SecretData) -> Result<Vec<u8>, Error> {
        let body = self.fetch(remote, secrets)?;
        response::secret_value(&body, &self.json_path(remote, secrets)?)
    }
}

/// What one request fetches: key, property and version all shape it.
type RequestIdentity = (String, Option<String>, Option<String>);

/// A URL without its userinfo, and the userinfo (percent-decoded user and password).
type Userinfo = (Vec<u8>, Vec<u8>);

fn split_userinfo(url: &str) -> Result<(String, Option<Userinfo>), Error> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::invalid_config(
            "url",
            "the rendered url must be an absolute http:// or https:// URL",
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Error::invalid_config(
            "url",
            "the rendered url must be an http:// or https:// URL",
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((userinfo, host)) = rest[..end].rsplit_once('@') else {
        return Ok((url.to_string(), None));
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let bad = || Error::invalid_config("url", "the rendered url's user information is malformed");
    let user = template::percent_decode(user).ok_or_else(bad)?;
    let password = template::percent_decode(password).ok_or_else(bad)?;
    Ok((
        format!("{scheme}://{host}{}", &rest[end..]),
        Some((user, password)),
    ))
}

impl SecretClient for WebhookClient {
    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        let secrets = self.load_secrets()?;
        self.get_secret_with(remote, &secrets)
    }

    /// `remote.property` is template data, not a selection inside the answer: each distinct
    /// reference is one request (the SDK's default would drop the property from the request).
    fn get_secrets(&self, remotes: &[RemoteRef]) -> Vec<Result<Vec<u8>, Error>> {
        let secrets = match self.load_secrets() {
            Ok(s) => s,
            Err(e) => return remotes.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut done: HashMap<RequestIdentity, Result<Vec<u8>, Error>> = HashMap::new();
        remotes
            .iter()
            .map(|r| {
                done.entry((r.key.clone(), r.property.clone(), r.version.clone()))
                    .or_insert_with(|| self.get_secret_with(r, &secrets))
                    .clone()
            })
            .collect()
    }

    /// ESO's `GetSecretMap`: the answer (at `result.jsonPath`) as an object's entries.
    fn get_secret_map(&self, remote: &RemoteRef) -> Result<SecretMap, Error> {
        let secrets = self.load_secrets()?;
        let path = self.json_path(remote, &secrets)?;
        let body = self.fetch(remote, &secrets)?;
        response::secret_map(&body, &path)
    }

    /// ESO's webhook provider does not implement `dataFrom.find`.
    fn get_all_secrets(&self, _query: &FindQuery) -> Result<SecretMap, Error> {
        Err(Error::unsupported(
            "get-all-secrets (dataFrom.find): not implemented by the webhook provider",
        ))
    }

    /// ESO dials the URL's host; the sandbox offers HTTP only, and a request needs a reference,
    /// so the store cannot be checked on its own.
    fn validate(&self) -> Result<Validation, Error> {
        Ok(Validation::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::MetadataPolicy;
    use serde_json::json;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    fn client(config: serde_json::Value, store: &StoreContext) -> Result<WebhookClient, Error> {
        WebhookClient::new(WebhookConfig::parse(&config)?, store)
    }

    fn remote(key: &str, property: Option<&str>) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            property: property.map(str::to_string),
            version: None,
            metadata_policy: MetadataPolicy::None,
        }
    }

    fn secrets() -> SecretData {
        let mut auth = BTreeMap::new();
        auth.insert("token".to_string(), SECRET.as_bytes().to_vec());
        let mut s = SecretData::new();
        s.insert("auth".to_string(), auth);
        s
    }

    #[test]
    fn requests_are_rendered_as_eso_renders_them() {
        let c = client(
            json!({
                "method": "POST",
                "url": "https://api.example.com/v1/{{ .remoteRef.key }}?p={{ .remoteRef.property }}",
                "headers": {
                    "Authorization": "Bearer {{ .auth.token }}",
                    "X-Namespace": "{{ .remoteRef.namespace }}"
                },
                "body": "{\"key\": \"{{ .remoteRef.key }}\"}",
                "result": {"jsonPath": "$.data.{{ .remoteRef.property }}"},
                "secrets": [{"name": "auth", "secretRef": {"name": "creds"}}]
            }),
            &StoreContext::secret_store("team-a", "store"),
        )
        .unwrap();
        let r = remote("db/pass word", Some("value"));
        let p = c.prepare(&r, &secrets()).unwrap();
        assert_eq!(p.method, "POST");
        assert_eq!(p.url, "https://api.example.com/v1/db%2Fpass+word?p=value");
        assert_eq!(p.body, br#"{"key": "db/pass word"}"#);
        assert_eq!(
            p.headers,
            [
                (
                    "Authorization".to_string(),
                    format!("Bearer {SECRET}").into_bytes()
                ),
                ("X-Namespace".to_string(), b"team-a".to_vec()),
            ]
        );
        assert!(!format!("{p:?}").contains(SECRET));
        assert_eq!(c.json_path(&r, &secrets()).unwrap(), "$.data.value");
    }

    #[test]
    fn url_credentials_become_basic_auth_unless_a_header_sets_it() {
        let c = client(
            json!({"url": "https://u%40x:p%3Aw@h.example.com:8443/get?k={{ .remoteRef.key }}"}),
            &StoreContext::secret_store("ns", "s"),
        )
        .unwrap();
        let p = c.prepare(&remote("k", None), &SecretData::new()).unwrap();
        assert_eq!(p.url, "https://h.example.com:8443/get?k=k");
        // base64("u@x:p:w")
        assert_eq!(
            p.headers,
            [("Authorization".to_string(), b"Basic dUB4OnA6dw==".to_vec())]
        );
        let c = client(
            json!({"url": "https://u:p@h/x", "headers": {"authorization": "Bearer t"}}),
            &StoreContext::secret_store("ns", "s"),
        )
        .unwrap();
        let p = c.prepare(&remote("k", None), &SecretData::new()).unwrap();
        assert_eq!(p.headers.len(), 1);
        assert_eq!(p.headers[0].1, b"Bearer t");
    }

    #[test]
    fn a_rendered_url_must_stay_http() {
        let c = client(
            json!({"url": "{{ .remoteRef.key }}"}),
            &StoreContext::secret_store("ns", "s"),
        )
        .unwrap();
        let err = c
            .prepare(&remote("file:///etc/passwd", None), &SecretData::new())
            .unwrap_err();
        assert_eq!(err.config_field(), Some("url"));
        assert!(!format!("{err:?}").contains("passwd"));
    }

    #[test]
    fn a_cluster_stores_ca_provider_names_its_namespace() {
        let config = |ca: serde_json::Value| json!({"url": "https://h/x", "caProvider": ca});
        let err = client(
            config(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt"})),
            &StoreContext::cluster_secret_store("c", Some("team")),
        )
        .err()
        .unwrap();
        assert_eq!(err.config_field(), Some("caProvider.namespace"));
        client(
            config(
                json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt", "namespace": "infra"}),
            ),
            &StoreContext::cluster_secret_store("c", Some("team")),
        )
        .unwrap();
        client(
            config(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt"})),
            &StoreContext::secret_store("team", "s"),
        )
        .unwrap();
    }

    #[test]
    fn cluster_stores_need_secret_namespaces() {
        let config = json!({
            "url": "https://h/{{ .auth.token }}",
            "secrets": [{"name": "auth", "secretRef": {"name": "creds"}}]
        });
        let err = client(
            config.clone(),
            &StoreContext::cluster_secret_store("c", Some("team")),
        )
        .err()
        .unwrap();
        assert_eq!(err.config_field(), Some("secrets[0].secretRef.namespace"));
        client(config, &StoreContext::secret_store("team", "s")).unwrap();
        let foreign = json!({
            "url": "https://h/{{ .auth.token }}",
            "secrets": [{"name": "auth", "secretRef": {"name": "creds", "namespace": "other"}}]
        });
        let err = client(foreign.clone(), &StoreContext::secret_store("team", "s"))
            .err()
            .unwrap();
        assert_eq!(err.config_field(), Some("secrets[0].secretRef.namespace"));
        client(foreign, &StoreContext::secret_store("other", "s")).unwrap();
        let with_ns = json!({
            "url": "https://h/{{ .auth.token }}",
            "secrets": [{"name": "auth", "secretRef": {"name": "creds", "namespace": "infra"}}]
        });
        let c = client(
            with_ns,
            &StoreContext::cluster_secret_store("c", Some("team")),
        )
        .unwrap();
        assert_eq!(c.namespace, "team");
    }

    #[test]
    fn find_is_unsupported_and_validation_is_unknown() {
        let c = client(
            json!({"url": "https://h/x"}),
            &StoreContext::secret_store("n", "s"),
        )
        .unwrap();
        let q = FindQuery {
            name_regexp: Some(".*".into()),
            path: None,
            tags: vec![],
        };
        assert!(matches!(c.get_all_secrets(&q), Err(Error::Unsupported(_))));
        assert!(matches!(c.validate(), Ok(Validation::Unknown)));
    }

    #[test]
    fn malformed_userinfo_is_refused_without_quoting() {
        let err = split_userinfo(&format!("https://u:{SECRET}%zz@h/x")).unwrap_err();
        assert_eq!(err.config_field(), Some("url"));
        assert!(!format!("{err:?}").contains(SECRET));
    }
}
