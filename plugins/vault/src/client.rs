//! One store's connection to Vault: the token (read from a Secret, or obtained by logging in
//! and reused until shortly before it expires), the requests (`X-Vault-Token`,
//! `X-Vault-Namespace`, the store's headers, read-your-writes state), and the contract
//! operations on the KV engine.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use esox_plugin_sdk::{
    Error, FindQuery, MetadataPolicy, PushRef, RemoteRef, SecretClient, SecretMap, StoreContext,
    Validation, block_on, host, http,
};

use crate::auth::{self, Credentials, Token};
use crate::config::{Auth, JwtSource, KvVersion, RoleId, SecretKeyRef, VaultConfig};
use crate::errors;
use crate::kv;
use crate::push::{self, Call, Target};

/// A client for one store. The host keeps it across calls, so the token is reused.
pub struct VaultClient {
    config: VaultConfig,
    store: StoreContext,
    token: RefCell<Option<Token>>,
    /// The last `X-Vault-Index` Vault sent (`readYourWrites`).
    index: RefCell<Option<String>>,
}

/// A Vault answer.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read one key of a referenced Secret as text, trimmed.
fn read_secret(field: &str, r: &SecretKeyRef) -> Result<String, Error> {
    let bytes = host::secret_key(&r.name, &r.key, r.namespace.as_deref())?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid_config(field, "the referenced value is not UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid_config(
            field,
            "the referenced value is empty",
        ));
    }
    Ok(text.to_string())
}

impl VaultClient {
    /// A client that authenticates on first use.
    pub fn new(config: VaultConfig, store: StoreContext) -> VaultClient {
        VaultClient {
            config,
            store,
            token: RefCell::new(None),
            index: RefCell::new(None),
        }
    }

    /// Whether this client cannot tell if the store works: a ClusterSecretStore whose
    /// credentials are referent, validated on its own (ESO answers `ValidationUnknown`).
    pub fn validation_is_unknown(&self) -> bool {
        self.config.is_referent() && self.store.lacks_referent_namespace()
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/v1/{}", self.config.server, kv::encode_path(path));
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&kv::encode_query(v));
        }
        url
    }

    /// The headers of a request besides the token, as ESO's Vault client sends them:
    /// `X-Vault-Request`, the store's `headers`, `X-Vault-Namespace` (`auth.namespace` for a
    /// login, else `namespace`), and under read-your-writes the last `X-Vault-Index` Vault sent
    /// and, with `forwardInconsistent`, `X-Vault-Inconsistent: forward-active-node`.
    fn headers(&self, login: bool) -> Vec<(String, String)> {
        let mut out = vec![("X-Vault-Request".to_string(), "true".to_string())];
        out.extend(self.config.headers.iter().cloned());
        let namespace = if login {
            &self.config.auth_namespace
        } else {
            &self.config.namespace
        };
        if let Some(ns) = namespace {
            out.push(("X-Vault-Namespace".to_string(), ns.clone()));
        }
        if self.config.read_your_writes {
            if let Some(index) = self.index.borrow().clone() {
                out.push(("X-Vault-Index".to_string(), index));
            }
            if self.config.forward_inconsistent {
                out.push((
                    "X-Vault-Inconsistent".to_string(),
                    "forward-active-node".to_string(),
                ));
            }
        }
        out
    }

    /// Send one request to Vault (`login`: a login, sent to `auth.namespace`); a body is JSON.
    async fn send(
        &self,
        method: http::Method,
        body: Option<Vec<u8>>,
        url: &str,
        token: Option<&str>,
        login: bool,
        operation: &str,
    ) -> Result<Answer, Error> {
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in self.headers(login) {
            builder = builder.header(name, value);
        }
        if let Some(token) = token {
            let value = http::HeaderValue::from_str(token).map_err(|_| {
                Error::invalid_config(
                    self.config.auth.field(),
                    "the token holds characters an HTTP header cannot carry",
                )
            })?;
            builder = builder.header("X-Vault-Token", value);
        }
        let request = match body {
            Some(body) => builder
                .header("Content-Type", "application/json")
                .body(http::body::Body::from(body)),
            None => builder.body(http::body::Body::empty()),
        }
        .map_err(|_| {
            Error::invalid_config(
                "",
                "server, namespace or headers do not make a valid HTTP request",
            )
        })?;
        let mut response = http::Client::new()
            .send(request)
            .await
            .map_err(|e| Error::http(operation, &e))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after");
        if self.config.read_your_writes
            && let Some(index) = header("x-vault-index")
        {
            *self.index.borrow_mut() = Some(index);
        }
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .contents()
            .await
            .map(<[u8]>::to_vec)
            .map_err(|e| Error::http(operation, &e))?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// The credentials of the store's login method, read through the host.
    fn credentials(&self) -> Result<Credentials, Error> {
        let jwt = |field: &str, source: &JwtSource| -> Result<String, Error> {
            match source {
                JwtSource::Secret(r) => read_secret(&format!("{field}.secretRef"), r),
                JwtSource::ServiceAccount {
                    account,
                    audiences,
                    expiration_seconds,
                } => host::service_account_token(
                    &account.name,
                    account.namespace.as_deref(),
                    audiences,
                    Some(*expiration_seconds),
                )
                .map(|t| t.token),
            }
        };
        match &self.config.auth {
            Auth::AppRole {
                role_id,
                secret_ref,
                ..
            } => Ok(Credentials::AppRole {
                role_id: match role_id {
                    RoleId::Inline(id) => id.clone(),
                    RoleId::Secret(r) => read_secret("auth.appRole.roleRef", r)?,
                },
                secret_id: read_secret("auth.appRole.secretRef", secret_ref)?,
            }),
            Auth::Kubernetes { jwt: source, .. } => {
                Ok(Credentials::Jwt(jwt("auth.kubernetes", source)?))
            }
            Auth::Jwt { jwt: source, .. } => Ok(Credentials::Jwt(jwt("auth.jwt", source)?)),
            Auth::Password { secret_ref, .. } => Ok(Credentials::Password(read_secret(
                &format!("{}.secretRef", self.config.auth.field()),
                secret_ref,
            )?)),
            // The host presents the certificate and its key; the plugin reads neither.
            Auth::Cert { .. } => Ok(Credentials::ClientCertificate),
            Auth::None | Auth::Token(_) => Err(Error::backend(
                "internal error: this auth method does not log in",
            )),
        }
    }

    /// A token: the cached one while usable, else one read from the Secret or obtained by
    /// logging in. Also says whether it was obtained just now.
    async fn token(&self) -> Result<(Option<String>, bool), Error> {
        if matches!(self.config.auth, Auth::None) {
            return Ok((None, false));
        }
        if let Some(t) = self.token.borrow().as_ref()
            && t.usable(now())
        {
            return Ok((Some(t.value.clone()), false));
        }
        let token = match &self.config.auth {
            Auth::Token(r) => Token {
                value: read_secret("auth.tokenSecretRef", r)?,
                refresh_at: None,
            },
            _ => self.login().await?,
        };
        let value = token.value.clone();
        *self.token.borrow_mut() = Some(token);
        Ok((Some(value), true))
    }

    /// `POST auth/<mount>/login`.
    async fn login(&self) -> Result<Token, Error> {
        let auth = &self.config.auth;
        let (mount, mount_field) = auth::mount_of(auth)
            .ok_or_else(|| Error::backend("internal error: this auth method does not log in"))?;
        let request = auth::login_request(auth, &self.credentials()?)?;
        let url = self.url(&request.path, &[]);
        let answer = self
            .send(
                http::Method::POST,
                Some(request.body),
                &url,
                None,
                true,
                &format!("logging in to Vault at auth/{mount}"),
            )
            .await?;
        if !answer.ok() {
            return Err(errors::login_error(
                auth.field(),
                &mount_field,
                mount,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            ));
        }
        auth::decode_login(&answer.body, now())
    }

    /// GET `path` with the store's token (see [`VaultClient::request`]).
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        operation: &str,
    ) -> Result<Answer, Error> {
        self.request(http::Method::GET, path, query, None, operation)
            .await
    }

    /// A request to `path` with the store's token. A token Vault refuses is dropped and,
    /// unless it was obtained for this very call, replaced once (a new login, or the Secret
    /// read again: it may have expired or been rotated); a refused request changed nothing,
    /// so it is sent again as it was.
    async fn request(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        operation: &str,
    ) -> Result<Answer, Error> {
        let url = self.url(path, query);
        let (token, fresh) = self.token().await?;
        // A read that never got an answer (the connection was refused or reset) is sent once
        // more: it changed nothing. Writes are not repeated here.
        let attempts = if retries_on_transport_error(&method) {
            2
        } else {
            1
        };
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            let sent = self
                .send(
                    method.clone(),
                    body.clone(),
                    &url,
                    token.as_deref(),
                    false,
                    operation,
                )
                .await;
            match sent {
                Err(Error::Unavailable(_)) if attempt < attempts => continue,
                other => break other?,
            }
        };
        if !errors::is_denied(answer.status) || token.is_none() {
            return Ok(answer);
        }
        self.token.borrow_mut().take();
        if fresh {
            return Ok(answer);
        }
        let (token, _) = self.token().await?;
        self.send(method, body, &url, token.as_deref(), false, operation)
            .await
    }

    /// A KV read of `key` (ESO's `readSecret`): the rendered data.
    async fn read_data(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, Error> {
        let path = kv::data_path(self.config.path.as_deref(), self.config.version, key);
        let query: Vec<(&str, &str)> = version
            .filter(|v| !v.is_empty())
            .map(|v| vec![("version", v)])
            .unwrap_or_default();
        let operation = format!("cannot read secret data from Vault: GET {path}");
        let answer = self.get(&path, &query, &operation).await?;
        // Vault answers 404 with a body for a deleted v2 version: not found either way.
        if !answer.ok() {
            return Err(errors::status_error(
                &operation,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            ));
        }
        kv::decode_read(&answer.body, self.config.version)?.ok_or(Error::NotFound)
    }

    /// `key`'s metadata (ESO's `readSecretMetadata`), rendered.
    async fn read_metadata(&self, key: &str) -> Result<Vec<u8>, Error> {
        if self.config.version == KvVersion::V1 {
            return Err(Error::unsupported(kv::ERR_METADATA_V1));
        }
        let path = kv::metadata_path(self.config.path.as_deref(), self.config.version, key)?;
        let operation = format!("cannot read secret metadata from Vault: GET {path}");
        let answer = self.get(&path, &[], &operation).await?;
        if !answer.ok() {
            return Err(errors::status_error(
                &operation,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            ));
        }
        kv::decode_metadata(&answer.body, self.config.version)?.ok_or(Error::NotFound)
    }

    /// Every secret under `folder` (`""` or ending in `/`), recursively (ESO's
    /// `listSecrets`): names relative to the mount.
    async fn list(&self, folder: &str) -> Result<Vec<String>, Error> {
        let mut found = Vec::new();
        let mut pending = vec![folder.to_string()];
        while let Some(folder) = pending.pop() {
            let path =
                kv::metadata_path(self.config.path.as_deref(), self.config.version, &folder)?;
            let operation = format!("cannot list secrets in Vault: LIST {path}");
            let answer = self.get(&path, &[("list", "true")], &operation).await?;
            if !answer.ok() {
                return Err(errors::status_error(
                    &operation,
                    answer.status,
                    answer.retry_after.as_deref(),
                    &answer.body,
                ));
            }
            let mut folders = Vec::new();
            for key in kv::decode_list(&answer.body)? {
                let full = format!("{folder}{key}");
                if key.ends_with('/') {
                    folders.push(full);
                } else {
                    found.push(full);
                }
            }
            // Depth first, in Vault's order.
            pending.extend(folders.into_iter().rev());
        }
        Ok(found)
    }

    async fn fetch(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        match remote.metadata_policy {
            MetadataPolicy::Fetch => self.read_metadata(&remote.key).await,
            MetadataPolicy::None => self.read_data(&remote.key, remote.version.as_deref()).await,
        }
    }

    async fn find(&self, query: &FindQuery) -> Result<SecretMap, Error> {
        if self.config.version == KvVersion::V1 && !query.tags.is_empty() {
            return Err(Error::unsupported(kv::ERR_TAGS_V1));
        }
        let name = crate::compile_regexp(query.name_regexp.as_deref())?;
        let folder = query
            .path
            .as_deref()
            .map(|p| format!("{}/", p.trim_end_matches('/')))
            .unwrap_or_default();
        let mut out = SecretMap::new();
        for candidate in self.list(&folder).await? {
            if name.as_ref().is_some_and(|re| !re.is_match(&candidate)) {
                continue;
            }
            if !query.tags.is_empty() {
                let metadata = match self.read_metadata(&candidate).await {
                    Err(Error::NotFound) => continue,
                    other => other?,
                };
                let metadata: BTreeMap<String, String> =
                    esox_plugin_sdk::serde_json::from_slice(&metadata).unwrap_or_default();
                if !query
                    .tags
                    .iter()
                    .all(|(k, v)| metadata.get(k).is_some_and(|m| m == v))
                {
                    continue;
                }
            }
            match self.read_data(&candidate, None).await {
                Err(Error::NotFound) => continue,
                Err(e) => return Err(e),
                Ok(value) => out.push((candidate, value)),
            }
        }
        Ok(out)
    }

    async fn check(&self) -> Result<Validation, Error> {
        if self.config.auth.logs_in() {
            // A login that succeeds proves the credentials (ESO validates the token it got).
            self.token().await?;
            return Ok(Validation::Ready);
        }
        let operation = "invalid vault credentials: GET auth/token/lookup-self";
        let answer = self.get("auth/token/lookup-self", &[], operation).await?;
        if answer.ok() {
            return Ok(Validation::Ready);
        }
        Err(
            match errors::status_error(
                operation,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            ) {
                Error::NotFound => Error::backend(format!(
                    "{operation}: Vault answered HTTP 404; is server the address of a Vault server?"
                )),
                e => e,
            },
        )
    }
}

impl VaultClient {
    /// Where a push names its secret, as the reads build paths.
    fn target(&self, remote: &PushRef) -> Result<Target, Error> {
        Target::new(
            self.config.path.as_deref(),
            self.config.version,
            self.config.check_and_set,
            &remote.remote_key,
        )
    }
}

impl push::Kv for VaultClient {
    async fn read(&self, path: &str, what: &str) -> Result<Option<Vec<u8>>, Error> {
        let operation = format!("cannot read secret {what} from Vault: GET {path}");
        let answer = self.get(path, &[], &operation).await?;
        if answer.status == 404 {
            // Also a KV v2 secret whose latest version is deleted (the body says so).
            return Ok(None);
        }
        if !answer.ok() {
            return Err(errors::status_error(
                &operation,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            ));
        }
        Ok(Some(answer.body))
    }

    async fn send(&self, call: &Call) -> Result<(), Error> {
        let (method, path, body, operation) = match call {
            Call::Put { path, body } => (
                // What ESO's Vault client sends for a write (Vault takes PUT and POST alike).
                http::Method::PUT,
                path,
                Some(body.clone()),
                format!("cannot write secret to Vault: PUT {path}"),
            ),
            Call::Delete { path } => (
                http::Method::DELETE,
                path,
                None,
                format!("could not delete secret: DELETE {path}"),
            ),
        };
        let answer = self.request(method, path, &[], body, &operation).await?;
        if answer.ok() {
            return Ok(());
        }
        Err(errors::write_error(
            &operation,
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
        ))
    }
}

impl SecretClient for VaultClient {
    fn validate(&self) -> Result<Validation, Error> {
        if self.validation_is_unknown() {
            return Ok(Validation::Unknown);
        }
        block_on(self.check())
    }

    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        let whole = block_on(self.fetch(&remote.without_property()))?;
        self.select_property(whole, remote)
    }

    fn select_property(&self, value: Vec<u8>, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        match &remote.property {
            None => Ok(value),
            Some(p) => kv::property(&value, p),
        }
    }

    fn get_secret_map(&self, remote: &RemoteRef) -> Result<SecretMap, Error> {
        let value = self.get_secret(remote)?;
        kv::entries(&value, &remote.key)
    }

    fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, Error> {
        block_on(self.find(query))
    }

    /// ESO's `PushSecret`. `remote.metadata` is ignored, as ESO's vault provider ignores
    /// PushSecret metadata: the only custom metadata written is the managed-by marker.
    fn push_secret(&self, remote: &PushRef, value: Vec<u8>) -> Result<(), Error> {
        let target = self.target(remote)?;
        block_on(push::push(
            self,
            &target,
            remote.property.as_deref(),
            &value,
        ))
    }

    fn delete_secret(&self, remote: &PushRef) -> Result<(), Error> {
        let target = self.target(remote)?;
        block_on(push::delete(self, &target, remote.property.as_deref()))
    }

    fn secret_exists(&self, remote: &PushRef) -> Result<bool, Error> {
        let data = kv::data_path(
            self.config.path.as_deref(),
            self.config.version,
            &remote.remote_key,
        );
        block_on(push::exists(
            self,
            &data,
            self.config.version,
            remote.property.as_deref(),
        ))
    }
}

/// Whether a request that got no answer at all is sent once more: reads only.
fn retries_on_transport_error(method: &http::Method) -> bool {
    matches!(*method, http::Method::GET | http::Method::HEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::serde_json::json;

    fn client(config: serde_json::Value, store: StoreContext) -> VaultClient {
        VaultClient::new(VaultConfig::parse(&config).unwrap(), store)
    }

    #[test]
    fn urls_carry_the_server_prefix_and_encoded_path_and_query() {
        let c = client(
            json!({"server": "https://vault.example.com:8200/proxy/"}),
            StoreContext::secret_store("ns", "s"),
        );
        assert_eq!(
            c.url("secret/data/a b", &[("version", "3")]),
            "https://vault.example.com:8200/proxy/v1/secret/data/a%20b?version=3"
        );
        assert_eq!(
            c.url("secret/metadata/", &[("list", "true")]),
            "https://vault.example.com:8200/proxy/v1/secret/metadata/?list=true"
        );
    }

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn requests_carry_the_stores_headers_and_namespace_and_logins_the_auth_namespace() {
        let store = StoreContext::secret_store("n", "s");
        let c = client(
            json!({"server": "https://v", "namespace": "team",
                "headers": {"X-Team": "payments", "X-Cost-Center": "7"},
                "auth": {"namespace": "admin",
                    "userPass": {"username": "u", "secretRef": {"name": "p", "key": "k"}}}}),
            store.clone(),
        );
        assert_eq!(
            c.headers(false),
            [
                h("X-Vault-Request", "true"),
                h("X-Cost-Center", "7"),
                h("X-Team", "payments"),
                h("X-Vault-Namespace", "team"),
            ]
        );
        assert_eq!(
            c.headers(true),
            [
                h("X-Vault-Request", "true"),
                h("X-Cost-Center", "7"),
                h("X-Team", "payments"),
                h("X-Vault-Namespace", "admin"),
            ]
        );
        // Without auth.namespace a login goes to the store's namespace.
        let c = client(
            json!({"server": "https://v", "namespace": "team",
                "auth": {"userPass": {"username": "u", "secretRef": {"name": "p", "key": "k"}}}}),
            store.clone(),
        );
        assert_eq!(
            c.headers(true).last(),
            Some(&h("X-Vault-Namespace", "team"))
        );
        // auth.namespace alone: logins there, reads in the root namespace (no header).
        let c = client(
            json!({"server": "https://v",
                "auth": {"namespace": "admin", "tokenSecretRef": {"name": "t", "key": "k"}}}),
            store.clone(),
        );
        assert_eq!(
            c.headers(true).last(),
            Some(&h("X-Vault-Namespace", "admin"))
        );
        assert_eq!(c.headers(false), [h("X-Vault-Request", "true")]);
        let c = client(json!({"server": "https://v"}), store);
        assert_eq!(c.headers(false), [h("X-Vault-Request", "true")]);
        assert_eq!(c.headers(true), [h("X-Vault-Request", "true")]);
    }

    #[test]
    fn read_your_writes_sends_the_last_index_and_forward_inconsistent_needs_it_as_in_eso() {
        let store = StoreContext::secret_store("n", "s");
        let with = |extra: serde_json::Value| {
            let mut config = json!({"server": "https://v"});
            config
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let c = client(config, store.clone());
            // What Vault's last answer carried (recorded by `send` under read-your-writes).
            *c.index.borrow_mut() = Some("v1:idx".into());
            c
        };
        let index = h("X-Vault-Index", "v1:idx");
        let forward = h("X-Vault-Inconsistent", "forward-active-node");
        let c = with(json!({"readYourWrites": true}));
        assert!(c.headers(false).contains(&index) && c.headers(true).contains(&index));
        assert!(!c.headers(false).contains(&forward));
        let c = with(json!({"readYourWrites": true, "forwardInconsistent": true}));
        assert!(c.headers(false).contains(&index) && c.headers(false).contains(&forward));
        // forwardInconsistent alone: ESO turns its client's read-your-writes on, and sends the
        // forward header only with readYourWrites.
        let c = with(json!({"forwardInconsistent": true}));
        assert!(c.config.read_your_writes);
        assert!(c.headers(false).contains(&index) && !c.headers(false).contains(&forward));
        // Neither: no index is ever sent.
        let c = with(json!({}));
        assert_eq!(c.headers(false), [h("X-Vault-Request", "true")]);
    }

    #[test]
    fn a_cluster_store_with_referent_credentials_validates_as_unknown_on_its_own() {
        let referent = json!({"server": "https://v",
            "auth": {"tokenSecretRef": {"name": "t", "key": "token"}}});
        let pinned = json!({"server": "https://v",
            "auth": {"tokenSecretRef": {"name": "t", "key": "token", "namespace": "ops"}}});
        let alone = StoreContext::cluster_secret_store("v", None);
        assert!(client(referent.clone(), alone.clone()).validation_is_unknown());
        assert!(matches!(
            client(referent.clone(), alone.clone()).validate(),
            Ok(Validation::Unknown)
        ));
        assert!(
            !client(
                referent.clone(),
                StoreContext::cluster_secret_store("v", Some("team"))
            )
            .validation_is_unknown()
        );
        assert!(!client(referent, StoreContext::secret_store("team", "v")).validation_is_unknown());
        assert!(!client(pinned, alone).validation_is_unknown());
    }

    #[test]
    fn properties_are_picked_with_esos_vault_semantics() {
        let c = client(
            json!({"server": "https://v"}),
            StoreContext::secret_store("n", "s"),
        );
        let remote = |p: Option<&str>| RemoteRef {
            key: "db".into(),
            property: p.map(str::to_string),
            version: None,
            metadata_policy: MetadataPolicy::None,
        };
        let value = br#"{"password":"pw","nested":{"a":1}}"#.to_vec();
        assert_eq!(
            c.select_property(value.clone(), &remote(Some("password")))
                .unwrap(),
            b"pw"
        );
        assert_eq!(
            c.select_property(value.clone(), &remote(Some("nested.a")))
                .unwrap(),
            b"1"
        );
        assert_eq!(
            c.select_property(value.clone(), &remote(None)).unwrap(),
            value
        );
        let err = c.select_property(value, &remote(Some("user"))).unwrap_err();
        assert!(matches!(err, Error::Backend(m) if !m.contains("pw")));
    }

    #[test]
    fn only_reads_are_sent_again_after_a_transport_error() {
        assert!(retries_on_transport_error(&http::Method::GET));
        assert!(!retries_on_transport_error(&http::Method::PUT));
        assert!(!retries_on_transport_error(&http::Method::POST));
        assert!(!retries_on_transport_error(&http::Method::DELETE));
    }
}
