//! Plugin discovery: scan a directory for `NAME.wasm` (+ optional `NAME.toml`),
//! compile or load each from the cache, link it, and derive one tool per
//! exported function. A bad file is reported and skipped; the rest load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde_json::Value;
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker};

use super::admission;
use super::capability::dirs::{self, PinnedDir};
use super::capability::http::Resolver;
use super::capability::{Import, describe_import};
use super::docs::{FunctionDocs, PluginDocs};
use super::engine::{CacheOutcome, CompileCache, Engines};
use super::error::ToolError;
use super::manifest::Manifest;
use super::precedence::Precedence;
use super::runtime::{HostState, Plugin, Returns, Tool};
use super::sdk;
use super::shape::{Kind, Shape, ShapeError, TypeBudget, Unsupported, WitType, object_schema};
use super::stdio::escape_guest_text;
use super::values::Param;

/// Longest tool name every provider accepts.
const MAX_TOOL_NAME: usize = 64;
/// Largest description + parameter and result schemas of one tool, as JSON.
const MAX_TOOL_SCHEMA_BYTES: usize = 256 * 1024;

/// All loaded plugins and their tools.
pub struct Registry {
    tools: BTreeMap<String, Arc<Tool>>,
    report: LoadReport,
    data_dir: PathBuf,
    // Kept alive for the epoch ticker; plugins hold their engine too.
    _engines: Arc<Engines>,
}

/// What happened when the plugins directory was loaded.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LoadReport {
    /// The directory that was scanned.
    pub dir: PathBuf,
    /// Plugins that loaded.
    pub loaded: Vec<LoadedPlugin>,
    /// Files that were skipped, with the reason.
    pub failed: Vec<FailedPlugin>,
}

/// A plugin that loaded, with its tools and effective policy.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedPlugin {
    /// Plugin name.
    pub name: String,
    /// Component path.
    pub path: PathBuf,
    /// Manifest path, when there is one.
    pub manifest: Option<PathBuf>,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Time to compile or load, link and derive tools.
    pub load_ms: f64,
    /// Its tools.
    #[serde(serialize_with = "tool_names")]
    pub tools: Vec<Arc<Tool>>,
    /// Problems that did not stop the plugin from loading.
    pub warnings: Vec<String>,
    /// The `launch:plugin` SDK version it was built against, when it says.
    pub sdk: Option<String>,
    /// Exported functions that are not tools because the plugin's packed WIT
    /// world does not declare them (toolchain internals such as componentize-py's
    /// `init`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_exports: Vec<String>,
    /// Effective limits and grants.
    pub policy: Manifest,
}

impl LoadedPlugin {
    fn tools_named(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// The runtime plugin behind its tools (every loaded plugin has one).
    fn runtime(&self) -> &Plugin {
        &self.tools[0].plugin
    }

    /// Its granted directories, pinned.
    fn dirs(&self) -> &[PinnedDir] {
        &self.runtime().dirs
    }

    /// Why it cannot load beside `established`, which loaded first: a tool
    /// name they share, or grants that nest with a writable one.
    fn conflict_with(&self, established: &LoadedPlugin) -> Option<String> {
        if let Some(tool) = self.tools.iter().find(|t| established.tools_named(&t.name)) {
            return Some(collision(&tool.name, &established.name));
        }
        dirs::conflict(self.dirs(), established.dirs()).map(|(ours, theirs)| {
            format!(
                "grants.dirs: {} nests with {}, granted to plugin `{}`, and one of them is read-write, so one plugin could change what the other reads; grant separate directories (read-only grants may share one)",
                ours.display(),
                theirs.display(),
                established.name
            )
        })
    }
}

fn tool_names<S: serde::Serializer>(tools: &[Arc<Tool>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(tools.iter().map(|t| &t.name))
}

fn collision(tool: &str, plugin: &str) -> String {
    format!(
        "tool name `{tool}` is already provided by plugin `{plugin}`, which loaded first (plugins already in use keep their tools; a newcomer is refused); rename this file or remove `{plugin}` (tool names are PLUGIN_FUNCTION)"
    )
}

/// What `launch plugin check` learns about one component.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The component.
    pub path: PathBuf,
    /// Why the server would skip it; `None` when it would load.
    pub error: Option<String>,
    /// The plugin as it loaded (also when a name collision would skip it).
    pub plugin: Option<LoadedPlugin>,
    /// What it imports from the host, and what the sandbox allows of each.
    pub imports: Vec<Import>,
}

impl Inspection {
    /// The tools it would provide (none when it would not load).
    pub fn tools(&self) -> &[Arc<Tool>] {
        self.plugin.as_ref().map_or(&[], |p| p.tools.as_slice())
    }
}

/// A file that was not loaded.
#[derive(Debug, Clone, Serialize)]
pub struct FailedPlugin {
    /// The component (or manifest) path.
    pub path: PathBuf,
    /// What was wrong and what to do.
    pub error: String,
}

/// Options for loading a plugins directory.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The plugins directory.
    pub dir: PathBuf,
    /// The server's data folder: no grant may reach into it, and it keeps the
    /// record of which plugins came first.
    pub data_dir: PathBuf,
    /// Where compiled artifacts are cached (`DATA/cache/components` unless
    /// set otherwise); no grant may reach it either.
    pub cache_dir: PathBuf,
    /// How outbound HTTP resolves host names (the system's resolver).
    pub resolver: Resolver,
    /// More files and folders no grant may reach or contain (the server's
    /// configuration file).
    pub protected: Vec<PathBuf>,
}

impl LoadOptions {
    /// Plugins from `dir`, data (and the compile cache) in `data_dir`.
    pub fn new(dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            dir: dir.into(),
            cache_dir: data_dir.join("cache").join("components"),
            data_dir,
            resolver: Resolver::system(),
            protected: Vec::new(),
        }
    }
}

impl Registry {
    /// Scans `options.dir` and loads every plugin in it. Fails only when the
    /// directory itself or the engine cannot be used; bad plugins are reported
    /// in [`Registry::report`].
    pub fn load(options: &LoadOptions) -> Result<Self> {
        let loader = Loader::new(options)?;
        let mut report = LoadReport {
            dir: options.dir.clone(),
            ..LoadReport::default()
        };
        let mut tools: BTreeMap<String, Arc<Tool>> = BTreeMap::new();
        let precedence = Precedence::read(&options.data_dir);
        let paths = precedence.order(discover(&options.dir)?);
        let attempts = loader.load_all(&paths);
        // Results are taken in precedence order, so of two plugins that
        // conflict the newcomer is the one skipped, however the loads interleaved.
        let mut accepted: Vec<LoadedPlugin> = Vec::new();
        for (path, attempt) in paths.into_iter().zip(attempts) {
            match attempt {
                Ok((loaded, _)) => match accepted.iter().find_map(|p| loaded.conflict_with(p)) {
                    Some(error) => report.failed.push(FailedPlugin { path, error }),
                    None => accepted.push(loaded),
                },
                Err(e) => report.failed.push(FailedPlugin {
                    path,
                    error: format!("{e:#}"),
                }),
            }
        }
        admit(&mut accepted, &mut report.failed);
        // Reported by name, whatever the precedence.
        accepted.sort_by(|a, b| a.name.cmp(&b.name));
        for loaded in accepted {
            for warning in &loaded.warnings {
                tracing::warn!(plugin = %loaded.name, "{}", escape_guest_text(warning));
            }
            for tool in loaded.tools.iter().cloned() {
                tools.insert(tool.name.clone(), tool);
            }
            report.loaded.push(loaded);
        }
        for failed in &report.failed {
            // Errors quote parts of the component (names, parser messages).
            tracing::error!(path = %failed.path.display(), "plugin skipped: {}", escape_guest_text(&failed.error));
        }
        Ok(Self {
            tools,
            report,
            data_dir: options.data_dir.clone(),
            _engines: loader.engines,
        })
    }

    /// Loads one component the way [`Registry::load`] would, for `launch
    /// plugin check`: its tools, imports and warnings, or why it would be
    /// skipped. Plugins already in `options.dir` (other than one of the same
    /// name, which this file would replace) are loaded too, to find tool name
    /// collisions.
    pub fn inspect(path: &Path, options: &LoadOptions) -> Result<Inspection> {
        let loader = Loader::new(options)?;
        let mut inspection = Inspection {
            path: path.to_owned(),
            error: None,
            plugin: None,
            imports: Vec::new(),
        };
        let (mut loaded, imports) = match loader.load(path) {
            Ok(ok) => ok,
            Err(e) => {
                inspection.error = Some(format!("{e:#}"));
                return Ok(inspection);
            }
        };
        inspection.imports = imports
            .into_iter()
            .map(|name| describe_import(name, &loaded.policy.grants))
            .collect();
        if options.dir.is_dir() {
            // Of two plugins that conflict the server skips the one with less
            // precedence: once installed, this file is a newcomer unless a
            // plugin of its name is established.
            let file_name = path.file_name().unwrap_or_default();
            let precedence = Precedence::read(&options.data_dir);
            let mut conflicts = Vec::new();
            // Installing this file replaces one of the same name.
            let others: Vec<PathBuf> = precedence.order(
                discover(&options.dir)?
                    .into_iter()
                    .filter(|p| p.file_name() != Some(file_name))
                    .collect(),
            );
            for (other_path, attempt) in others.iter().zip(loader.load_all(&others)) {
                let Ok((other, _)) = attempt else {
                    continue;
                };
                let checked_first = precedence.position(&loaded.name).is_some_and(|mine| {
                    precedence
                        .position(&other.name)
                        .is_none_or(|theirs| mine < theirs)
                });
                if !checked_first {
                    if let Some(error) = loaded.conflict_with(&other) {
                        conflicts.push(format!("{error} (in {})", options.dir.display()));
                    }
                } else if let Some(error) = other.conflict_with(&loaded) {
                    loaded.warnings.push(format!(
                        "once this file is installed in {}, the server keeps it, since `{}` is established, and skips `{}`: {error}",
                        options.dir.display(),
                        loaded.name,
                        other_path.display(),
                    ));
                }
            }
            if !conflicts.is_empty() {
                inspection.error = Some(conflicts.join("; "));
            }
        }
        inspection.plugin = Some(loaded);
        Ok(inspection)
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<Tool>> {
        self.tools.values()
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<Tool>, ToolError> {
        self.tools.get(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_owned(),
            available: if self.tools.is_empty() {
                "none (no plugins are loaded)".into()
            } else {
                self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Calls tool `name` with JSON arguments.
    pub async fn call(&self, name: &str, args: &Value) -> Result<Value, ToolError> {
        let tool = match self.get(name) {
            Ok(tool) => tool,
            Err(e) => {
                // Unknown names share one label, so callers cannot grow the label set.
                metrics::counter!("launch_tool_calls_total", "tool" => "(unknown)", "outcome" => e.code()).increment(1);
                return Err(e);
            }
        };
        let started = std::time::Instant::now();
        let result = tool.call(args).await;
        let outcome = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
        metrics::counter!("launch_tool_calls_total", "tool" => tool.name.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("launch_tool_call_duration_seconds", "tool" => tool.name.clone())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// What loaded and what did not.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Records the plugins that loaded as established (in `plugins.json` in
    /// the data folder), so that a plugin dropped in later loses every
    /// conflict with them. The server does this once it serves them;
    /// inspection commands (`tools list`, `plugin check`) do not.
    pub fn establish(&self) -> Result<()> {
        Precedence::read(&self.data_dir).record(self.report.loaded.iter().map(|p| p.name.as_str()))
    }
}

/// Gives each plugin its share of its engine's instance pool (see
/// `admission.rs`): concurrency is lowered where the plugins together would
/// overflow the pool, and a plugin not even one call fits for is refused.
fn admit(plugins: &mut Vec<LoadedPlugin>, failed: &mut Vec<FailedPlugin>) {
    let mut refused = Vec::new();
    for metered in [false, true] {
        let on_engine: Vec<usize> = (0..plugins.len())
            .filter(|&i| plugins[i].policy.limits.fuel.is_some() == metered)
            .collect();
        let demands: Vec<_> = on_engine
            .iter()
            .map(|&i| {
                let plugin = &plugins[i];
                (plugin.policy.limits.max_concurrency, plugin.runtime().cost)
            })
            .collect();
        for (&i, granted) in on_engine.iter().zip(admission::divide(&demands)) {
            let plugin = &mut plugins[i];
            let wanted = plugin.policy.limits.max_concurrency;
            if granted == 0 {
                refused.push(i);
            } else if granted < wanted {
                plugin.runtime().limit_concurrency(wanted - granted);
                plugin.policy.limits.max_concurrency = granted;
                plugin.warnings.push(format!(
                    "max_concurrency lowered from {wanted} to {granted}: each call holds {} linear memories and {} tables, and the plugins together would need more instance slots than the pool has; each plugin keeps a share no other can take",
                    plugin.runtime().cost.memories, plugin.runtime().cost.tables
                ));
            }
        }
    }
    refused.sort_unstable();
    for i in refused.into_iter().rev() {
        let plugin = plugins.remove(i);
        let cost = plugin.runtime().cost;
        failed.push(FailedPlugin {
            path: plugin.path,
            error: format!(
                "no room in the instance pool: each call holds {} linear memories and {} tables, and the other plugins' shares leave less than that; remove plugins or use components that define fewer memories",
                cost.memories, cost.tables
            ),
        });
    }
}

fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // The filesystem goes through the quota layer, which wraps wasmtime-wasi's.
    linker.allow_shadowing(true);
    super::capability::quota::add_to_linker(&mut linker, HostState::quota_fs)?;
    linker.allow_shadowing(false);
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    super::host_api::add_to_linker(&mut linker, HostState::api)?;
    Ok(linker)
}

/// The plugins folder, the data folder and the compile cache, canonical: no
/// grant may reach into or contain them.
fn protected_dirs(options: &LoadOptions) -> Vec<PathBuf> {
    [&options.dir, &options.data_dir, &options.cache_dir]
        .into_iter()
        .chain(&options.protected)
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect()
}

/// `*.wasm` files directly in `dir`, sorted by name.
fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the plugins directory {}; create it or point --plugins / LAUNCH_PLUGINS_DIR at the folder holding NAME.wasm files",
            dir.display()
        )
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

struct Loaded {
    plugin: Arc<Plugin>,
    manifest_path: Option<PathBuf>,
    cache: CacheOutcome,
    tools: Vec<Tool>,
    warnings: Vec<String>,
    imports: Vec<String>,
    sdk: Option<semver::Version>,
    ignored_exports: Vec<String>,
}

/// A loaded plugin and its imports.
type Attempt = (LoadedPlugin, Vec<String>);

/// What loading a plugin needs: engines, linkers, the compile cache and the
/// directories no grant may touch.
struct Loader {
    engines: Arc<Engines>,
    linkers: [Linker<HostState>; 2],
    cache: CompileCache,
    protected: Vec<PathBuf>,
    resolver: Resolver,
}

impl Loader {
    fn new(options: &LoadOptions) -> Result<Self> {
        let engines = Arc::new(Engines::new()?);
        std::fs::create_dir_all(&options.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                options.data_dir.display()
            )
        })?;
        let cache = CompileCache::new(&options.cache_dir)?;
        Ok(Self {
            linkers: [linker(&engines.plain)?, linker(&engines.metered)?],
            cache,
            protected: protected_dirs(options),
            resolver: options.resolver.clone(),
            engines,
        })
    }

    /// Loads `paths` on every core (compiling or deserializing large
    /// components dominates startup); results in the order of `paths`.
    fn load_all(&self, paths: &[PathBuf]) -> Vec<Result<Attempt>> {
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(paths.len());
        if workers <= 1 {
            return paths.iter().map(|p| self.load(p)).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut results: Vec<(usize, Result<Attempt>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(path) = paths.get(i) else { break };
                            done.push((i, self.load(path)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                // `load` catches panics; were a worker to die anyway, its
                // plugins are reported as failed below, never dropped.
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut ordered: Vec<Option<_>> = paths.iter().map(|_| None).collect();
        for (i, result) in results.drain(..) {
            ordered[i] = Some(result);
        }
        ordered
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("the loader thread crashed"))))
            .collect()
    }

    /// Loads one plugin; also returns its imports.
    fn load(&self, path: &Path) -> Result<Attempt> {
        let started = Instant::now();
        // A panic while decoding or compiling a hostile file must not stop
        // the server from starting: it is one more reported failure.
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            load_plugin(path, self)
        }))
        .unwrap_or_else(|_| Err(anyhow!("loading it crashed the loader (a bug in a parser it uses); the file is probably malformed")))?;
        let plugin = LoadedPlugin {
            name: loaded.plugin.name.to_string(),
            path: path.to_owned(),
            manifest: loaded.manifest_path,
            cache: loaded.cache,
            load_ms: started.elapsed().as_secs_f64() * 1000.0,
            tools: loaded.tools.into_iter().map(Arc::new).collect(),
            warnings: loaded.warnings,
            sdk: loaded.sdk.map(|v| v.to_string()),
            ignored_exports: loaded.ignored_exports,
            policy: loaded.plugin.manifest.clone(),
        };
        Ok((plugin, loaded.imports))
    }
}

fn load_plugin(path: &Path, loader: &Loader) -> Result<Loaded> {
    let Loader {
        engines,
        linkers,
        cache,
        protected,
        resolver,
    } = loader;
    let name = plugin_name(path)?;
    let manifest_path = path.with_extension("toml");
    let (manifest, manifest_path) = if manifest_path.is_file() {
        (Manifest::load(&manifest_path)?, Some(manifest_path))
    } else {
        (Manifest::default(), None)
    };
    let dirs = dirs::pin(&manifest.grants.dirs)?;
    // The plugin's own CA files are read at load: no grant of it may change them.
    let ca_files: Vec<PathBuf> = manifest
        .grants
        .http
        .iter()
        .filter_map(|g| g.ca.as_ref().and_then(|ca| std::fs::canonicalize(ca).ok()))
        .collect();
    dirs::check_protected(&dirs, &[&protected[..], &ca_files[..]].concat())?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "not a WebAssembly file (bad magic bytes); expected a component built for wasm32-wasip2"
        );
    }
    if wasmparser::Parser::is_core_wasm(&bytes) {
        bail!(
            "this is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
        );
    }
    let mut warnings = Vec::new();
    let docs = match super::docs::extract(&bytes) {
        Ok(Some(docs)) => Some(docs),
        Ok(None) => {
            warnings.push(format!(
                "plugin `{name}` carries no WIT docs, so its tools have no descriptions and the model must guess how to use them; build it with `launch plugin pack --wit WIT_DIR {}`",
                path.display()
            ));
            None
        }
        Err(e) => {
            warnings.push(format!("plugin `{name}` has an unreadable docs section ({e:#}); its tools have no descriptions"));
            None
        }
    };
    let fuel = manifest.limits.fuel.is_some();
    let engine = engines.for_fuel(fuel);
    let (component, cache_outcome) = cache
        .load(engine, &bytes)
        .map_err(|e| anyhow!("cannot compile: {e:#}"))?;
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let declared = sdk::Declared {
        imported: imported_sdk(&imports)?,
        packed: docs.as_ref().and_then(PluginDocs::sdk_version),
    };
    declared.check()?;
    let linker = &linkers[usize::from(fuel)];
    let pre = linker.instantiate_pre(&component).map_err(|e| match declared.newer_than_host() {
        Some(v) => anyhow!(
            "{e:#}. The plugin was built against {}@{v}, newer than this host's {}; upgrade Launch, or rebuild the plugin with the SDK in this Launch's wit/ folder",
            sdk::PACKAGE, sdk::VERSION
        ),
        None => anyhow!(
            "{e:#}. The host provides WASI 0.2 (cli, io, clocks, random, filesystem, sockets, http) and {}@{} (log, config); rebuild the plugin against those",
            sdk::PACKAGE, sdk::accepted()
        ),
    })?;
    let cost = admission::CallCost::of(&component);
    let plugin = Arc::new(Plugin::new(
        name.clone(),
        manifest,
        dirs,
        cost,
        resolver.clone(),
        pre,
    )?);
    let mut ignored_exports = Vec::new();
    let tools = derive_tools(
        &plugin,
        &component,
        docs.as_ref(),
        &mut warnings,
        &mut ignored_exports,
    )?;
    if tools.is_empty() {
        bail!(
            "exports no functions, so it provides no tools; export at least one documented function from its world"
        );
    }
    Ok(Loaded {
        plugin,
        manifest_path,
        cache: cache_outcome,
        tools,
        warnings,
        imports,
        sdk: declared.version().cloned(),
        ignored_exports,
    })
}

/// The highest `launch:plugin` version among a component's imports.
fn imported_sdk(imports: &[String]) -> Result<Option<semver::Version>> {
    let mut highest = None;
    for import in imports {
        if let Some(version) = sdk::imported_version(import) {
            let version = version.map_err(|e| {
                anyhow!("imports `{import}`, whose version is not a semver version ({e})")
            })?;
            highest = highest.max(Some(version));
        }
    }
    Ok(highest)
}

/// The plugin name from `NAME.wasm`: letters, digits, `-` and `_`.
fn plugin_name(path: &Path) -> Result<Arc<str>> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem.is_empty()
        || !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!(
            "the file name {stem:?} is not a valid plugin name; use letters, digits, '-' and '_' (e.g. my-tool.wasm)"
        );
    }
    Ok(stem.into())
}

/// `kebab-case` WIT names and plugin names become `snake_case` tool names.
fn tool_name(plugin: &str, func: &str) -> String {
    format!("{}_{}", plugin.replace('-', "_"), func.replace('-', "_")).to_ascii_lowercase()
}

fn derive_tools(
    plugin: &Arc<Plugin>,
    component: &Component,
    docs: Option<&PluginDocs>,
    warnings: &mut Vec<String>,
    ignored_exports: &mut Vec<String>,
) -> Result<Vec<Tool>> {
    let engine = component.engine();
    let ty = component.component_type();
    let mut found: Vec<(Option<String>, String, ComponentFunc)> = Vec::new();
    for (export, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => found.push((None, export.to_owned(), f)),
            ComponentItem::ComponentInstance(instance) => {
                for (func, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = item.ty {
                        found.push((Some(export.to_owned()), func.to_owned(), f));
                    }
                }
            }
            _ => {}
        }
    }
    let mut tools: Vec<Tool> = Vec::new();
    let mut budget = TypeBudget::default();
    for (interface, func, ty) in found {
        budget.next_tool();
        let export_name = match &interface {
            Some(i) => format!("{i}#{func}"),
            None => func.clone(),
        };
        let name = tool_name(&plugin.name, &func);
        if name.len() > MAX_TOOL_NAME {
            bail!(
                "tool name `{name}` for export `{export_name}` is longer than {MAX_TOOL_NAME} characters, which providers reject; shorten the plugin file name or the function name"
            );
        }
        if let Some(other) = tools.iter().find(|t| t.name == name) {
            bail!(
                "exports `{}` and `{export_name}` both become tool `{name}`; tool names must be unique, so rename one of the functions",
                other.export_name
            );
        }
        let wit_func = docs.and_then(|d| d.function(interface.as_deref(), &func));
        if docs.is_some() && wit_func.is_none() {
            // The packed world is the plugin's declaration of its tools; other
            // exports are toolchain plumbing (componentize-py exports `init`).
            ignored_exports.push(export_name);
            continue;
        }
        match describe_function(&ty, wit_func, docs, &mut budget) {
            Ok((params, returns, fdocs)) => {
                if docs.is_some() && fdocs.summary.is_empty() {
                    warnings.push(format!("function `{export_name}` has no `///` doc comment; the model sees no description for tool `{name}`"));
                }
                for p in &params {
                    if docs.is_some() && !fdocs.params.contains_key(&p.name) {
                        warnings.push(format!(
                            "parameter `{}` of `{export_name}` has no `@param {}` doc line",
                            p.name, p.name
                        ));
                    }
                }
                let export_index = export_index(component, interface.as_deref(), &func)?;
                let description = if fdocs.summary.is_empty() {
                    format!(
                        "Function `{export_name}` of plugin `{}` (undocumented).",
                        plugin.name
                    )
                } else {
                    fdocs.summary.clone()
                };
                let parameters = object_schema(params.iter().map(|p| {
                    (
                        p.name.as_str(),
                        &p.shape,
                        fdocs.params.get(&p.name).map(String::as_str),
                    )
                }));
                let output_schema = match &returns {
                    Returns::Nothing => None,
                    Returns::Value(s) => Some(s.schema()),
                    Returns::Fallible { ok, .. } => ok.as_ref().map(Shape::schema),
                };
                let schema_bytes = serde_json::to_vec(&(&description, &parameters, &output_schema))
                    .map_or(usize::MAX, |v| v.len());
                if schema_bytes > MAX_TOOL_SCHEMA_BYTES {
                    bail!(
                        "tool `{name}` would be described to the model with {schema_bytes} bytes of schema and docs, more than {MAX_TOOL_SCHEMA_BYTES}; simplify the types or shorten the docs of `{export_name}`"
                    );
                }
                tools.push(Tool {
                    hostcall_fuel: super::runtime::hostcall_fuel(&returns, &plugin.manifest.limits),
                    name,
                    plugin: plugin.clone(),
                    export_name,
                    description,
                    parameters,
                    output_schema,
                    params,
                    returns,
                    export: export_index,
                });
            }
            Err(ShapeError::TooLarge(why)) => bail!(
                "the types of `{export_name}` are too large to describe to a model ({why}); simplify its parameters and result"
            ),
            Err(e) => warnings.push(format!(
                "function `{export_name}` is not offered as a tool: {e}"
            )),
        }
    }
    Ok(tools)
}

fn export_index(
    component: &Component,
    interface: Option<&str>,
    func: &str,
) -> Result<wasmtime::component::ComponentExportIndex> {
    let parent = match interface {
        Some(i) => Some(
            component
                .get_export_index(None, i)
                .with_context(|| format!("export `{i}` not found"))?,
        ),
        None => None,
    };
    component
        .get_export_index(parent.as_ref(), func)
        .with_context(|| format!("export `{func}` not found"))
}

type Described = (Vec<Param>, Returns, FunctionDocs);

fn describe_function(
    ty: &ComponentFunc,
    wit: Option<&wit_parser::Function>,
    docs: Option<&PluginDocs>,
    budget: &mut TypeBudget,
) -> Result<Described, ShapeError> {
    let context = |what: String| {
        move |e: ShapeError| match e {
            ShapeError::Unsupported(u) => Unsupported(format!("{what} is {}", u.0)).into(),
            too_large => too_large,
        }
    };
    let wit_params = wit
        .map(|f| &f.params)
        .filter(|p| p.len() == ty.params().len());
    let mut params = Vec::with_capacity(ty.params().len());
    for (i, (name, param_ty)) in ty.params().enumerate() {
        let wit_ty = docs
            .zip(wit_params.and_then(|p| p.get(i)).filter(|p| p.name == name))
            .map(|(d, p)| WitType {
                resolve: &d.resolve,
                ty: p.ty,
            });
        params.push(Param {
            name: name.to_owned(),
            shape: Shape::from_type(&param_ty, wit_ty, budget)
                .map_err(context(format!("parameter `{name}`")))?,
        });
    }
    let result_wit = docs.zip(wit.and_then(|f| f.result)).map(|(d, ty)| WitType {
        resolve: &d.resolve,
        ty,
    });
    let returns = match ty.results().next() {
        None => Returns::Nothing,
        Some(result_ty) => {
            let shape = Shape::from_type(&result_ty, result_wit, budget)
                .map_err(context("its result".into()))?;
            match shape.kind {
                Kind::Result { ok, err } => Returns::Fallible {
                    ok: ok.map(|b| *b),
                    err: err.map(|b| *b),
                },
                _ => Returns::Value(shape),
            }
        }
    };
    let fdocs = wit
        .and_then(|f| f.docs.contents.as_deref())
        .map(FunctionDocs::parse)
        .unwrap_or_default();
    Ok((params, returns, fdocs))
}
