//! A real HTTP(S) secrets service for the webhook provider's e2e suite: the kind of internal
//! service ESO's `webhook` provider is for. It serves JSON documents by key over plain HTTP and
//! over TLS (a CA of the harness's own), requires a bearer token, and counts requests:
//!
//! - `GET /api/secrets/<key>[?version=<v>]` -> `{"key": <key>, "version": <v>, "value": <doc>}`
//! - `POST /api/lookup` with `{"key": <key>}` -> the same
//! - 401 without `Authorization: Bearer <token>`, 404 for an unknown key.
//!
//! Tests put documents in with [`WebhookServer::put`]. Stopped when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

struct State {
    token: String,
    documents: Mutex<HashMap<String, Value>>,
    requests: AtomicU64,
}

/// One running secrets service.
pub struct WebhookServer {
    state: Arc<State>,
    addr: SocketAddr,
    tls_addr: SocketAddr,
    ca_pem: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl WebhookServer {
    /// Listen on two free loopback ports (HTTP, HTTPS); requests need `Bearer <token>`.
    pub async fn start(token: &str) -> anyhow::Result<WebhookServer> {
        let state = Arc::new(State {
            token: token.to_string(),
            documents: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        });
        let (ca_pem, cert_pem, key_pem) = crate::vault::tls_material()?;
        let tls = {
            use rustls::pki_types::pem::PemObject as _;
            let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        };
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let secure = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (addr, tls_addr) = (plain.local_addr()?, secure.local_addr()?);
        let s1 = state.clone();
        let http_task = tokio::spawn(async move {
            while let Ok((tcp, _)) = plain.accept().await {
                let state = s1.clone();
                tokio::spawn(serve(hyper_util::rt::TokioIo::new(tcp), state));
            }
        });
        let s2 = state.clone();
        let https_task = tokio::spawn(async move {
            while let Ok((tcp, _)) = secure.accept().await {
                let (state, tls) = (s2.clone(), tls.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = tls.accept(tcp).await {
                        serve(hyper_util::rt::TokioIo::new(stream), state).await;
                    }
                });
            }
        });
        Ok(WebhookServer {
            state,
            addr,
            tls_addr,
            ca_pem,
            tasks: vec![http_task, https_task],
        })
    }

    /// [`Self::start`] on a thread of its own with its own runtime, serving until the process
    /// exits: one server for a whole test binary (each `#[tokio::test]` has its own runtime,
    /// which would stop a server spawned on it when that test ends).
    pub fn start_in_background(token: &str) -> anyhow::Result<Arc<WebhookServer>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let token = token.to_string();
        std::thread::Builder::new()
            .name("webhook-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match WebhookServer::start(&token).await {
                        Ok(server) => {
                            let _ = tx.send(Ok(Arc::new(server)));
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        rx.recv()?
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:<port>`, certificate from [`Self::ca_pem`]'s CA.
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.tls_addr)
    }

    /// The PEM of the CA behind [`Self::tls_url`].
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Store `doc` under `key`.
    pub fn put(&self, key: &str, doc: Value) {
        self.state
            .documents
            .lock()
            .unwrap()
            .insert(key.to_string(), doc);
    }

    /// Requests answered so far (any status).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn serve<I>(io: I, state: Arc<State>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(req, &state).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn answer(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", state.token).as_str());
    if !authorized {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    let path = req.uri().path().to_string();
    let version = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("version="))
            .map(str::to_string)
    });
    let key = if let Some(key) = path.strip_prefix("/api/secrets/") {
        Some(key.to_string())
    } else if path == "/api/lookup" && req.method() == hyper::Method::POST {
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        body.ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["key"].as_str().map(str::to_string))
    } else {
        None
    };
    let Some(key) = key else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "no such route"}));
    };
    let doc = state.documents.lock().unwrap().get(&key).cloned();
    match doc {
        Some(value) => reply(
            StatusCode::OK,
            json!({"key": key, "version": version, "value": value}),
        ),
        None => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}
