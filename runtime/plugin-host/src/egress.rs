//! Egress: which origins a plugin may reach, and the only code path that sends its requests.
//!
//! Fail-closed by construction: wasmtime-wasi-http is built without its default sender, so every
//! outgoing request of every plugin goes through [`send_request`] below. A request is allowed
//! when its `scheme://host:port` matches a rule of the store's [`EgressPolicy`]; then the host
//! name is resolved *here* and each address is checked again, so a DNS answer cannot point an
//! allowed name at the node's loopback, link-local range or the cloud metadata endpoint
//! (169.254.169.254) unless a rule names that address (or `localhost`) explicitly. The request
//! then goes to the address that was checked, never to a second resolution.
//!
//! Denials are answered with `HTTP-request-denied`, which the SDK treats as final (no retry),
//! counted in [`crate::HostMetrics`] and logged with the plugin and store.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// A rule could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EgressRuleError {
    #[error(
        "egress rule {0:?} must look like scheme://host[:port] (scheme http or https, host may start with \"*.\")"
    )]
    Malformed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// The host exactly (lower-cased).
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself).
    Subdomains(String),
}

/// One allow-list entry: `scheme://host[:port]`; without a port, the scheme's default port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRule {
    scheme: String,
    host: HostPattern,
    port: u16,
}

impl EgressRule {
    /// Parse `https://secretsmanager.eu-central-1.amazonaws.com`, `https://*.amazonaws.com`,
    /// `http://127.0.0.1:4566`.
    pub fn parse(text: &str) -> Result<Self, EgressRuleError> {
        let bad = || EgressRuleError::Malformed(text.to_string());
        let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(bad()),
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(bad());
        }
        let (host, port) = split_host_port(rest).ok_or_else(bad)?;
        let port = port.unwrap_or(default_port);
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostPattern::Subdomains(suffix.to_string())
            }
            Some(_) => return Err(bad()),
            None if host.contains('*') || host.is_empty() => return Err(bad()),
            None => HostPattern::Exact(host),
        };
        Ok(EgressRule { scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }

    /// Whether this rule explicitly names `addr` (an IP literal equal to it, or `localhost` for a
    /// loopback address): only then may a special address be reached.
    fn names_address(&self, addr: IpAddr) -> bool {
        match &self.host {
            HostPattern::Exact(h) => {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
                    == Some(addr)
                    || (h == "localhost" && addr.is_loopback())
            }
            HostPattern::Subdomains(_) => false,
        }
    }
}

impl std::fmt::Display for EgressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Subdomains(s) => format!("*.{s}"),
        };
        write!(f, "{}://{}:{}", self.scheme, host, self.port)
    }
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((&s[..host.len() + 2], port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("{origin} is not on the store's egress allow-list")]
    NotAllowed { origin: String },
    #[error(
        "{origin} resolved to {addr}, a loopback/link-local/metadata address that no rule names"
    )]
    SpecialAddress { origin: String, addr: IpAddr },
    #[error(
        "{origin} resolved to {addr}, a private address that only a rule naming this exact host may reach"
    )]
    PrivateAddress { origin: String, addr: IpAddr },
    #[error("{origin} did not resolve to any address")]
    Unresolved { origin: String },
}

/// The allow-list of one store's plugin instance. Empty means nothing is reachable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    rules: Vec<EgressRule>,
    /// The store's own TLS material, when its config names any: CA certificates
    /// (`caProvider`, `caBundle`), trusted instead of the public roots (ESO's behaviour), and
    /// the client certificate it presents (contract 0.3). Shared by the store's instances, so
    /// material read again reaches them all.
    tls: Option<Arc<StoreTls>>,
}

/// A client certificate and its private key, parsed and checked against each other. Never
/// printed: `Debug` shows only the fingerprint.
pub struct ClientIdentity {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .field("fingerprint", &hex_prefix(&self.fingerprint))
            .finish_non_exhaustive()
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Why a client certificate cannot be used. Never quotes the PEM.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientIdentityError {
    #[error("the certificate {0}")]
    Certificate(String),
    #[error(
        "the private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1 \"-----BEGIN ... PRIVATE KEY-----\")"
    )]
    Key,
    #[error("the private key does not belong to the certificate")]
    Mismatch,
    #[error("the key or certificate cannot be used for TLS: {0}")]
    Unusable(String),
}

impl ClientIdentity {
    /// Parse a PEM certificate chain (leaf first) and its PEM private key, and check that they
    /// belong together.
    pub fn from_pem(certificate: &[u8], private_key: &[u8]) -> Result<Self, ClientIdentityError> {
        use rustls::pki_types::pem::PemObject as _;
        use sha2::Digest as _;
        let chain: Vec<_> = certificates_of_pem(certificate)
            .map_err(ClientIdentityError::Certificate)?
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|_| ClientIdentityError::Key)?;
        let mut digest = sha2::Sha256::new();
        for c in &chain {
            digest.update(c.as_ref());
        }
        digest.update(key.secret_der());
        let identity = ClientIdentity {
            chain,
            key,
            fingerprint: digest.finalize().into(),
        };
        // Building a config checks that the key signs for the certificate.
        identity.config(&[])?;
        Ok(identity)
    }

    /// A TLS client config trusting [`roots`]`(own)` that presents this identity.
    fn config(&self, own: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, ClientIdentityError> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientIdentityError::Unusable(e.to_string()))?
        .with_root_certificates(roots(own));
        builder
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map(Arc::new)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => ClientIdentityError::Mismatch,
                other => ClientIdentityError::Unusable(other.to_string()),
            })
    }
}

/// A store's own TLS material (the CA certificates it trusts instead of the public roots, the
/// client certificate it presents), the client config built from it, and when it was read.
pub struct StoreTls {
    current: std::sync::RwLock<TlsState>,
}

struct TlsState {
    /// Of the trusted certificates and the client identity: to tell whether a re-read changed
    /// anything.
    fingerprint: [u8; 32],
    trust: Vec<Vec<u8>>,
    config: Arc<rustls::ClientConfig>,
    read_at: std::time::Instant,
}

impl std::fmt::Debug for StoreTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("StoreTls")
            .field("trusted_certificates", &state.trust.len())
            .field("fingerprint", &hex_prefix(&state.fingerprint))
            .finish_non_exhaustive()
    }
}

impl PartialEq for StoreTls {
    fn eq(&self, other: &Self) -> bool {
        self.state().fingerprint == other.state().fingerprint
    }
}
impl Eq for StoreTls {}

impl StoreTls {
    /// Of the trusted certificates and the client identity: what tells a re-read apart.
    fn fingerprint(trust: &[Vec<u8>], identity: Option<&ClientIdentity>) -> [u8; 32] {
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        for der in trust {
            digest.update((der.len() as u64).to_be_bytes());
            digest.update(der);
        }
        if let Some(identity) = identity {
            digest.update(identity.fingerprint);
        }
        digest.finalize().into()
    }

    fn build(
        trust: &[Vec<u8>],
        identity: Option<&ClientIdentity>,
    ) -> Result<TlsState, ClientIdentityError> {
        Ok(TlsState {
            fingerprint: Self::fingerprint(trust, identity),
            trust: trust.to_vec(),
            config: match identity {
                Some(identity) => identity.config(trust)?,
                None => trusting(trust),
            },
            read_at: std::time::Instant::now(),
        })
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, TlsState> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    fn config(&self) -> Arc<rustls::ClientConfig> {
        self.state().config.clone()
    }

    /// Whether the material was read longer than `max_age` ago.
    pub fn is_older_than(&self, max_age: Duration) -> bool {
        self.state().read_at.elapsed() > max_age
    }

    /// Take freshly read material: new handshakes use it when it changed. Returns whether it
    /// changed. On error the previous material stays.
    pub fn renew(
        &self,
        trust: &[Vec<u8>],
        identity: Option<&ClientIdentity>,
    ) -> Result<bool, ClientIdentityError> {
        // Unchanged material (the usual answer) builds nothing.
        if self.state().fingerprint == Self::fingerprint(trust, identity) {
            self.current
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .read_at = std::time::Instant::now();
            return Ok(false);
        }
        let fresh = Self::build(trust, identity)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(true)
    }
}

impl EgressPolicy {
    /// A policy that allows nothing.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Parse a list of rules.
    pub fn parse<S: AsRef<str>>(
        rules: impl IntoIterator<Item = S>,
    ) -> Result<Self, EgressRuleError> {
        let rules = rules
            .into_iter()
            .map(|r| EgressRule::parse(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy { rules, tls: None })
    }

    /// This policy trusting only the CA certificates (DER) the store's config names (tests; the
    /// host uses [`Self::with_tls`]).
    #[cfg(test)]
    fn with_trust(self, certificates: Vec<Vec<u8>>) -> Self {
        self.with_tls(certificates, None)
            .expect("without a client identity building cannot fail")
    }

    /// This policy with the store's TLS material: the CA certificates (DER) its config names,
    /// trusted instead of the public roots, and the client certificate it presents in every
    /// handshake. Neither: the public roots and no client certificate.
    pub fn with_tls(
        self,
        trust: Vec<Vec<u8>>,
        identity: Option<&ClientIdentity>,
    ) -> Result<Self, ClientIdentityError> {
        if trust.is_empty() && identity.is_none() {
            return Ok(EgressPolicy { tls: None, ..self });
        }
        let state = StoreTls::build(&trust, identity)?;
        Ok(EgressPolicy {
            tls: Some(Arc::new(StoreTls {
                current: std::sync::RwLock::new(state),
            })),
            ..self
        })
    }

    /// The store's own CA certificates (DER), if any.
    pub fn trust(&self) -> Vec<Vec<u8>> {
        self.tls
            .as_ref()
            .map(|t| t.state().trust.clone())
            .unwrap_or_default()
    }

    /// The store's own TLS material, if its config names any.
    pub fn tls(&self) -> Option<&Arc<StoreTls>> {
        self.tls.as_ref()
    }

    /// Add the origin of a URL (an operator-configured endpoint) as a rule.
    pub fn allow_origin_of(&mut self, url: &str) -> Result<(), EgressRuleError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| EgressRuleError::Malformed(url.to_string()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(EgressRuleError::Malformed(url.to_string()));
        };
        let rule = EgressRule::parse(&format!("{scheme}://{authority}"))?;
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
        Ok(())
    }

    /// The rules, for display.
    pub fn rules(&self) -> impl Iterator<Item = &EgressRule> {
        self.rules.iter()
    }

    fn rule_for(&self, scheme: &str, host: &str, port: u16) -> Option<&EgressRule> {
        self.rules.iter().find(|r| r.matches(scheme, host, port))
    }

    /// Check an address a permitted name resolved to: a special address needs a rule naming
    /// it; a private one (RFC 1918, CGNAT, ULA, NAT64) needs a rule naming this exact host or
    /// address, never a wildcard.
    fn address_allowed(&self, scheme: &str, host: &str, port: u16, addr: IpAddr) -> bool {
        if is_special(addr) {
            return self
                .rules
                .iter()
                .any(|r| r.matches(scheme, host, port) && r.names_address(addr));
        }
        if is_private(addr) {
            return self
                .rules
                .iter()
                .any(|r| r.matches(scheme, host, port) && matches!(r.host, HostPattern::Exact(_)));
        }
        true
    }
}

/// Loopback, link-local (which includes the 169.254.169.254 metadata endpoint), unspecified,
/// multicast and the IPv6 equivalents, including IPv4-mapped forms.
pub fn is_special(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                // fd00:ec2::254, the IPv6 metadata endpoint
                || v6.segments()[..2] == [0xfd00, 0x0ec2]
        }
    }
}

/// Private and shared ranges a wildcard rule never reaches: 10/8, 172.16/12, 192.168/16,
/// 100.64/10 (CGNAT, which holds cloud metadata addresses such as 100.100.100.200), fc00::/7
/// (ULA) and 64:ff9b::/96 (NAT64, which maps any IPv4 address), IPv4-mapped forms included.
pub fn is_private(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            (s[0] & 0xfe00) == 0xfc00 || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        }
    }
}

/// Called for each denial (metrics and logs), with the origin and the reason.
pub type DenialSink = Arc<dyn Fn(&Denial) + Send + Sync>;

/// Limits applied to every request a plugin sends.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Connecting (DNS + TCP + TLS).
    pub connect_timeout: Duration,
    /// Waiting for the response head.
    pub first_byte_timeout: Duration,
    /// The most response-body bytes handed to the plugin; more is an error, not a truncation.
    pub max_response_bytes: u64,
    /// Resource handles an instance may hold at once (header sets, requests, bodies, streams,
    /// pollables): wasmtime's default is a million.
    pub max_handles: usize,
    /// Bytes of names and values in one header set (wasmtime's default: 128 KiB).
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_handles: 1024,
            max_header_bytes: 16 * 1024,
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Send one request for a plugin, enforcing `policy`. The only sender the host has.
pub(crate) async fn send_request(
    policy: Arc<EgressPolicy>,
    limits: HttpLimits,
    on_denial: DenialSink,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let uri = request.uri().clone();
    let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
    let use_tls = scheme == Scheme::HTTPS;
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    let origin = format!("{}://{}:{}", scheme.as_str(), host, port);
    let deny = |d: Denial| {
        on_denial(&d);
        HttpError::HttpRequestDenied
    };
    if policy.rule_for(scheme.as_str(), &host, port).is_none() {
        return Err(deny(Denial::NotAllowed { origin }));
    }

    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .map_or(limits.connect_timeout, |t| t.min(limits.connect_timeout));
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .map_or(limits.first_byte_timeout, |t| {
            t.min(limits.first_byte_timeout)
        });

    // Resolve here and check every address; connect only to checked ones.
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        connect_timeout,
        tokio::net::lookup_host((bare_host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(_)) => {
            return Err(HttpError::DnsError {
                rcode: Some("lookup failed".into()),
                info_code: None,
            });
        }
        Err(_) => return Err(HttpError::DnsTimeout),
    };
    let mut allowed = Vec::new();
    let mut refused = None;
    for addr in addrs {
        if policy.address_allowed(scheme.as_str(), &host, port, addr.ip()) {
            allowed.push(addr);
        } else {
            refused.get_or_insert(addr.ip());
        }
    }
    if allowed.is_empty() {
        return Err(deny(match refused {
            Some(addr) if is_special(addr) => Denial::SpecialAddress { origin, addr },
            Some(addr) => Denial::PrivateAddress { origin, addr },
            None => Denial::Unresolved { origin },
        }));
    }

    let tcp = tokio::time::timeout(
        connect_timeout,
        tokio::net::TcpStream::connect(&allowed[..]),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(|_| HttpError::ConnectionRefused)?;

    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let (response, io): (http::Response<hyper::body::Incoming>, IoFuture) = if use_tls {
        let tls = tokio::time::timeout(connect_timeout, tls_connect(&bare_host, tcp, &policy))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        handshake_and_send(
            TokioIo::new(tls),
            request,
            connect_timeout,
            first_byte_timeout,
        )
        .await?
    } else {
        handshake_and_send(
            TokioIo::new(tcp),
            request,
            connect_timeout,
            first_byte_timeout,
        )
        .await?
    };
    let limit = limits.max_response_bytes;
    let response = response.map(|incoming| {
        LimitedBody {
            inner: incoming,
            remaining: limit,
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

async fn tls_connect(
    host: &str,
    tcp: tokio::net::TcpStream,
    policy: &EgressPolicy,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, HttpError> {
    static PUBLIC: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = match &policy.tls {
        Some(tls) => tls.config(),
        None => PUBLIC.get_or_init(|| client_config(&[])).clone(),
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        HttpError::DnsError {
            rcode: Some("invalid DNS name".into()),
            info_code: None,
        }
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|_| HttpError::TlsProtocolError)
}

/// The client config trusting only `extra` (a store's own CAs), built once
/// per set of certificates (at most 256 sets are kept; more start the cache afresh).
fn trusting(extra: &[Vec<u8>]) -> Arc<rustls::ClientConfig> {
    type Cache = std::collections::HashMap<Vec<Vec<u8>>, Arc<rustls::ClientConfig>>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(Cache::new);
    if let Some(c) = cache.get(extra) {
        return c.clone();
    }
    if cache.len() >= 256 {
        cache.clear();
    }
    let config = client_config(extra);
    cache.insert(extra.to_vec(), config.clone());
    config
}

/// The trust anchors of a store: the public (webpki) roots, or, when the store names its own
/// CAs, exactly those (as in ESO, where a store's CA bundle replaces the system pool). A
/// certificate rustls cannot use as a trust anchor is skipped (the handshake then fails as
/// untrusted, which the plugin reports).
fn roots(own: &[Vec<u8>]) -> rustls::RootCertStore {
    if own.is_empty() {
        return rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
    }
    let mut roots = rustls::RootCertStore::empty();
    for der in own {
        let _ = roots.add(rustls::pki_types::CertificateDer::from(der.clone()));
    }
    roots
}

/// A TLS client config trusting [`roots`]`(own)`.
fn client_config(own: &[Vec<u8>]) -> Arc<rustls::ClientConfig> {
    let roots = roots(own);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    Arc::new(match config {
        Ok(c) => c,
        // The ring provider supports the default versions; this cannot fail in practice.
        Err(_) => unreachable_config(),
    })
}

/// The certificates (DER) of a PEM bundle; an error when it holds none or cannot be parsed
/// (never quoting it).
pub fn certificates_of_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut out = Vec::new();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle ({e})"))?;
        out.push(cert.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(out)
}

fn unreachable_config() -> rustls::ClientConfig {
    // Only reachable if ring lost TLS 1.3; refuse all TLS rather than panic.
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

async fn handshake_and_send<I>(
    io: I,
    request: http::Request<WasiBody>,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
) -> Result<(http::Response<hyper::body::Incoming>, IoFuture), HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(io))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
    // Drive the connection while waiting for the response head.
    let conn = tokio::spawn(conn);
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let io: IoFuture = Box::new(async move {
        match conn.await {
            Ok(result) => result.map_err(HttpError::from),
            Err(_) => Err(HttpError::ConnectionTerminated),
        }
    });
    Ok((response, io))
}

/// A response body that fails once more than `remaining` bytes arrive.
struct LimitedBody {
    inner: hyper::body::Incoming,
    remaining: u64,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> EgressPolicy {
        EgressPolicy::parse(rules).unwrap()
    }

    #[test]
    fn rules_match_scheme_host_and_port_exactly() {
        let p = policy(&["https://secretsmanager.eu-central-1.amazonaws.com"]);
        assert!(
            p.rule_for("https", "secretsmanager.eu-central-1.amazonaws.com", 443)
                .is_some()
        );
        assert!(
            p.rule_for("http", "secretsmanager.eu-central-1.amazonaws.com", 80)
                .is_none()
        );
        assert!(
            p.rule_for("https", "secretsmanager.eu-central-1.amazonaws.com", 8443)
                .is_none()
        );
        assert!(p.rule_for("https", "evil.example.com", 443).is_none());
    }

    #[test]
    fn wildcards_cover_subdomains_but_not_the_bare_domain_or_lookalikes() {
        let p = policy(&["https://*.amazonaws.com"]);
        assert!(p.rule_for("https", "sts.amazonaws.com", 443).is_some());
        assert!(p.rule_for("https", "a.b.amazonaws.com", 443).is_some());
        assert!(p.rule_for("https", "amazonaws.com", 443).is_none());
        assert!(p.rule_for("https", "evilamazonaws.com", 443).is_none());
    }

    #[test]
    fn malformed_rules_are_refused_with_the_expected_shape() {
        for bad in [
            "amazonaws.com",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://*",
            "https://a*.b",
            "https://h:notaport",
        ] {
            let err = EgressRule::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("scheme://host[:port]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn special_addresses_need_a_rule_that_names_them() {
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "52.94.1.1".parse().unwrap();
        let by_name = policy(&["http://metadata.example"]);
        assert!(!by_name.address_allowed("http", "metadata.example", 80, metadata));
        assert!(by_name.address_allowed("http", "metadata.example", 80, public));
        let explicit = policy(&["http://127.0.0.1:4566", "http://localhost:9000"]);
        assert!(explicit.address_allowed("http", "127.0.0.1", 4566, loopback));
        assert!(explicit.address_allowed("http", "localhost", 9000, loopback));
        assert!(!explicit.address_allowed("http", "127.0.0.1", 4566, metadata));
    }

    #[test]
    fn special_address_classification_covers_mapped_and_v6_forms() {
        for a in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
        ] {
            assert!(is_special(a.parse().unwrap()), "{a}");
        }
        for a in ["10.0.0.1", "52.94.1.1", "2600:1f18::1"] {
            assert!(!is_special(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn endpoint_origins_become_rules() {
        let mut p = EgressPolicy::deny_all();
        p.allow_origin_of("http://127.0.0.1:4566/some/path")
            .unwrap();
        assert!(p.rule_for("http", "127.0.0.1", 4566).is_some());
        assert_eq!(p.rules().count(), 1);
        p.allow_origin_of("http://127.0.0.1:4566").unwrap();
        assert_eq!(p.rules().count(), 1, "duplicates are not added");
    }
}

/// What the operator grants one plugin's stores, before the store's own config is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressGrant {
    /// Whether the plugin is first-party (built into esox): its declared ceiling is trusted.
    pub first_party: bool,
    /// The plugin's `default-egress`: every origin it may ever ask for.
    pub ceiling: Vec<String>,
    /// The operator's rules for this plugin (`--plugin-egress`), granted as they are.
    pub granted: Vec<String>,
    /// The origins of operator endpoint settings (`endpoint`, `endpoint.<service>`).
    pub endpoints: Vec<String>,
}

impl EgressGrant {
    /// The grant for a plugin: first-party or not, its ceiling, the operator's rules and
    /// settings.
    pub fn new(
        first_party: bool,
        ceiling: &[String],
        settings: &[(String, String)],
        granted: &[String],
    ) -> Result<Self, EgressRuleError> {
        for rule in granted.iter().chain(ceiling) {
            EgressRule::parse(rule)?;
        }
        let endpoints = settings
            .iter()
            .filter(|(k, _)| k == "endpoint" || k.starts_with("endpoint."))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>();
        // Fail now, not at the first request.
        EgressPolicy::default().with_origins(&endpoints)?;
        Ok(EgressGrant {
            first_party,
            ceiling: ceiling.to_vec(),
            granted: granted.to_vec(),
            endpoints,
        })
    }

    /// The policy of one store, given the origins its plugin derived from the store's config
    /// (`egress`, contract 0.2+; `None` for 0.1 plugins, which get their whole ceiling if
    /// first-party):
    /// - the operator's rules and endpoint settings, as they are;
    /// - each derived origin that a first-party plugin's ceiling or an operator rule covers
    ///   (a derived origin outside both is dropped and reported in the second value);
    /// - `extra` origins the host itself needs for this store (the ambient identity's
    ///   credentials endpoint).
    pub fn policy(
        &self,
        derived: Option<&[String]>,
        extra: &[String],
    ) -> Result<(EgressPolicy, Vec<String>), EgressRuleError> {
        let mut rules: Vec<EgressRule> = self
            .granted
            .iter()
            .map(|r| EgressRule::parse(r))
            .collect::<Result<_, _>>()?;
        let ceiling: Vec<EgressRule> = if self.first_party {
            self.ceiling
                .iter()
                .map(|r| EgressRule::parse(r))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let mut dropped = Vec::new();
        match derived {
            None => rules.extend(ceiling.iter().cloned()),
            Some(derived) => {
                for origin in derived {
                    let rule = match EgressRule::parse(origin) {
                        Ok(r) => r,
                        Err(_) => {
                            dropped.push(origin.clone());
                            continue;
                        }
                    };
                    let covered = ceiling.iter().chain(&rules).any(|c| c.covers(&rule));
                    if covered {
                        if !rules.contains(&rule) {
                            rules.push(rule);
                        }
                    } else {
                        dropped.push(origin.clone());
                    }
                }
            }
        }
        let policy = EgressPolicy {
            rules,
            ..EgressPolicy::default()
        }
        .with_origins(&self.endpoints)?
        .with_origins(extra)?;
        Ok((policy, dropped))
    }
}

impl EgressRule {
    /// Whether every request `other` allows is also allowed by `self`.
    fn covers(&self, other: &EgressRule) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match (&self.host, &other.host) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Subdomains(_), HostPattern::Exact(b)) => {
                self.matches(&other.scheme, b, other.port)
            }
            (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => {
                a == b || b.ends_with(&format!(".{a}"))
            }
            (HostPattern::Exact(_), HostPattern::Subdomains(_)) => false,
        }
    }
}

impl EgressPolicy {
    fn with_origins(mut self, urls: &[String]) -> Result<Self, EgressRuleError> {
        for url in urls {
            self.allow_origin_of(url)?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    /// The policy of a store whose plugin derives nothing from its config (contract 0.1).
    fn policy_for_store(
        first_party: bool,
        ceiling: &[String],
        settings: &[(String, String)],
        granted: &[String],
    ) -> Result<EgressPolicy, EgressRuleError> {
        Ok(EgressGrant::new(first_party, ceiling, settings, granted)?
            .policy(None, &[])?
            .0)
    }

    #[test]
    fn first_party_defaults_are_granted_third_party_claims_are_not() {
        let declared = vec!["https://*.amazonaws.com".to_string()];
        let first = policy_for_store(true, &declared, &[], &[]).unwrap();
        assert!(first.rule_for("https", "sts.amazonaws.com", 443).is_some());
        let third = policy_for_store(false, &declared, &[], &[]).unwrap();
        assert!(third.rule_for("https", "sts.amazonaws.com", 443).is_none());
        let granted = policy_for_store(
            false,
            &declared,
            &[],
            &["https://vault.internal:8200".into()],
        )
        .unwrap();
        assert!(granted.rule_for("https", "vault.internal", 8200).is_some());
    }

    #[test]
    fn endpoint_settings_open_their_origin_and_nothing_else() {
        let settings = vec![
            (
                "endpoint.secretsmanager".to_string(),
                "http://127.0.0.1:4566".to_string(),
            ),
            ("region".to_string(), "http://not-an-endpoint:1".to_string()),
        ];
        let p = policy_for_store(false, &[], &settings, &[]).unwrap();
        assert!(p.rule_for("http", "127.0.0.1", 4566).is_some());
        assert!(p.rule_for("http", "not-an-endpoint", 1).is_none());
    }

    #[test]
    fn derived_origins_are_granted_within_the_ceiling_only() {
        let ceiling = vec!["https://*.amazonaws.com".to_string()];
        let grant = EgressGrant::new(true, &ceiling, &[], &[]).unwrap();
        let derived = vec![
            "https://secretsmanager.eu-west-1.amazonaws.com".to_string(),
            "https://evil.example.com".to_string(),
        ];
        let (p, dropped) = grant.policy(Some(&derived), &[]).unwrap();
        assert!(
            p.rule_for("https", "secretsmanager.eu-west-1.amazonaws.com", 443)
                .is_some()
        );
        assert!(
            p.rule_for("https", "my-bucket.s3.amazonaws.com", 443)
                .is_none(),
            "the ceiling itself is not granted when the store derives its origins"
        );
        assert!(p.rule_for("https", "evil.example.com", 443).is_none());
        assert_eq!(dropped, vec!["https://evil.example.com".to_string()]);
        // A third-party plugin's derived origins need an operator rule.
        let third = EgressGrant::new(false, &ceiling, &[], &[]).unwrap();
        let (p, dropped) = third.policy(Some(&derived[..1]), &[]).unwrap();
        assert!(p.rules().next().is_none());
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn extra_origins_such_as_a_credentials_endpoint_are_added() {
        let grant = EgressGrant::new(true, &[], &[], &[]).unwrap();
        let (p, _) = grant
            .policy(
                Some(&[]),
                &["http://169.254.170.23/v1/credentials".to_string()],
            )
            .unwrap();
        assert!(p.rule_for("http", "169.254.170.23", 80).is_some());
    }

    #[test]
    fn private_ranges_are_recognised() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "100.127.255.255",
            "fc00::1",
            "fd12:3456::1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn wildcards_never_reach_private_addresses_exact_rules_may() {
        let wild = EgressPolicy::parse(["https://*.internal.example"]).unwrap();
        let exact = EgressPolicy::parse(["https://vault.internal.example"]).unwrap();
        let addr: IpAddr = "10.0.0.5".parse().unwrap();
        let cgnat: IpAddr = "100.100.100.200".parse().unwrap();
        assert!(!wild.address_allowed("https", "vault.internal.example", 443, addr));
        assert!(!wild.address_allowed("https", "vault.internal.example", 443, cgnat));
        assert!(exact.address_allowed("https", "vault.internal.example", 443, addr));
        let public: IpAddr = "52.1.2.3".parse().unwrap();
        assert!(wild.address_allowed("https", "vault.internal.example", 443, public));
    }
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    /// A throwaway self-signed CA (public certificate only).
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIUWYXIjFQuDMjLNkt1QJfuecs3T8swCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZXNveCB0ZXN0IENBMCAXDTI2MTIwNTE2Mzg1N1oYDzIxMjYx
MTExMTYzODU3WjAXMRUwEwYDVQQDDAxlc294IHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAARvw5rQFL4rOU2cYMmuszvomkUlh8uWrJpYtSLD6ox29IUR
YgIwasBGEP8FG+ZQJaZ3dVQTDaXJcIalMIdJ93Mao1MwUTAdBgNVHQ4EFgQUJpUN
pDBoM54+tZzzpU7e9aNBWsQwHwYDVR0jBBgwFoAUJpUNpDBoM54+tZzzpU7e9aNB
WsQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAgYq/x48dS/WI
WlnYA+qF4cGhecbaRWtX87OFZc5zM1ACIH8Sp60WBGJrwwUXR3AtZeRWAr4B2N4q
FmfuBI4SYs5L
-----END CERTIFICATE-----
";

    #[test]
    fn a_pem_bundle_yields_its_certificates_and_anything_else_is_refused() {
        let one = certificates_of_pem(CA.as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        let two = certificates_of_pem(format!("{CA}{CA}").as_bytes()).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(
            certificates_of_pem(b"not pem at all").unwrap_err(),
            "holds no PEM certificate"
        );
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(certificates_of_pem(key).is_err(), "a key is no CA");
    }

    /// A self-signed client certificate and its key (PEM).
    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_client_identity_needs_a_certificate_and_the_key_that_belongs_to_it() {
        let (cert, key) = self_signed("a");
        let (_, other_key) = self_signed("b");
        let identity = ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(
            ClientIdentity::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err(),
            ClientIdentityError::Mismatch
        );
        assert_eq!(
            ClientIdentity::from_pem(cert.as_bytes(), b"no key here").unwrap_err(),
            ClientIdentityError::Key
        );
        assert!(matches!(
            ClientIdentity::from_pem(key.as_bytes(), key.as_bytes()).unwrap_err(),
            ClientIdentityError::Certificate(_)
        ));
        // Debug shows a fingerprint, never key material.
        let shown = format!("{identity:?}");
        let body = key.lines().nth(1).unwrap();
        assert!(!shown.contains(&body[..16]), "{shown}");
        assert!(shown.contains("fingerprint"), "{shown}");
    }

    #[test]
    fn renewed_tls_material_replaces_the_config_only_when_it_changed() {
        let (cert, key) = self_signed("a");
        let (cert2, key2) = self_signed("b");
        let ca = certificates_of_pem(cert.as_bytes()).unwrap();
        let first = ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let policy = EgressPolicy::deny_all()
            .with_tls(ca.clone(), Some(&first))
            .unwrap();
        let tls = policy.tls().unwrap();
        let before = tls.config();
        assert!(!tls.renew(&ca, Some(&first)).unwrap(), "same material");
        assert!(Arc::ptr_eq(&before, &tls.config()));
        assert!(!tls.is_older_than(Duration::from_secs(60)));
        // A renewed certificate, then a rotated CA: each makes a new config.
        let second = ClientIdentity::from_pem(cert2.as_bytes(), key2.as_bytes()).unwrap();
        assert!(tls.renew(&ca, Some(&second)).unwrap());
        let after_cert = tls.config();
        assert!(!Arc::ptr_eq(&before, &after_cert));
        let ca2 = certificates_of_pem(cert2.as_bytes()).unwrap();
        assert!(tls.renew(&ca2, Some(&second)).unwrap());
        assert!(!Arc::ptr_eq(&after_cert, &tls.config()));
        assert_eq!(policy.trust(), ca2);
        // Nothing named: no store material at all (the public roots).
        assert!(
            EgressPolicy::deny_all()
                .with_tls(vec![], None)
                .unwrap()
                .tls()
                .is_none()
        );
    }

    #[test]
    fn a_store_that_names_a_ca_trusts_only_it_and_others_the_public_roots() {
        let ca = certificates_of_pem(CA.as_bytes()).unwrap();
        assert_eq!(
            roots(&ca).len(),
            1,
            "the store's CA replaces the public roots"
        );
        assert_eq!(roots(&[]).len(), webpki_roots::TLS_SERVER_ROOTS.len());
        let public = client_config(&[]);
        let own = trusting(&ca);
        let policy = EgressPolicy::deny_all().with_trust(ca.clone());
        assert_eq!(policy.trust(), ca);
        assert!(EgressPolicy::deny_all().trust().is_empty());
        assert!(!Arc::ptr_eq(&public, &own));
        // Built once per set of certificates.
        assert!(Arc::ptr_eq(&own, &trusting(&ca)));
    }
    /// A server certificate for `localhost` signed by [`CA`], and its throwaway key.
    const SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUYhuC1YHpx5+TVLheDjKF1QQ/Zq4wCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZXNveCB0ZXN0IENBMCAXDTI2MTIwNTE2MzkwN1oYDzIxMjYx
MTExMTYzOTA3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggq
hkjOPQMBBwNCAARuEGVgL1+uiSUFvPW8GwTIcsGrqSF0VimdOBEFe4FnFTZmlEer
zbiwER7YGTNhCDZwMsLMbdsePk+AHQe+Yu8Io3gwdjAUBgNVHREEDTALgglsb2Nh
bGhvc3QwCQYDVR0TBAIwADATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQU
dVNSAiZucyFY1FuzbZWPFOnaKMEwHwYDVR0jBBgwFoAUJpUNpDBoM54+tZzzpU7e
9aNBWsQwCgYIKoZIzj0EAwIDSAAwRQIgFuRlPvCDVNB0ZiKL60FXx8mo4tEXnitG
bmVXsiMSeqsCIQCZdJpSfuFNfJ4ir0auAxMlMIyHFlkCWVXdrto4U7KMGg==
-----END CERTIFICATE-----
";
    const SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgR0n4IM3ipQ3YB6IL
86vuo20i71S3JMHyHr2FfeGemnWhRANCAARuEGVgL1+uiSUFvPW8GwTIcsGrqSF0
VimdOBEFe4FnFTZmlEerzbiwER7YGTNhCDZwMsLMbdsePk+AHQe+Yu8I
-----END PRIVATE KEY-----
";

    /// A TLS server on loopback presenting [`SERVER_CERT`]; answers one handshake.
    async fn tls_server() -> std::net::SocketAddr {
        use rustls::pki_types::pem::PemObject as _;
        let cert =
            rustls::pki_types::CertificateDer::from_pem_slice(SERVER_CERT.as_bytes()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_handshake_succeeds_only_with_the_stores_own_ca() {
        let addr = tls_server().await;
        let ca = certificates_of_pem(CA.as_bytes()).unwrap();
        let trusted = EgressPolicy::deny_all().with_trust(ca);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(tls_connect("localhost", tcp, &trusted).await.is_ok());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(matches!(
            tls_connect("localhost", tcp, &EgressPolicy::deny_all()).await,
            Err(HttpError::TlsProtocolError)
        ));
    }
}
