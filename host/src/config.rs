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

/// Together AI's OpenAI-compatible endpoint, the default provider.
pub const TOGETHER_BASE_URL: &str = "https://api.together.xyz/v1";
/// A Together model that supports function calling.
pub const DEFAULT_MODEL: &str = "meta-llama/Llama-3.3-70B-Instruct-Turbo";
/// The instructions the agent starts every conversation with, unless configured.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are Launch, a helpful assistant. Use the available tools when they help you answer accurately; \
     when a tool returns an error, read it, fix the arguments and try again. Answer concisely.";

/// The file, as written. Every table rejects unknown keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
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
