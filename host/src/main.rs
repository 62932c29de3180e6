//! The `launch` command line: parse arguments, set up logging, dispatch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use launch::config::FileConfig;
use launch::plugins::{LoadOptions, Registry};
use launch::scaffold::Lang;
use serde_json::{Value, json};

/// Launch: a self-hosted AI-agent server whose tools are sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "launch", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Settings there are overridden by LAUNCH_*
    /// environment variables, which are overridden by flags.
    #[arg(long, global = true, env = "LAUNCH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// List or call tools without the server or an LLM.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Serve every tool to a local MCP client over stdin/stdout (the HTTP
    /// server offers the same at `/mcp`).
    Mcp {
        /// Speak MCP on stdin/stdout (the only local transport; required).
        #[arg(long, required = true)]
        stdio: bool,
        #[command(flatten)]
        locations: Locations,
    },
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Ask the agent one question from the terminal (uses the configured LLM).
    Chat {
        /// Print the answer as it streams in.
        #[arg(long)]
        stream: bool,
        /// The message.
        #[arg(required = true, num_args = 1..)]
        message: Vec<String>,
        #[command(flatten)]
        locations: Locations,
    },
}

/// Where plugins and data live; shared by every command that loads plugins.
#[derive(Args, Clone)]
struct Locations {
    /// Folder holding NAME.wasm plugins (and optional NAME.toml manifests) [default: ./plugins]
    #[arg(long = "plugins", env = "LAUNCH_PLUGINS_DIR", value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// Folder for the server's data, including the compiled-plugin cache [default: ./data]
    #[arg(long, env = "LAUNCH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl Locations {
    fn data_dir(&self, file: &FileConfig) -> PathBuf {
        self.data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| "./data".into())
    }

    fn options(&self, file: &FileConfig) -> LoadOptions {
        let plugins = self
            .plugins_dir
            .clone()
            .or(file.plugins_dir.clone())
            .unwrap_or_else(|| "./plugins".into());
        let mut options = LoadOptions::new(plugins, self.data_dir(file));
        options.protected.extend(file.source.clone());
        options
    }

    fn load(&self, file: &FileConfig) -> Result<Registry> {
        Registry::load(&self.options(file))
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "LAUNCH_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    locations: Locations,
}

#[derive(Subcommand)]
enum ToolsCommand {
    /// List every tool: name, plugin, description and parameter schema.
    List {
        /// Print JSON (tools, schemas, plugins with their effective grants, load failures).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        locations: Locations,
    },
    /// Call one tool with JSON arguments and print its JSON result.
    Call {
        /// Tool name, as shown by `launch tools list`.
        name: String,
        /// Arguments as a JSON object, e.g. '{"expression": "2 + 2"}'.
        #[arg(default_value = "{}")]
        args: String,
        #[command(flatten)]
        locations: Locations,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Embed a plugin's WIT package (and so its `///` docs) into its component.
    ///
    /// Language toolchains drop WIT doc comments; this puts them back so the
    /// host can describe each tool and parameter to the model.
    Pack {
        /// The plugin's WIT folder (with its `deps/`).
        #[arg(long, value_name = "DIR")]
        wit: PathBuf,
        /// The component built by the toolchain.
        input: PathBuf,
        /// Where to write the packed component (default: overwrite INPUT).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create a plugin project that builds and loads as it is: a WIT world
    /// with the SDK, one documented example tool, a manifest granting nothing,
    /// a README and a Makefile.
    New {
        /// Plugin name: lowercase words joined by '-', e.g. `unit-convert`. It
        /// names NAME.wasm, the WIT world and the tools (NAME_FUNCTION).
        name: String,
        /// The language to write the plugin in.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Folder to create the project in [default: ./NAME]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Load a component the way the server would and print its tools (with
    /// schemas and descriptions), imports and the grants they need, and its
    /// warnings; or exactly why the server would skip it. Exits 1 when it
    /// would be skipped.
    Check {
        /// The component, e.g. my-tool.wasm (its manifest my-tool.toml beside it is read too).
        file: PathBuf,
        /// Also fail (exit 1) on warnings, such as a function without docs.
        #[arg(long)]
        strict: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The plugins folder (checked for tool name collisions when it
        /// exists) and the data folder (its compile cache is reused).
        #[command(flatten)]
        locations: Locations,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let file = match &cli.config {
        Some(path) => FileConfig::load(path, true)?,
        None => FileConfig::load(std::path::Path::new("launch.toml"), false)?,
    };
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let otlp = launch::config::process_env("LAUNCH_OTLP_ENDPOINT")
        .or(file.telemetry.otlp_endpoint.clone());
    // Held to the end of `run`, so buffered spans are flushed on exit.
    let _telemetry = launch::telemetry::Telemetry::init(default_level, otlp.as_deref())?;
    match cli.command {
        Command::Serve(args) => {
            let listen: SocketAddr = match (args.listen, &file.listen) {
                (Some(a), _) => a,
                (None, Some(a)) => a.parse().with_context(|| format!("listen = {a:?} in the configuration file is not an address like 127.0.0.1:8080"))?,
                (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
            };
            let rt = runtime()?;
            rt.block_on(async {
                let registry = Arc::new(args.locations.load(&file)?);
                if let Err(e) = registry.establish() {
                    tracing::warn!(error = %format!("{e:#}"), "cannot record which plugins loaded; a newcomer's precedence falls back to file age");
                }
                let report = registry.report();
                tracing::info!(
                    dir = %report.dir.display(),
                    plugins = report.loaded.len(),
                    failed = report.failed.len(),
                    tools = registry.tools().count(),
                    "plugins loaded"
                );
                let agent = Arc::new(build_agent(&file, registry.clone())?);
                let llm = agent.llm().config();
                if llm.api_key.is_none() {
                    tracing::warn!(provider = %llm.name, "no LLM API key: tools and the API work, chat requests will fail; {}", llm.api_key_hint);
                }
                let env = &launch::config::process_env;
                let server = launch::config::server(&file.server, env)?;
                let data_dir = args.locations.data_dir(&file);
                let (memory_config, embedder) = launch::config::memory(&file.memory, env)?;
                let memory = launch::memory::Memory::open(
                    &data_dir,
                    memory_config,
                    embedder,
                    agent.llm().clone(),
                )
                .await?;
                tracing::info!(
                    auth = !server.api_keys.is_empty(),
                    rate_limit_per_minute = server.rate_limit.map_or(0, |r| r.per_minute.get()),
                    max_concurrent_turns = server.max_concurrent_turns,
                    "server settings"
                );
                let state = launch::server::AppState::new(registry, agent, Arc::new(memory), server);
                launch::server::serve(listen, state).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools(ToolsCommand::List { json, locations }) => {
            let _rt = runtime()?;
            let registry = locations.load(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list_json(&registry))?);
            } else {
                print_tools(&registry);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools(ToolsCommand::Call {
            name,
            args,
            locations,
        }) => {
            let args: Value = serde_json::from_str(&args)
                .with_context(|| format!("the arguments are not valid JSON: {args}"))?;
            let rt = runtime()?;
            let registry = locations.load(&file)?;
            match rt.block_on(registry.call(&name, &args)) {
                Ok(result) => {
                    println!("{}", serde_json::to_string_pretty(&result)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {} ({})", one_line(&e.to_string()), e.code());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Mcp {
            stdio: _,
            locations,
        } => {
            let rt = runtime()?;
            rt.block_on(async {
                let registry = Arc::new(locations.load(&file)?);
                launch::mcp::serve_stdio(registry).await
            })?;
            // Stdin stays blocked in a reader thread; do not wait for it.
            rt.shutdown_background();
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat {
            stream,
            message,
            locations,
        } => {
            let rt = runtime()?;
            rt.block_on(chat(&file, &locations, stream, message.join(" ")))
        }
        Command::Plugin(PluginCommand::Pack { wit, input, output }) => {
            let bytes = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let packed = launch::plugins::docs::pack(&bytes, &wit)?;
            let output = output.unwrap_or(input);
            std::fs::write(&output, packed)
                .with_context(|| format!("cannot write {}", output.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::New { name, lang, dir }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let written = launch::scaffold::create(&name, lang, &dir)?;
            println!(
                "created {} plugin `{name}` in {} ({} files)",
                format!("{lang:?}").to_lowercase(),
                dir.display(),
                written.len()
            );
            println!(
                "next: cd {} && make && make check   (see README.md there)",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Check {
            file: component,
            strict,
            json,
            locations,
        }) => {
            let _rt = runtime()?;
            // The server's own folders, so the compile cache is shared with it and
            // grants are judged against the folders it protects.
            let options = locations.options(&file);
            let inspection = Registry::inspect(&component, &options)?;
            let warnings = inspection.plugin.as_ref().map_or(0, |p| p.warnings.len());
            let ok = inspection.error.is_none() && !(strict && warnings > 0);
            if json {
                let mut value = serde_json::to_value(&inspection)?;
                value["tools"] = tools_json(inspection.tools());
                value["ok"] = json!(ok);
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_inspection(&inspection, strict);
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn print_inspection(inspection: &launch::plugins::registry::Inspection, strict: bool) {
    let file = inspection.path.display();
    let Some(plugin) = &inspection.plugin else {
        println!(
            "{file}: REJECTED; the server would skip it:\n  {}",
            inspection.error.as_deref().unwrap_or_default()
        );
        return;
    };
    println!(
        "{file}: plugin `{}`, built against {}, manifest {}",
        plugin.name,
        plugin
            .sdk
            .as_deref()
            .map_or("no launch:plugin SDK import".to_owned(), |v| format!(
                "launch:plugin@{v}"
            )),
        plugin
            .manifest
            .as_ref()
            .map_or("none (nothing granted)".to_owned(), |m| m
                .display()
                .to_string()),
    );
    let limits = &plugin.policy.limits;
    println!(
        "limits: {} ms per call, {} MiB memory, {} bytes of output",
        limits.timeout.as_millis(),
        limits.memory_bytes / (1024 * 1024),
        limits.max_output_bytes
    );
    println!("\ntools ({}):", inspection.tools().len());
    for tool in inspection.tools() {
        println!("  {}  (export `{}`)", tool.name, tool.export_name);
        for line in tool.description.lines() {
            println!("    {line}");
        }
        let indent = |v: &Value| {
            serde_json::to_string_pretty(v)
                .unwrap_or_default()
                .replace('\n', "\n      ")
        };
        println!("    parameters:\n      {}", indent(&tool.parameters));
        if let Some(output) = &tool.output_schema {
            println!("    result:\n      {}", indent(output));
        }
    }
    if !plugin.ignored_exports.is_empty() {
        println!(
            "\nexports that are not tools (not declared by the plugin's WIT world): {}",
            plugin.ignored_exports.join(", ")
        );
    }
    println!("\nimports ({}):", inspection.imports.len());
    let width = inspection
        .imports
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(0);
    for import in &inspection.imports {
        println!("  {:width$}  {}", import.name, import.capability);
    }
    let mut closed: Vec<&str> = inspection
        .imports
        .iter()
        .filter_map(|i| i.missing_grant)
        .collect();
    closed.sort_unstable();
    closed.dedup();
    if !closed.is_empty() {
        println!(
            "grants it imports but is not given (uses fail until the manifest grants them; grant only what a tool needs): {}",
            closed.join(", ")
        );
    }
    if !plugin.warnings.is_empty() {
        println!("\nwarnings ({}):", plugin.warnings.len());
        for warning in &plugin.warnings {
            println!("  ! {warning}");
        }
    }
    println!();
    match &inspection.error {
        Some(error) => println!("REJECTED; the server would skip it: {error}"),
        None if strict && !plugin.warnings.is_empty() => println!(
            "FAILED (--strict): {} warning(s); fix them or drop --strict",
            plugin.warnings.len()
        ),
        None => println!(
            "OK: {} tool(s), {} warning(s)",
            inspection.tools().len(),
            plugin.warnings.len()
        ),
    }
}

/// The agent as configured by the file and the environment.
fn build_agent(file: &FileConfig, registry: Arc<Registry>) -> Result<launch::agent::Agent> {
    let provider = launch::config::provider(&file.llm, &launch::config::process_env)?;
    let agent_config = launch::config::agent(&file.agent, &launch::config::process_env)?;
    Ok(launch::agent::Agent::new(
        registry,
        launch::llm::LlmClient::new(provider)?,
        agent_config,
    ))
}

async fn chat(
    file: &FileConfig,
    locations: &Locations,
    stream: bool,
    message: String,
) -> Result<ExitCode> {
    use std::io::Write;
    let agent = build_agent(file, Arc::new(locations.load(file)?))?;
    let history = [launch::llm::Message::user(message)];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            match event {
                launch::agent::Event::Delta { content } if stream => {
                    print!("{content}");
                    let _ = std::io::stdout().flush();
                }
                launch::agent::Event::ToolStarted {
                    name, arguments, ..
                } => eprintln!("-> {name} {arguments}"),
                launch::agent::Event::ToolFinished(step) => match &step.error {
                    Some(e) => eprintln!(
                        "<- {} failed in {:.1} ms: {}",
                        step.name, step.duration_ms, e.message
                    ),
                    None => eprintln!("<- {} ok in {:.1} ms", step.name, step.duration_ms),
                },
                _ => {}
            }
        }
    });
    let outcome = agent.run(&history, Some(&tx)).await;
    drop(tx);
    let _ = printer.await;
    match outcome {
        Ok(turn) => {
            if stream {
                println!();
            } else {
                println!("{}", turn.content);
            }
            if turn.finish_reason != launch::agent::FinishReason::Stop {
                eprintln!("(turn ended: {:?})", turn.finish_reason);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn list_json(registry: &Registry) -> Value {
    let report = registry.report();
    json!({
        "tools": tools_json(registry.tools()),
        "plugins": report.loaded,
        "failed": report.failed,
    })
}

fn tools_json<'a>(tools: impl IntoIterator<Item = &'a Arc<launch::plugins::Tool>>) -> Value {
    tools.into_iter().map(|t| t.describe()).collect()
}

fn print_tools(registry: &Registry) {
    let report = registry.report();
    if registry.tools().next().is_none() {
        println!("no tools loaded from {}", report.dir.display());
    }
    for tool in registry.tools() {
        let summary = tool.description.lines().next().unwrap_or_default();
        println!("{}  ({})\n    {summary}", tool.name, tool.plugin.name);
        let props = tool.parameters["properties"].as_object();
        let required: Vec<&str> = tool.parameters["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, schema) in props.into_iter().flatten() {
            let ty = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("value");
            let opt = if required.contains(&name.as_str()) {
                ""
            } else {
                ", optional"
            };
            let desc = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            println!(
                "    - {name} ({ty}{opt}) {}",
                desc.lines().next().unwrap_or("")
            );
        }
    }
    for failed in &report.failed {
        println!("skipped {}: {}", failed.path.display(), failed.error);
    }
}
