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
//! - `esox:provider/host` (every contract version's): the auth broker, answered by the store's
//!   [`Broker`] within its grant.
//! - Limits: a memory cap enforced by [`MemoryCap`], and a CPU budget counted in epoch ticks
//!   observed while the guest runs (see [`CpuBudget`]).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::broker::{Broker, LogLevel};
use crate::contract::{v0_1, v0_2, v0_3};
use crate::egress::{self, DenialSink, EgressPolicy, HttpLimits};
use crate::metrics::{HostMetrics, PluginLabels};

/// Caps linear memory growth and remembers that the cap was hit, so a resulting trap can be
/// reported as "memory limit" rather than as a generic crash.
pub(crate) struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
    /// The largest size any memory of the instance has grown to (recycling looks at it).
    pub peak_bytes: usize,
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
        self.peak_bytes = self.peak_bytes.max(desired);
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
    broker: Arc<Broker>,
    log: LogBudget,
}

/// Log lines an instance may write per second; more are dropped and counted.
const LOG_LINES_PER_SECOND: u32 = 20;

struct LogBudget {
    window: Instant,
    lines: u32,
    metrics: HostMetrics,
}

impl InstanceState {
    pub fn new(
        broker: Arc<Broker>,
        policy: Arc<EgressPolicy>,
        http_limits: HttpLimits,
        on_denial: DenialSink,
        memory_bytes: usize,
        metrics: HostMetrics,
    ) -> Self {
        // The builder's defaults are what we want: no args, no env, no preopens, null stdio.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .allow_blocking_current_thread(false)
            .build();
        // Bounded resources: handles (fields, requests, streams, pollables) and the bytes of
        // each header set a plugin may make the host hold.
        let mut table = ResourceTable::new();
        table.set_max_capacity(http_limits.max_handles);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(http_limits.max_header_bytes);
        InstanceState {
            wasi,
            http,
            table,
            hooks: EgressHooks {
                policy,
                limits: http_limits,
                on_denial,
            },
            memory: MemoryCap {
                max_bytes: memory_bytes,
                hit: false,
                peak_bytes: 0,
            },
            cpu: CpuBudget {
                ticks: 0,
                budget: 0,
            },
            broker,
            log: LogBudget {
                window: Instant::now(),
                lines: 0,
                metrics,
            },
        }
    }

    /// Set the egress policy (resolved by the store's first instance before `open`).
    pub(crate) fn set_egress(&mut self, policy: Arc<EgressPolicy>) {
        self.hooks.policy = policy;
    }

    /// The store's broker (grant, services, token and identity bounds).
    pub(crate) fn broker(&self) -> &Broker {
        &self.broker
    }

    /// A plugin's log line: cut at [`MAX_LOG_LINE`] and rate-limited per instance.
    pub(crate) fn log(&mut self, level: LogLevel, mut message: String) {
        let now = Instant::now();
        if now.duration_since(self.log.window).as_secs() >= 1 {
            self.log.window = now;
            self.log.lines = 0;
        }
        self.log.lines += 1;
        let (plugin, store) = (&*self.broker.plugin, &*self.broker.store);
        if self.log.lines > LOG_LINES_PER_SECOND {
            self.log
                .metrics
                .log_dropped
                .get_or_create(&PluginLabels {
                    plugin: plugin.to_string(),
                })
                .inc();
            if self.log.lines == LOG_LINES_PER_SECOND + 1 {
                tracing::warn!(
                    plugin,
                    store,
                    "plugin logs more than {LOG_LINES_PER_SECOND} lines a second; dropping the rest of this second's"
                );
            }
            return;
        }
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        match level {
            LogLevel::Trace => tracing::trace!(plugin, store, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, store, "{message}"),
            LogLevel::Info => tracing::info!(plugin, store, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, store, "{message}"),
            LogLevel::Error => tracing::error!(plugin, store, "{message}"),
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
    // Every contract version's host interface: their names carry the version, so they coexist.
    v0_1::esox::provider::host::add_to_linker::<InstanceState, HasSelf<InstanceState>>(
        &mut l,
        |s| s,
    )?;
    v0_2::esox::provider::host::add_to_linker::<InstanceState, HasSelf<InstanceState>>(
        &mut l,
        |s| s,
    )?;
    v0_3::esox::provider::host::add_to_linker::<InstanceState, HasSelf<InstanceState>>(
        &mut l,
        |s| s,
    )?;
    Ok(l)
}

/// Longest plugin log line kept; the rest is cut so a plugin cannot flood the logs.
const MAX_LOG_LINE: usize = 2048;
