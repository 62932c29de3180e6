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

use super::docs::{FunctionDocs, PluginDocs};
use super::engine::{CacheOutcome, CompileCache, Engines};
use super::error::ToolError;
use super::manifest::Manifest;
use super::runtime::{HostState, Plugin, Returns, Tool};
use super::shape::{Kind, Shape, WitType, object_schema};
use super::values::Param;

/// Longest tool name every provider accepts.
const MAX_TOOL_NAME: usize = 64;

/// All loaded plugins and their tools.
pub struct Registry {
    tools: BTreeMap<String, Arc<Tool>>,
    report: LoadReport,
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
    /// Tool names.
    pub tools: Vec<String>,
    /// Problems that did not stop the plugin from loading.
    pub warnings: Vec<String>,
    /// Effective limits and grants.
    pub policy: Manifest,
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
    /// Where compiled artifacts are cached.
    pub cache_dir: PathBuf,
}

impl Registry {
    /// Scans `options.dir` and loads every plugin in it. Fails only when the
    /// directory itself or the engine cannot be used; bad plugins are reported
    /// in [`Registry::report`].
    pub fn load(options: &LoadOptions) -> Result<Self> {
        let engines = Arc::new(Engines::new()?);
        let cache = CompileCache::new(&options.cache_dir)?;
        let linkers = [linker(&engines.plain)?, linker(&engines.metered)?];
        let mut report = LoadReport {
            dir: options.dir.clone(),
            ..LoadReport::default()
        };
        let mut tools: BTreeMap<String, Arc<Tool>> = BTreeMap::new();
        let protected = protected_dirs(options);
        for path in discover(&options.dir)? {
            let started = Instant::now();
            // A panic while decoding or compiling a hostile file must not stop
            // the server from starting: it is one more reported failure.
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                load_plugin(&path, &engines, &linkers, &cache, &protected)
            }))
            .unwrap_or_else(|_| Err(anyhow!("loading it crashed the loader (a bug in a parser it uses); the file is probably malformed")));
            match attempt {
                Ok(loaded) => {
                    if let Some(clash) = loaded.tools.iter().find_map(|t| tools.get(&t.name)) {
                        report.failed.push(FailedPlugin {
                            path,
                            error: format!(
                                "tool name `{}` is already provided by plugin `{}`; rename one of the files (tool names are PLUGIN_FUNCTION)",
                                clash.name, clash.plugin.name
                            ),
                        });
                        continue;
                    }
                    for warning in &loaded.warnings {
                        tracing::warn!(plugin = %loaded.plugin.name, "{warning}");
                    }
                    report.loaded.push(LoadedPlugin {
                        name: loaded.plugin.name.to_string(),
                        path: path.clone(),
                        manifest: loaded.manifest_path,
                        cache: loaded.cache,
                        load_ms: started.elapsed().as_secs_f64() * 1000.0,
                        tools: loaded.tools.iter().map(|t| t.name.clone()).collect(),
                        warnings: loaded.warnings,
                        policy: loaded.plugin.manifest.clone(),
                    });
                    for tool in loaded.tools {
                        tools.insert(tool.name.clone(), Arc::new(tool));
                    }
                }
                Err(e) => report.failed.push(FailedPlugin {
                    path,
                    error: format!("{e:#}"),
                }),
            }
        }
        for failed in &report.failed {
            tracing::error!(path = %failed.path.display(), "plugin skipped: {}", failed.error);
        }
        Ok(Self {
            tools,
            report,
            _engines: engines,
        })
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
}

fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    super::host_api::add_to_linker(&mut linker, HostState::api)?;
    Ok(linker)
}

/// The plugins folder and the compile cache, canonical: no grant may touch them.
fn protected_dirs(options: &LoadOptions) -> Vec<PathBuf> {
    [&options.dir, &options.cache_dir]
        .into_iter()
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
}

fn load_plugin(
    path: &Path,
    engines: &Engines,
    linkers: &[Linker<HostState>; 2],
    cache: &CompileCache,
    protected: &[PathBuf],
) -> Result<Loaded> {
    let name = plugin_name(path)?;
    let manifest_path = path.with_extension("toml");
    let (manifest, manifest_path) = if manifest_path.is_file() {
        (Manifest::load(&manifest_path)?, Some(manifest_path))
    } else {
        (Manifest::default(), None)
    };
    for dir in &manifest.grants.dirs {
        if let Some(p) = protected
            .iter()
            .find(|p| p.starts_with(&dir.host) || dir.host.starts_with(p))
        {
            bail!(
                "grants.dirs: {} overlaps {}, which holds the server's plugins or data; a plugin could rewrite grants or compiled code there; grant another directory",
                dir.host.display(),
                p.display()
            );
        }
    }
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
    let linker = &linkers[usize::from(fuel)];
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        anyhow!(
            "{e:#}. The host provides WASI 0.2 (cli, io, clocks, random, filesystem, sockets, http) and launch:plugin@0.1.x (log, config); rebuild the plugin against those"
        )
    })?;
    let plugin = Arc::new(Plugin::new(name.clone(), manifest, pre)?);
    let tools = derive_tools(&plugin, &component, docs.as_ref(), &mut warnings)?;
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
    })
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
    for (interface, func, ty) in found {
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
        match describe_function(&ty, wit_func, docs) {
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
                tools.push(Tool {
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
) -> Result<Described, super::shape::Unsupported> {
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
            shape: Shape::from_type(&param_ty, wit_ty)
                .map_err(|e| super::shape::Unsupported(format!("parameter `{name}` is {}", e.0)))?,
        });
    }
    let result_wit = docs.zip(wit.and_then(|f| f.result)).map(|(d, ty)| WitType {
        resolve: &d.resolve,
        ty,
    });
    let returns = match ty.results().next() {
        None => Returns::Nothing,
        Some(result_ty) => {
            let shape = Shape::from_type(&result_ty, result_wit)
                .map_err(|e| super::shape::Unsupported(format!("its result is {}", e.0)))?;
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
