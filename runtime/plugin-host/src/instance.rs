//! One plugin instance: its sandboxed state, what it is linked against, and the host side of
//! the `esox:provider/host` interface.
//!
//! Each instance has its own wasmtime `Store`, so nothing (memory, tables, resources, WASI
//! state) is shared between instances, and an instance belongs to exactly one store. What it is
//! granted is decided here:
//! - WASI: clocks, random, stdio (discarded), empty environment, no arguments, **no preopened
//!   directories**, and **no wasi:sockets** (not linked at all: a plugin importing it fails to
//!   load, rather than failing later).
//! - wasi:http: outgoing requests only, through [`crate::egress`]'s policy-checking sender.
//! - `esox:provider/host`: the auth broker, answered by the store's [`HostServices`].
//! - Limits: a memory cap enforced by [`MemoryCap`], and a CPU budget counted in epoch ticks
//!   observed while the guest runs (see [`CpuBudget`]).

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::contract::v0_1;
use crate::egress::{self, DenialSink, EgressPolicy, HttpLimits};
use crate::services::{HostServices, TokenRequest};
use esox_provider::ProviderError;

/// Caps linear memory growth and remembers that the cap was hit, so a resulting trap can be
/// reported as "memory limit" rather than as a generic crash.
pub(crate) struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// CPU time a call may spend in wasm, in epoch ticks. The engine's epoch advances every
/// [`crate::EPOCH_TICK`]; each time a running guest notices a new epoch the callback counts one
/// tick and yields to the executor. Time the guest spends blocked in host I/O counts at most one
/// tick per wait, so the budget measures guest CPU, and the separate wall-clock timeout around
/// every call bounds I/O.
pub(crate) struct CpuBudget {
    pub ticks: u64,
    pub budget: u64,
}

impl CpuBudget {
    pub fn exhausted(&self) -> bool {
        self.ticks > self.budget
    }
}

/// The state of one instance (the `T` of its `Store<T>`).
pub(crate) struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHooks,
    pub memory: MemoryCap,
    pub cpu: CpuBudget,
    services: Arc<dyn HostServices>,
    plugin: Arc<str>,
    store_id: Arc<str>,
}

impl InstanceState {
    pub fn new(
        plugin: Arc<str>,
        store_id: Arc<str>,
        services: Arc<dyn HostServices>,
        policy: Arc<EgressPolicy>,
        http_limits: HttpLimits,
        on_denial: DenialSink,
        memory_bytes: usize,
    ) -> Self {
        // The builder's defaults are what we want: no args, no env, no preopens, null stdio.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .allow_blocking_current_thread(false)
            .build();
        InstanceState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: EgressHooks {
                policy,
                limits: http_limits,
                on_denial,
            },
            memory: MemoryCap {
                max_bytes: memory_bytes,
                hit: false,
            },
            cpu: CpuBudget {
                ticks: 0,
                budget: 0,
            },
            services,
            plugin,
            store_id,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Routes every outgoing request of the instance through the egress policy.
struct EgressHooks {
    policy: Arc<EgressPolicy>,
    limits: HttpLimits,
    on_denial: DenialSink,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let policy = self.policy.clone();
        let limits = self.limits.clone();
        let on_denial = self.on_denial.clone();
        Box::new(egress::send_request(
            policy, limits, on_denial, request, options,
        ))
    }
}

/// The epoch callback implementing [`CpuBudget`].
pub(crate) fn on_epoch(
    mut ctx: StoreContextMut<'_, InstanceState>,
) -> wasmtime::Result<UpdateDeadline> {
    let cpu = &mut ctx.data_mut().cpu;
    cpu.ticks += 1;
    if cpu.exhausted() {
        Ok(UpdateDeadline::Interrupt)
    } else {
        Ok(UpdateDeadline::Yield(1))
    }
}

/// Build the linker every instance is instantiated from: exactly the grants listed in the
/// module docs.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<InstanceState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::p2::bindings::{cli, filesystem, random};
    use wasmtime_wasi::random::WasiRandom;

    let mut l = Linker::<InstanceState>::new(engine);
    // io, clocks, random, stdio.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut l)?;
    // What Rust's std imports on wasm32-wasip2; harmless with an empty environment and no preopens.
    random::insecure::add_to_linker::<InstanceState, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<InstanceState, WasiRandom>(&mut l, |t| {
        t.ctx().ctx.random()
    })?;
    cli::exit::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::environment::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::terminal_input::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::terminal_output::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::terminal_stdin::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::terminal_stdout::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    cli::terminal_stderr::add_to_linker::<InstanceState, WasiCli>(&mut l, InstanceState::cli)?;
    filesystem::preopens::add_to_linker::<InstanceState, WasiFilesystem>(
        &mut l,
        InstanceState::filesystem,
    )?;
    filesystem::types::add_to_linker::<InstanceState, WasiFilesystem>(
        &mut l,
        InstanceState::filesystem,
    )?;
    // Outgoing HTTP (through EgressHooks) and the auth broker.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
    v0_1::esox::provider::host::add_to_linker::<InstanceState, HasSelf<InstanceState>>(
        &mut l,
        |s| s,
    )?;
    Ok(l)
}

impl v0_1::esox::provider::types::Host for InstanceState {}

fn to_wit(e: ProviderError) -> v0_1::esox::provider::types::Error {
    use v0_1::esox::provider::types::Error as W;
    match e {
        ProviderError::NotFound => W::NotFound,
        ProviderError::NotModified => W::NotModified,
        ProviderError::InvalidConfig(m) => W::InvalidConfig(m),
        ProviderError::PermissionDenied(m) => W::PermissionDenied(m),
        ProviderError::Unavailable(m) => W::Unavailable(m),
        ProviderError::Unsupported(m) => W::Unsupported(m),
        ProviderError::Internal(m) => W::Internal(m),
    }
}

/// Longest plugin log line kept; the rest is cut so a plugin cannot flood the logs.
const MAX_LOG_LINE: usize = 2048;

impl v0_1::esox::provider::host::Host for InstanceState {
    async fn log(
        &mut self,
        level: v0_1::esox::provider::host::LogLevel,
        message: String,
    ) -> wasmtime::Result<()> {
        use v0_1::esox::provider::host::LogLevel as L;
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (plugin, store) = (&*self.plugin, &*self.store_id);
        match level {
            L::Trace => tracing::trace!(plugin, store, "{message}"),
            L::Debug => tracing::debug!(plugin, store, "{message}"),
            L::Info => tracing::info!(plugin, store, "{message}"),
            L::Warn => tracing::warn!(plugin, store, "{message}"),
            L::Error => tracing::error!(plugin, store, "{message}"),
        }
        Ok(())
    }

    async fn secret_key(
        &mut self,
        name: String,
        key: String,
        namespace: Option<String>,
    ) -> wasmtime::Result<Result<Vec<u8>, v0_1::esox::provider::types::Error>> {
        Ok(self
            .services
            .secret_key(&name, &key, namespace.as_deref())
            .await
            .map_err(to_wit))
    }

    async fn config_map_key(
        &mut self,
        name: String,
        key: String,
        namespace: Option<String>,
    ) -> wasmtime::Result<Result<String, v0_1::esox::provider::types::Error>> {
        Ok(self
            .services
            .config_map_key(&name, &key, namespace.as_deref())
            .await
            .map_err(to_wit))
    }

    async fn service_account_token(
        &mut self,
        name: String,
        namespace: Option<String>,
        audiences: Vec<String>,
        expiration_seconds: Option<u32>,
    ) -> wasmtime::Result<
        Result<v0_1::esox::provider::host::SaToken, v0_1::esox::provider::types::Error>,
    > {
        let request = TokenRequest {
            name,
            namespace,
            audiences,
            expiration_seconds,
        };
        Ok(self
            .services
            .service_account_token(request)
            .await
            .map(|t| v0_1::esox::provider::host::SaToken {
                token: t.token,
                expires_at: t.expires_at,
                annotations: t.annotations,
            })
            .map_err(to_wit))
    }
}
