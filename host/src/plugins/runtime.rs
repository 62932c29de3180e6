//! Running one tool call: a fresh, bounded `Store` per call, instantiated from
//! the plugin's `InstancePre`, with the deadline, memory limiter, fuel and
//! output cap of its manifest, and every failure mapped to a [`ToolError`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use wasmtime::component::{ComponentExportIndex, InstancePre, ResourceTable, Val};
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::admission::{self, CallCost};
use super::capability::dirs::{self, PinnedDir};
use super::capability::http::{HttpGate, HttpPolicy, Resolver};
use super::capability::quota::{FsQuotas, QuotaFs, Usage};
use super::capability::{env, secrets};
use super::cpu::{self, CallTurns};
use super::error::ToolError;
use super::host_api::PluginApi;
use super::manifest::Manifest;
use super::shape::Shape;
use super::stdio::{Capture, escape_guest_text};
use super::values::{Param, args_to_vals, val_to_json};

/// Everything one `Store` holds for one call.
pub struct HostState {
    wasi: Wasi,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    api: PluginApi,
    fs_quotas: FsQuotas,
    limiter: MemoryLimiter,
}

/// The WASI context and resource table, apart from the rest of the state so
/// the filesystem quota layer can borrow both at once.
struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Wasi {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.wasi.table,
            hooks: &mut self.http_gate,
        }
    }
}

impl HostState {
    /// The `launch:plugin` API state, for the linker.
    pub fn api(&mut self) -> &mut PluginApi {
        &mut self.api
    }

    /// The `wasi:filesystem` host with this call's quotas, for the linker.
    pub fn quota_fs(&mut self) -> QuotaFs<'_> {
        QuotaFs {
            fs: WasiFilesystemView::filesystem(&mut self.wasi),
            quotas: &mut self.fs_quotas,
        }
    }
}

/// Caps linear memory, tables and instances, remembering whether the memory
/// cap was what stopped the guest so the trap can be reported precisely.
struct MemoryLimiter {
    memory_bytes: usize,
    /// Sum of all linear memories of the instance: the limit is per instance,
    /// not per memory, so many small memories cannot add up past it.
    memory_total: usize,
    memory_exceeded: bool,
}

/// Most host resources (streams, files, HTTP fields...) one call may hold.
const MAX_RESOURCES: usize = 1024;
/// Largest header map one HTTP fields resource may hold.
const MAX_HTTP_FIELDS_BYTES: usize = 64 * 1024;
/// Host bytes a lifted result may take per byte of allowed JSON output.
const RESULT_HOST_BYTES_PER_OUTPUT_BYTE: f64 = 16.0;
/// Least hostcall fuel a call gets, whatever its result type: what one host
/// call (a file or stream write) may carry from the guest.
const MIN_HOSTCALL_FUEL: usize = 1 << 20;
/// Fuel units between yields to the async runtime, for metered plugins.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// Most elements of one table.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_add(desired.saturating_sub(current));
        if total > self.memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        admission::MAX_CORE_INSTANCES_PER_COMPONENT as usize
    }

    fn tables(&self) -> usize {
        admission::MAX_TABLES_PER_COMPONENT as usize
    }

    fn memories(&self) -> usize {
        admission::MAX_MEMORIES_PER_COMPONENT as usize
    }
}

/// A loaded plugin, ready to instantiate.
pub struct Plugin {
    /// Name (the file stem), used in tool names and logs.
    pub name: Arc<str>,
    /// Validated manifest (defaults when there is none).
    pub manifest: Manifest,
    pre: InstancePre<HostState>,
    /// Granted directories, pinned at load.
    pub(crate) dirs: Vec<PinnedDir>,
    /// The quota usage of each granted directory, in preopen order.
    quota_grants: Arc<[Option<Arc<Usage>>]>,
    /// What one call holds in the instance pool.
    pub(crate) cost: CallCost,
    permits: Semaphore,
    cpu_turns: Arc<Semaphore>,
    config: Arc<BTreeMap<String, String>>,
    env: Vec<(String, String)>,
    http: Arc<HttpPolicy>,
}

impl Plugin {
    /// Wraps a linked component with its manifest, resolving environment
    /// and secret grants from the server's environment.
    pub fn new(
        name: Arc<str>,
        mut manifest: Manifest,
        dirs: Vec<PinnedDir>,
        cost: CallCost,
        resolver: Resolver,
        pre: InstancePre<HostState>,
    ) -> anyhow::Result<Self> {
        // The policy reports where the pinned directories really are.
        manifest.grants.dirs = dirs.iter().map(|d| d.grant.clone()).collect();
        let env = env::resolve(&manifest.grants.env);
        // Secrets only ever reach injected HTTP headers, never the guest.
        let secrets = secrets::resolve(&manifest.grants.secrets)?;
        let http = Arc::new(HttpPolicy::new(&manifest, &secrets, resolver)?);
        let config = manifest.grants.config.clone();
        Ok(Self {
            permits: Semaphore::new(manifest.limits.max_concurrency as usize),
            cpu_turns: cpu::plugin_turns(),
            config: Arc::new(config),
            env,
            http,
            name,
            manifest,
            quota_grants: dirs.iter().map(|d| d.usage.clone()).collect(),
            dirs,
            cost,
            pre,
        })
    }

    /// Takes `fewer` call slots away for good (its share of the instance pool
    /// is smaller than its manifest asks for).
    pub(crate) fn limit_concurrency(&self, fewer: u32) {
        self.permits.forget_permits(fewer as usize);
    }

    fn new_store(
        &self,
        stdout: &Capture,
        stderr: &Capture,
        hostcall_fuel: usize,
    ) -> Result<Store<HostState>, ToolError> {
        let mut wasi = WasiCtxBuilder::new();
        // Spelled out rather than left to upstream defaults: no raw sockets,
        // no name lookups (outbound HTTP goes through the wasi:http gate).
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        env::apply(&mut wasi, &self.env);
        wasi.args(&[&*self.name]);
        dirs::apply(&mut wasi, &self.dirs).map_err(|e| ToolError::Unavailable {
            plugin: self.name.to_string(),
            message: format!("{e:#}"),
        })?;
        let limits = &self.manifest.limits;
        let state = HostState {
            wasi: Wasi {
                ctx: wasi.build(),
                table: {
                    let mut table = ResourceTable::new();
                    table.set_max_capacity(MAX_RESOURCES);
                    table
                },
            },
            fs_quotas: FsQuotas::new(self.quota_grants.clone()),
            http: {
                let mut http = WasiHttpCtx::new();
                http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
                http
            },
            http_gate: HttpGate::new(self.name.clone(), self.http.clone()),
            api: PluginApi::new(self.name.clone(), self.config.clone()),
            limiter: MemoryLimiter {
                memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                memory_total: 0,
                memory_exceeded: false,
            },
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Bound what the guest can make the host allocate outside linear
        // memory: lifted arguments of each host call and the lifted result
        // (see `hostcall_fuel`).
        store.set_hostcall_fuel(hostcall_fuel);
        // Every tick the guest yields to the async runtime (so a spinning
        // plugin never holds a worker thread), takes turns with other long
        // calls once it has run a while (cpu.rs), and is stopped once past
        // its deadline.
        let deadline = std::time::Instant::now() + limits.timeout;
        let mut turns = CallTurns::new(self.cpu_turns.clone(), deadline);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if std::time::Instant::now() >= deadline {
                Err(Trap::Interrupt.into())
            } else {
                Ok(turns.tick())
            }
        });
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel).map_err(|e| self.unavailable(e))?;
            store
                .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
                .map_err(|e| self.unavailable(e))?;
        }
        Ok(store)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> ToolError {
        ToolError::Unavailable {
            plugin: self.name.to_string(),
            message: e.to_string(),
        }
    }
}

/// What a function returns, and how that becomes the tool's outcome.
#[derive(Debug, Clone)]
pub enum Returns {
    /// Nothing: the tool result is `null`.
    Nothing,
    /// A plain value: always success.
    Value(Shape),
    /// `result<T, E>`: `ok` is the tool result, `err` a reported tool error.
    Fallible {
        /// The `ok` type, if any.
        ok: Option<Shape>,
        /// The `err` type, if any.
        err: Option<Shape>,
    },
}

/// The hostcall fuel of a tool's calls: its result, lifted into `Val`s, may
/// take at most `RESULT_HOST_BYTES_PER_OUTPUT_BYTE` host bytes per byte of
/// the plugin's output limit, whatever its type (the fuel is that budget
/// divided by the type's host bytes per fuel unit), and never less than
/// `MIN_HOSTCALL_FUEL`.
pub fn hostcall_fuel(returns: &Returns, limits: &super::manifest::Limits) -> usize {
    let ratio = match returns {
        Returns::Nothing => 1.0,
        Returns::Value(shape) => shape.lift_cost_ratio(),
        Returns::Fallible { ok, err } => [ok, err]
            .into_iter()
            .flatten()
            .map(Shape::lift_cost_ratio)
            .fold(1.0, f64::max),
    };
    let budget = limits.max_output_bytes as f64 * RESULT_HOST_BYTES_PER_OUTPUT_BYTE;
    // The float is finite and positive; `as` saturates at usize::MAX.
    ((budget / ratio) as usize).max(MIN_HOSTCALL_FUEL)
}

/// One callable tool: an exported function of a plugin.
pub struct Tool {
    /// Provider-safe unique name, `plugin_function`.
    pub name: String,
    /// The plugin providing it.
    pub plugin: Arc<Plugin>,
    /// The WIT export path, e.g. `evaluate` or `launch:text/tools@0.1.0#split`.
    pub export_name: String,
    /// Description for the model, from the WIT docs.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// JSON Schema of a successful result, when there is one.
    pub output_schema: Option<Value>,
    pub(crate) params: Vec<Param>,
    pub(crate) returns: Returns,
    pub(crate) export: ComponentExportIndex,
    /// Hostcall fuel per call, from the result type (see [`hostcall_fuel`]).
    pub(crate) hostcall_fuel: usize,
}

impl Tool {
    /// The tool as clients see it (`GET /v1/tools`, `launch tools list
    /// --json`): name, plugin, WIT export, description and both schemas.
    pub fn describe(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "plugin": &*self.plugin.name,
            "export": self.export_name,
            "description": self.description,
            "parameters": self.parameters,
            "output_schema": self.output_schema,
        })
    }
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("export_name", &self.export_name)
            .finish_non_exhaustive()
    }
}

/// Extra time past the epoch deadline before the host gives up on a call that
/// is stuck in a host function (where epochs cannot interrupt it).
const HOST_CALL_GRACE: Duration = Duration::from_millis(250);

impl Tool {
    /// Validates `args`, runs the function in a fresh instance and converts
    /// the result. Never panics on guest behaviour.
    pub async fn call(&self, args: &Value) -> Result<Value, ToolError> {
        let params = args_to_vals(&self.params, args)?;
        let plugin = &self.plugin;
        let _permit = plugin
            .permits
            .acquire()
            .await
            .map_err(|e| plugin.unavailable(e))?;
        let limits = &plugin.manifest.limits;
        let cap = usize::try_from(limits.max_log_bytes).unwrap_or(usize::MAX);
        let (stdout, stderr) = (Capture::new(cap), Capture::new(cap));
        let mut store = plugin.new_store(&stdout, &stderr, self.hostcall_fuel)?;
        let mut results =
            vec![Val::Bool(false); usize::from(!matches!(self.returns, Returns::Nothing))];

        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let func = instance.get_func(&mut store, self.export).ok_or_else(|| {
                wasmtime::format_err!("export `{}` disappeared", self.export_name)
            })?;
            func.call_async(&mut store, &params, &mut results).await
        };
        let outcome = tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, run).await;
        log_output(&plugin.name, "stdout", &stdout);
        let (stderr_text, stderr_dropped) = stderr.take();
        log_text(&plugin.name, "stderr", &stderr_text, stderr_dropped);
        let quota_hit = store.data().fs_quotas.hit();
        let result = match outcome {
            Err(_elapsed) => Err(ToolError::Timeout {
                plugin: plugin.name.to_string(),
                limit: limits.timeout,
            }),
            Ok(Err(e)) => Err(self.classify(e, &store, &stderr_text)),
            Ok(Ok(())) => {
                drop(store);
                self.finish(results.pop())
            }
        };
        // A call that failed after running into a disk quota failed because of it.
        match (result, quota_hit) {
            (Err(ToolError::Failed { .. } | ToolError::Trap { .. }), Some(usage)) => {
                Err(ToolError::QuotaExceeded {
                    plugin: plugin.name.to_string(),
                    grant: usage.describe(),
                })
            }
            (result, _) => result,
        }
    }

    /// Turns the returned value into the tool's outcome, refusing a result
    /// whose JSON would pass the output limit before building it.
    fn finish(&self, result: Option<Val>) -> Result<Value, ToolError> {
        let limit = self.plugin.manifest.limits.max_output_bytes;
        let json = |v: &Val| {
            val_to_json(v, limit).map_err(|_| ToolError::OutputTooLarge {
                plugin: self.plugin.name.to_string(),
                limit,
            })
        };
        let (failed, value) = match (&self.returns, result) {
            (Returns::Fallible { .. }, Some(Val::Result(outcome))) => {
                let failed = outcome.is_err();
                match outcome.unwrap_or_else(|e| e) {
                    Some(v) => (failed, json(&v)?),
                    None => (failed, Value::Null),
                }
            }
            (_, Some(v)) => (false, json(&v)?),
            (_, None) => (false, Value::Null),
        };
        if !failed {
            return Ok(value);
        }
        let message = match &value {
            Value::String(s) => s.clone(),
            Value::Null => "the tool reported an error without details".to_owned(),
            other => other.to_string(),
        };
        Err(ToolError::Failed {
            message,
            details: value,
        })
    }

    fn classify(&self, e: wasmtime::Error, store: &Store<HostState>, stderr: &str) -> ToolError {
        let plugin = self.plugin.name.to_string();
        let limits = &self.plugin.manifest.limits;
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                return ToolError::Timeout {
                    plugin,
                    limit: limits.timeout,
                };
            }
            Some(Trap::OutOfFuel) => {
                return ToolError::OutOfFuel {
                    plugin,
                    fuel: limits.fuel.unwrap_or_default(),
                };
            }
            Some(Trap::StackOverflow) => return ToolError::StackOverflow { plugin },
            _ => {}
        }
        // A failed memory.grow the guest did not survive.
        if store.data().limiter.memory_exceeded {
            return ToolError::OutOfMemory {
                plugin,
                limit: limits.memory_bytes,
            };
        }
        if format!("{e:#}").contains("fuel allocated for hostcalls has been exhausted") {
            return ToolError::OutputTooLarge {
                plugin,
                limit: limits.max_output_bytes,
            };
        }
        match e.downcast_ref::<Trap>() {
            Some(trap) => ToolError::Trap {
                plugin,
                message: with_panic_message(&trap.to_string(), stderr),
            },
            None if is_pool_exhausted(&e) => ToolError::Unavailable {
                plugin,
                message: "too many plugin instances are running; try again shortly".into(),
            },
            None => ToolError::Trap {
                plugin,
                message: with_panic_message(&format!("{e:#}"), stderr),
            },
        }
    }
}

fn is_pool_exhausted(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
}

/// Adds the guest's panic message, if it printed one, to a trap description.
fn with_panic_message(trap: &str, stderr: &str) -> String {
    match stderr.find("panicked at") {
        Some(start) => {
            let panic = stderr[start..].trim();
            let panic: String = panic.chars().take(2000).collect();
            format!("{} ({trap})", escape_guest_text(&panic))
        }
        None => trap.to_owned(),
    }
}

fn log_output(plugin: &str, stream: &str, capture: &Capture) {
    let (text, dropped) = capture.take();
    log_text(plugin, stream, &text, dropped);
}

fn log_text(plugin: &str, stream: &str, text: &str, dropped: u64) {
    if !text.is_empty() {
        let text = escape_guest_text(text.trim_end());
        tracing::info!(target: "launch::plugin", plugin, stream, dropped_bytes = dropped, "{text}");
    } else if dropped > 0 {
        tracing::info!(target: "launch::plugin", plugin, stream, dropped_bytes = dropped, "output dropped");
    }
}
