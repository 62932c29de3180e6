//! Configuration, layered: the TOML file (`launch.toml`, optional) < the
//! environment (`LAUNCH_*`) < command-line flags. Parsed once into a raw form
//! (unknown keys rejected) and then validated into ready-to-use values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::agent::AgentConfig;
use crate::llm::ProviderConfig;
use crate::memory::MemoryConfig;
use crate::server::ServerConfig;
use crate::server::access::RateLimit;
use crate::server::conn::ConnectionLimits;

/// Together AI's OpenAI-compatible endpoint, the default provider.
pub const TOGETHER_BASE_URL: &str = "https://api.together.xyz/v1";
/// A Together model that supports function calling.
pub const DEFAULT_MODEL: &str = "meta-llama/Llama-3.3-70B-Instruct-Turbo";
/// Where the local embedding model is looked for by default.
pub const DEFAULT_MODEL_DIR: &str = "./models/all-MiniLM-L6-v2";
/// The instructions the agent starts every conversation with, unless configured.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are Launch, a helpful assistant. Use the available tools when they help you answer accurately; \
     when a tool returns an error, read it, fix the arguments and try again. Answer concisely.";

/// The file, as written. Every table rejects unknown keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file this was read from, when there was one (no plugin grant may reach it).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `listen = "127.0.0.1:8080"`
    pub listen: Option<String>,
    /// `data_dir = "./data"`
    pub data_dir: Option<PathBuf>,
    /// `plugins_dir = "./plugins"`
    pub plugins_dir: Option<PathBuf>,
    /// `[llm]`
    #[serde(default)]
    pub llm: FileLlm,
    /// `[agent]`
    #[serde(default)]
    pub agent: FileAgent,
    /// `[telemetry]`
    #[serde(default)]
    pub telemetry: FileTelemetry,
    /// `[server]`
    #[serde(default)]
    pub server: FileServer,
    /// `[memory]`
    #[serde(default)]
    pub memory: FileMemory,
}

/// `[server]`: protection and limits of the HTTP API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    /// Accepted bearer tokens (`LAUNCH_API_KEYS`, comma-separated, replaces
    /// these). None: no auth.
    pub api_keys: Option<Vec<String>>,
    /// Paths reachable without a key when auth is on (default `/healthz`, `/readyz`).
    pub public_paths: Option<Vec<String>>,
    /// Requests per minute per API key (per client IP without auth) on
    /// `/v1/` and `/mcp`; 0 turns the limit off (default 600).
    pub rate_limit_per_minute: Option<u32>,
    /// Requests a caller may make at once above the rate (default 60).
    pub rate_limit_burst: Option<u32>,
    /// Largest request body in bytes (default 4 MiB).
    pub max_body_bytes: Option<usize>,
    /// Most messages in one chat request (default 1000).
    pub max_messages: Option<usize>,
    /// Largest message text in bytes (default 256 KiB).
    pub max_message_bytes: Option<usize>,
    /// Agent turns running at once (default 64).
    pub max_concurrent_turns: Option<usize>,
    /// Seconds a turn waits for a free slot before a 503 (default 10).
    pub turn_queue_timeout_secs: Option<u64>,
    /// Seconds shutdown waits for in-flight requests and turns (default 30).
    pub shutdown_grace_secs: Option<u64>,
    /// Open connections at most, WebSockets included (`LAUNCH_MAX_CONNECTIONS`;
    /// default 3/4 of the open-file limit, at most 10,000).
    pub max_connections: Option<usize>,
    /// Open connections from one client address (an IPv6 /64) at most
    /// (`LAUNCH_MAX_CONNECTIONS_PER_ADDRESS`, default 1024).
    pub max_connections_per_address: Option<usize>,
    /// Seconds a client has to send a request's headers (default 10).
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body after its headers (default 30).
    pub body_read_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection or WebSocket may stay silent, and a
    /// response may wait for a client that stopped reading (default 60).
    pub idle_timeout_secs: Option<u64>,
    /// Public host names a server without API keys answers, besides
    /// localhost and IP addresses (`LAUNCH_ALLOWED_HOSTS`, comma-separated);
    /// `.example.com` matches every name under it.
    pub allowed_hosts: Option<Vec<String>>,
    /// Most WebSockets open at once per API key, or per client address
    /// without auth (default 16).
    pub max_websockets_per_caller: Option<usize>,
    /// Messages a session may hold; a turn in a full session is refused
    /// with 409 `session_full` (default 10,000).
    pub max_session_messages: Option<usize>,
    /// Bytes of history (texts, tool arguments and results) a session may
    /// hold (default 64 MiB).
    pub max_session_bytes: Option<usize>,
}

/// `[memory]`: sessions and semantic recall.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMemory {
    /// Estimated tokens of stored history sent with each turn (default 6000).
    pub context_tokens: Option<i64>,
    /// Older messages recalled per turn; 0 turns recall off (default 4).
    pub recall_k: Option<usize>,
    /// Lowest cosine similarity for a recalled message (default 0.3).
    pub recall_min_score: Option<f32>,
    /// Recall from all of the API key's sessions, not only the current one (default false).
    pub cross_session_recall: Option<bool>,
    /// `local` (all-MiniLM-L6-v2 in-process), `remote` (the provider's
    /// `/v1/embeddings`), `none`, or `auto` (local when the model is there,
    /// else remote when an embedding model is configured; the default).
    pub embedder: Option<String>,
    /// Folder with the local model's `model.safetensors`, `tokenizer.json`
    /// and `config.json` (default `./models/all-MiniLM-L6-v2`, where `make
    /// model` puts it).
    pub model_dir: Option<PathBuf>,
    /// Delete sessions idle longer than this many days (default: keep).
    pub session_ttl_days: Option<f64>,
    /// Keep at most this many sessions, deleting the least recently active (default: no cap).
    pub max_sessions: Option<u64>,
    /// `full` (fsync every commit; default) or `normal` (survives process
    /// crashes; a power cut may lose the last turns).
    pub durability: Option<crate::memory::Durability>,
}

/// `[telemetry]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTelemetry {
    /// OTLP/HTTP traces endpoint, e.g. `http://localhost:4318/v1/traces`
    /// (`LAUNCH_OTLP_ENDPOINT`). Unset: no export.
    pub otlp_endpoint: Option<String>,
}

/// `[llm]`: named providers and which one is the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLlm {
    /// Name of the default provider (default: `together`).
    pub default: Option<String>,
    /// `[llm.providers.NAME]`
    #[serde(default)]
    pub providers: BTreeMap<String, FileProvider>,
}

/// `[llm.providers.NAME]`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProvider {
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: Option<String>,
    /// The key itself (prefer `api_key_env`).
    pub api_key: Option<String>,
    /// Environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Chat model.
    pub model: Option<String>,
    /// Embedding model.
    pub embedding_model: Option<String>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Completion length cap.
    pub max_tokens: Option<u32>,
    /// Request timeout in seconds (default 60).
    pub timeout_secs: Option<u64>,
    /// Longest silence inside a streamed answer, in seconds (default 30).
    pub stream_idle_timeout_secs: Option<u64>,
    /// Retries for 429, 5xx, timeouts and connection errors (default 3).
    pub max_retries: Option<u32>,
}

/// `[agent]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAgent {
    /// The system prompt.
    pub system_prompt: Option<String>,
    /// Model calls per turn before the loop stops (default 10).
    pub max_iterations: Option<u32>,
    /// Wall-clock budget of a turn in seconds (default 120).
    pub turn_timeout_secs: Option<u64>,
    /// Tool calls of one model reply run at once (default 8).
    pub max_parallel_tools: Option<usize>,
    /// After `max_iterations`, ask the model once more, without tools, to
    /// summarise what it has (default true).
    pub summarize_on_limit: Option<bool>,
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty configuration only when
    /// `required` is false (the default path).
    pub fn load(path: &Path, required: bool) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map(|config| Self {
                    source: Some(path.to_owned()),
                    ..config
                })
                .with_context(|| format!("invalid configuration file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read configuration file {}", path.display()))
            }
        }
    }
}

/// Where the environment is read from; a function so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, ignoring empty values.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The default provider, after file and environment.
pub fn provider(file: &FileLlm, env: Env<'_>) -> Result<ProviderConfig> {
    let name = env("LAUNCH_LLM_PROVIDER")
        .or_else(|| file.default.clone())
        .unwrap_or_else(|| "together".into());
    let p = match file.providers.get(&name) {
        Some(p) => p.clone(),
        None if name == "together" || file.providers.is_empty() => FileProvider::default(),
        None => bail!(
            "the default LLM provider `{name}` is not configured; configured providers: {}",
            file.providers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let key_env = p.api_key_env.clone();
    let api_key = env("LAUNCH_LLM_API_KEY")
        .or(p.api_key.clone())
        .or_else(|| key_env.as_deref().and_then(env))
        .or_else(|| env("TOGETHER_API_KEY"));
    let hint = match &key_env {
        Some(var) => format!("set LAUNCH_LLM_API_KEY or {var}"),
        None => "set LAUNCH_LLM_API_KEY (or TOGETHER_API_KEY for Together AI)".into(),
    };
    let temperature = p.temperature;
    if let Some(t) = temperature
        && !(0.0..=2.0).contains(&t)
    {
        bail!("llm.providers.{name}.temperature = {t} is out of range; use 0 to 2");
    }
    Ok(ProviderConfig {
        base_url: env("LAUNCH_LLM_BASE_URL")
            .or(p.base_url)
            .unwrap_or_else(|| TOGETHER_BASE_URL.into()),
        api_key,
        api_key_hint: hint,
        model: env("LAUNCH_LLM_MODEL")
            .or(p.model)
            .unwrap_or_else(|| DEFAULT_MODEL.into()),
        embedding_model: env("LAUNCH_LLM_EMBEDDING_MODEL").or(p.embedding_model),
        temperature,
        max_tokens: p.max_tokens,
        request_timeout: Duration::from_secs(p.timeout_secs.unwrap_or(60)),
        stream_idle_timeout: Duration::from_secs(p.stream_idle_timeout_secs.unwrap_or(30)),
        max_retries: p.max_retries.unwrap_or(3),
        retry_base: Duration::from_millis(500),
        retry_max: Duration::from_secs(30),
        name,
    })
}

/// The agent settings, after file and environment.
pub fn agent(file: &FileAgent, env: Env<'_>) -> Result<AgentConfig> {
    let number = |var: &str| -> Result<Option<u64>> {
        env(var)
            .map(|v| {
                v.parse::<u64>()
                    .with_context(|| format!("{var}={v:?} is not a whole number"))
            })
            .transpose()
    };
    let max_iterations = number("LAUNCH_MAX_ITERATIONS")?
        .map(|n| n as u32)
        .or(file.max_iterations)
        .unwrap_or(10);
    if max_iterations == 0 {
        bail!("max_iterations must be at least 1");
    }
    Ok(AgentConfig {
        system_prompt: env("LAUNCH_SYSTEM_PROMPT")
            .or(file.system_prompt.clone())
            .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.into()),
        max_iterations,
        turn_timeout: Duration::from_secs(
            number("LAUNCH_TURN_TIMEOUT_SECS")?
                .or(file.turn_timeout_secs)
                .unwrap_or(120),
        ),
        max_parallel_tools: file.max_parallel_tools.unwrap_or(8).max(1),
        summarize_on_limit: file.summarize_on_limit.unwrap_or(true),
    })
}

fn parsed<T: std::str::FromStr>(env: Env<'_>, var: &str) -> Result<Option<T>> {
    env(var)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .ok()
                .with_context(|| format!("{var}={v:?} is not a valid number"))
        })
        .transpose()
}

/// The server's protection and limits, after file and environment.
pub fn server(file: &FileServer, env: Env<'_>) -> Result<ServerConfig> {
    let defaults = ServerConfig::default();
    let api_keys = env("LAUNCH_API_KEYS")
        .map(|list| comma_list(&list))
        .unwrap_or_else(|| file.api_keys.clone().unwrap_or_default());
    if let Some(short) = api_keys.iter().find(|k| k.len() < 16) {
        bail!(
            "API key {:?}... is {} characters; use keys of at least 16 random characters (e.g. `openssl rand -hex 24`)",
            &short[..short.len().min(3)],
            short.len()
        );
    }
    let per_minute = parsed::<u32>(env, "LAUNCH_RATE_LIMIT_PER_MINUTE")?
        .or(file.rate_limit_per_minute)
        .unwrap_or(600);
    let burst = parsed::<u32>(env, "LAUNCH_RATE_LIMIT_BURST")?
        .or(file.rate_limit_burst)
        .unwrap_or(60);
    let rate_limit = match (
        std::num::NonZeroU32::new(per_minute),
        std::num::NonZeroU32::new(burst),
    ) {
        (Some(per_minute), Some(burst)) => Some(RateLimit { per_minute, burst }),
        (None, _) => None,
        (Some(_), None) => bail!("rate_limit_burst must be at least 1"),
    };
    let max_concurrent_turns = parsed::<usize>(env, "LAUNCH_MAX_CONCURRENT_TURNS")?
        .or(file.max_concurrent_turns)
        .unwrap_or(defaults.max_concurrent_turns);
    if max_concurrent_turns == 0 {
        bail!("max_concurrent_turns must be at least 1");
    }
    Ok(ServerConfig {
        api_keys,
        public_paths: file.public_paths.clone().unwrap_or(defaults.public_paths),
        rate_limit,
        max_body_bytes: parsed(env, "LAUNCH_MAX_BODY_BYTES")?
            .or(file.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        max_messages: file.max_messages.unwrap_or(defaults.max_messages),
        max_message_bytes: file.max_message_bytes.unwrap_or(defaults.max_message_bytes),
        max_concurrent_turns,
        turn_queue_timeout: file
            .turn_queue_timeout_secs
            .map_or(defaults.turn_queue_timeout, Duration::from_secs),
        shutdown_grace: parsed(env, "LAUNCH_SHUTDOWN_GRACE_SECS")?
            .or(file.shutdown_grace_secs)
            .map_or(defaults.shutdown_grace, Duration::from_secs),
        connections: connection_limits(file, env, defaults.connections)?,
        allowed_hosts: env("LAUNCH_ALLOWED_HOSTS")
            .map(|list| comma_list(&list))
            .unwrap_or_else(|| file.allowed_hosts.clone().unwrap_or_default()),
        max_websockets_per_caller: match file.max_websockets_per_caller {
            Some(0) => bail!("max_websockets_per_caller must be at least 1"),
            Some(n) => n,
            None => defaults.max_websockets_per_caller,
        },
        max_session_messages: file
            .max_session_messages
            .unwrap_or(defaults.max_session_messages),
        max_session_bytes: file.max_session_bytes.unwrap_or(defaults.max_session_bytes),
    })
}

/// The non-empty, trimmed items of a comma-separated environment value.
fn comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Connection caps and deadlines, after file and environment.
fn connection_limits(
    file: &FileServer,
    env: Env<'_>,
    defaults: ConnectionLimits,
) -> Result<ConnectionLimits> {
    let secs = |key: &str, value: Option<u64>, default: Duration| -> Result<Duration> {
        match value {
            Some(0) => bail!("{key} must be at least 1 second"),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        }
    };
    let per_address = parsed::<usize>(env, "LAUNCH_MAX_CONNECTIONS_PER_ADDRESS")?
        .or(file.max_connections_per_address)
        .unwrap_or(defaults.max_connections_per_address);
    if per_address == 0 {
        bail!("max_connections_per_address must be at least 1");
    }
    Ok(ConnectionLimits {
        max_connections: parsed::<usize>(env, "LAUNCH_MAX_CONNECTIONS")?
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections),
        max_connections_per_address: per_address,
        header_read_timeout: secs(
            "header_read_timeout_secs",
            file.header_read_timeout_secs,
            defaults.header_read_timeout,
        )?,
        body_read_timeout: secs(
            "body_read_timeout_secs",
            file.body_read_timeout_secs,
            defaults.body_read_timeout,
        )?,
        idle_timeout: secs(
            "idle_timeout_secs",
            file.idle_timeout_secs,
            defaults.idle_timeout,
        )?,
    })
}

/// Which embedder memory uses.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedderChoice {
    /// The local model in this folder, if it is there (else the next rule).
    Auto(PathBuf),
    /// The local model; an error if it is missing.
    Local(PathBuf),
    /// The provider's `/v1/embeddings`.
    Remote,
    /// No semantic recall.
    None,
}

/// Memory settings and the embedder choice, after file and environment.
pub fn memory(file: &FileMemory, env: Env<'_>) -> Result<(MemoryConfig, EmbedderChoice)> {
    let defaults = MemoryConfig::default();
    let model_dir = env("LAUNCH_EMBEDDING_MODEL_DIR")
        .map(PathBuf::from)
        .or(file.model_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
    let choice = match env("LAUNCH_EMBEDDER")
        .or(file.embedder.clone())
        .as_deref()
        .unwrap_or("auto")
    {
        "auto" => EmbedderChoice::Auto(model_dir),
        "local" => EmbedderChoice::Local(model_dir),
        "remote" => EmbedderChoice::Remote,
        "none" => EmbedderChoice::None,
        other => bail!("embedder = {other:?} is not one of auto, local, remote, none"),
    };
    let score = file.recall_min_score.unwrap_or(defaults.recall_min_score);
    if !(-1.0..=1.0).contains(&score) {
        bail!("recall_min_score = {score} is out of range; use -1 to 1 (cosine similarity)");
    }
    let ttl = file
        .session_ttl_days
        .map(|d| {
            if d.is_finite() && d > 0.0 {
                Ok(Duration::from_secs_f64(d * 86_400.0))
            } else {
                Err(anyhow::anyhow!(
                    "session_ttl_days = {d} must be a positive number of days"
                ))
            }
        })
        .transpose()?;
    Ok((
        MemoryConfig {
            context_tokens: file
                .context_tokens
                .unwrap_or(defaults.context_tokens)
                .max(256),
            recall_k: file.recall_k.unwrap_or(defaults.recall_k),
            recall_min_score: score,
            cross_session_recall: file.cross_session_recall.unwrap_or(false),
            session_ttl: ttl,
            max_sessions: file.max_sessions.filter(|n| *n > 0),
            durability: file.durability.unwrap_or_default(),
        },
        choice,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_to_together_without_a_key() {
        let p = provider(&FileLlm::default(), &env_of(&[])).unwrap();
        assert_eq!(p.base_url, TOGETHER_BASE_URL);
        assert_eq!(p.model, DEFAULT_MODEL);
        assert!(p.api_key.is_none());
        assert!(p.api_key_hint.contains("LAUNCH_LLM_API_KEY"));
    }

    #[test]
    fn environment_overrides_file() {
        let file: FileConfig = toml::from_str(
            "[llm]\ndefault = \"local\"\n[llm.providers.local]\nbase_url = \"http://localhost:11434/v1\"\nmodel = \"qwen\"\napi_key_env = \"LOCAL_KEY\"\n",
        )
        .unwrap();
        let p = provider(
            &file.llm,
            &env_of(&[("LOCAL_KEY", "k1"), ("LAUNCH_LLM_MODEL", "llama")]),
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.base_url.as_str(), p.model.as_str()),
            ("local", "http://localhost:11434/v1", "llama")
        );
        assert_eq!(p.api_key.as_deref(), Some("k1"));
        let p = provider(
            &file.llm,
            &env_of(&[("LAUNCH_LLM_API_KEY", "k2"), ("TOGETHER_API_KEY", "k3")]),
        )
        .unwrap();
        assert_eq!(p.api_key.as_deref(), Some("k2"));
        let p = provider(&FileLlm::default(), &env_of(&[("TOGETHER_API_KEY", "k3")])).unwrap();
        assert_eq!(p.api_key.as_deref(), Some("k3"));
    }

    #[test]
    fn unknown_keys_and_missing_providers_are_errors() {
        let err = toml::from_str::<FileConfig>("[llm]\nmodel = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `model`"), "{err}");
        let file: FileConfig =
            toml::from_str("[llm]\ndefault = \"nope\"\n[llm.providers.a]\n").unwrap();
        let err = provider(&file.llm, &env_of(&[])).unwrap_err().to_string();
        assert!(
            err.contains("`nope` is not configured") && err.contains(": a"),
            "{err}"
        );
    }

    #[test]
    fn agent_settings_are_validated() {
        let a = agent(&FileAgent::default(), &env_of(&[])).unwrap();
        assert_eq!(a.max_iterations, 10);
        assert!(
            agent(
                &FileAgent::default(),
                &env_of(&[("LAUNCH_MAX_ITERATIONS", "ten")])
            )
            .is_err()
        );
        assert!(
            agent(
                &FileAgent::default(),
                &env_of(&[("LAUNCH_MAX_ITERATIONS", "0")])
            )
            .is_err()
        );
    }
}
