//! The OpenAI-compatible provider client: chat completions (plain and
//! streamed), embeddings, retries with backoff and jitter that honour
//! `Retry-After`, and errors that name the provider and say what to do.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::types::{
    ChatChunk, ChatRequest, ChatResponse, ErrorBody, FunctionCall, Message, Role, ToolCall,
    ToolSpec, Usage,
};

/// Largest response (or streamed answer) accepted from a provider.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Most tool calls one model reply may carry.
const MAX_TOOL_CALLS: usize = 128;

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Name used in errors and logs (e.g. `together`).
    pub name: String,
    /// Base URL ending in `/v1` (or the provider's equivalent).
    pub base_url: String,
    /// API key; `None` means chat requests fail with [`LlmError::NoApiKey`].
    pub api_key: Option<String>,
    /// What to tell the operator to set when the key is missing.
    pub api_key_hint: String,
    /// Chat model id.
    pub model: String,
    /// Embedding model id, for the embeddings endpoint.
    pub embedding_model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Completion length cap.
    pub max_tokens: Option<u32>,
    /// Deadline for the response headers, and again for a non-streamed body.
    pub request_timeout: Duration,
    /// Longest silence allowed between streamed chunks.
    pub stream_idle_timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry, with full jitter.
    pub retry_base: Duration,
    /// Longest single wait, including a provider's `Retry-After`.
    pub retry_max: Duration,
}

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// No key is configured.
    #[error("no API key is configured for LLM provider `{provider}`; {hint}")]
    NoApiKey {
        /// Provider name.
        provider: String,
        /// Which variable or setting to set.
        hint: String,
    },
    /// The provider answered with an error status.
    #[error("LLM provider `{provider}` answered HTTP {status}: {message}{}", advice(*status))]
    Status {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// No answer in time.
    #[error("LLM provider `{provider}` did not answer within {}s", timeout.as_secs_f32())]
    Timeout {
        /// Provider name.
        provider: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The provider could not be reached.
    #[error("cannot reach LLM provider `{provider}` at {url}: {message}")]
    Connect {
        /// Provider name.
        provider: String,
        /// Base URL.
        url: String,
        /// Transport error.
        message: String,
    },
    /// The response was not what the API promises.
    #[error("LLM provider `{provider}` sent an invalid response: {message}")]
    Invalid {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
}

fn advice(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the API key: LAUNCH_LLM_API_KEY)",
        404 => " (check LAUNCH_LLM_BASE_URL and LAUNCH_LLM_MODEL)",
        429 => " (rate limited; retries were exhausted)",
        500..=599 => " (the provider failed; retries were exhausted)",
        _ => "",
    }
}

impl LlmError {
    fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Timeout { .. } | LlmError::Connect { .. } => true,
            LlmError::NoApiKey { .. } | LlmError::Invalid { .. } => false,
        }
    }
}

/// The assistant's reply to one chat request.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Text and/or tool calls.
    pub message: Message,
    /// The provider's finish reason (`stop`, `tool_calls`, `length`...).
    pub finish_reason: Option<String>,
    /// Token counts, when sent.
    pub usage: Option<Usage>,
}

/// A client for one provider. Cheap to clone.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    config: std::sync::Arc<ProviderConfig>,
}

enum Attempt<T> {
    Done(T),
    Retry(LlmError, Option<Duration>),
    Fail(LlmError),
}

impl LlmClient {
    /// A client for `config`.
    pub fn new(config: ProviderConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("launch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            config: std::sync::Arc::new(config),
        })
    }

    /// The provider's configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    fn key(&self) -> Result<&str, LlmError> {
        self.config
            .api_key
            .as_deref()
            .ok_or_else(|| LlmError::NoApiKey {
                provider: self.config.name.clone(),
                hint: self.config.api_key_hint.clone(),
            })
    }

    /// One chat completion. With `on_text`, the answer is streamed and each
    /// text fragment is passed to it as it arrives.
    #[tracing::instrument(name = "llm_call", skip_all, fields(provider = %self.config.name, model = %self.config.model, stream = on_text.is_some()))]
    pub async fn chat(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Completion, LlmError> {
        let started = std::time::Instant::now();
        let result = self.chat_with_retries(messages, tools, on_text).await;
        let provider = self.config.name.clone();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(LlmError::NoApiKey { .. }) => "not_configured",
            Err(LlmError::Timeout { .. }) => "timeout",
            Err(LlmError::Status { .. }) => "status",
            Err(LlmError::Connect { .. }) => "connect",
            Err(LlmError::Invalid { .. }) => "invalid",
        };
        metrics::counter!("launch_llm_requests_total", "provider" => provider.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("launch_llm_request_duration_seconds", "provider" => provider.clone())
            .record(started.elapsed().as_secs_f64());
        if let Ok(Completion {
            usage: Some(usage), ..
        }) = &result
        {
            metrics::counter!("launch_llm_tokens_total", "provider" => provider.clone(), "kind" => "prompt")
                .increment(usage.prompt_tokens);
            metrics::counter!("launch_llm_tokens_total", "provider" => provider, "kind" => "completion")
                .increment(usage.completion_tokens);
        }
        result
    }

    async fn chat_with_retries(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mut on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Completion, LlmError> {
        let key = self.key()?.to_owned();
        let stream = on_text.is_some();
        let body = ChatRequest {
            model: &self.config.model,
            messages,
            tools,
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
            stream,
            stream_options: stream.then(|| json!({"include_usage": true})),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| self.invalid(format!("cannot encode the request: {e}")))?;
        let mut attempt = 0;
        loop {
            // A stream that already produced text cannot be retried: the
            // caller has shown it. Only failures before the first byte retry.
            let mut emitted = false;
            let outcome = match on_text.as_deref_mut() {
                Some(f) => {
                    let mut forward = |t: &str| {
                        emitted = true;
                        f(t)
                    };
                    self.attempt_stream(&key, &body, &mut forward).await
                }
                None => self.attempt_plain(&key, &body).await,
            };
            match outcome {
                Attempt::Done(c) => return Ok(c),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, wait) => {
                    if emitted || !self.pause_before_retry(&mut attempt, &e, wait).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// After a retryable failure: when retries are left, sleeps the backoff,
    /// counts the retry and returns true; otherwise returns false.
    async fn pause_before_retry(
        &self,
        retries: &mut u32,
        error: &LlmError,
        requested: Option<Duration>,
    ) -> bool {
        if *retries >= self.config.max_retries {
            return false;
        }
        let delay = self.backoff(*retries, requested);
        tracing::warn!(provider = %self.config.name, attempt = *retries + 1, delay_ms = delay.as_millis() as u64, error = %error, "retrying LLM request");
        tokio::time::sleep(delay).await;
        *retries += 1;
        true
    }

    /// Exponential backoff with full jitter, or the provider's requested wait;
    /// both capped at `retry_max`.
    fn backoff(&self, attempt: u32, requested: Option<Duration>) -> Duration {
        let cap = self.config.retry_max;
        match requested {
            Some(wait) => wait.min(cap),
            None => {
                let ceiling = self
                    .config
                    .retry_base
                    .saturating_mul(1 << attempt.min(16))
                    .min(cap);
                ceiling.mul_f64(fastrand::f64())
            }
        }
    }

    fn invalid(&self, message: String) -> LlmError {
        LlmError::Invalid {
            provider: self.config.name.clone(),
            message,
        }
    }

    async fn send<T>(
        &self,
        key: &str,
        path: &str,
        body: &[u8],
    ) -> Result<reqwest::Response, Attempt<T>> {
        let url = format!("{}/{path}", self.config.base_url.trim_end_matches('/'));
        let request = self
            .http
            .post(&url)
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let response = match tokio::time::timeout(self.config.request_timeout, request.send()).await
        {
            Err(_) => {
                return Err(Attempt::Retry(
                    self.timeout(self.config.request_timeout),
                    None,
                ));
            }
            Ok(Err(e)) => {
                return Err(Attempt::Retry(
                    LlmError::Connect {
                        provider: self.config.name.clone(),
                        url: self.config.base_url.clone(),
                        message: root_cause(&e),
                    },
                    None,
                ));
            }
            Ok(Ok(r)) => r,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let wait = retry_after(response.headers());
        let text = tokio::time::timeout(self.config.request_timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| text.chars().take(300).collect());
        let error = LlmError::Status {
            provider: self.config.name.clone(),
            status: status.as_u16(),
            message: if message.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                message
            },
        };
        Err(
            if error.retryable() || status == StatusCode::REQUEST_TIMEOUT {
                Attempt::Retry(error, wait)
            } else {
                Attempt::Fail(error)
            },
        )
    }

    fn timeout(&self, timeout: Duration) -> LlmError {
        LlmError::Timeout {
            provider: self.config.name.clone(),
            timeout,
        }
    }

    async fn attempt_plain(&self, key: &str, body: &[u8]) -> Attempt<Completion> {
        let response = match self.send(key, "chat/completions", body).await {
            Ok(r) => r,
            Err(a) => return a,
        };
        let bytes = match tokio::time::timeout(self.config.request_timeout, response.bytes()).await
        {
            Err(_) => return Attempt::Retry(self.timeout(self.config.request_timeout), None),
            Ok(Err(e)) => {
                return Attempt::Retry(
                    self.invalid(format!("the response was cut off: {}", root_cause(&e))),
                    None,
                );
            }
            Ok(Ok(b)) => b,
        };
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Attempt::Fail(self.invalid(format!(
                "the response is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let parsed: ChatResponse = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => {
                let preview: String = String::from_utf8_lossy(&bytes).chars().take(120).collect();
                return Attempt::Retry(
                    self.invalid(format!("not a chat completion ({e}): {preview}")),
                    None,
                );
            }
        };
        let Some(choice) = parsed.choices.into_iter().next() else {
            return Attempt::Retry(self.invalid("the response has no choices".into()), None);
        };
        let mut message = choice.message;
        message.role = Role::Assistant;
        Attempt::Done(Completion {
            message,
            finish_reason: choice.finish_reason,
            usage: parsed.usage,
        })
    }

    async fn attempt_stream(
        &self,
        key: &str,
        body: &[u8],
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Attempt<Completion> {
        use eventsource_stream::Eventsource;
        let response = match self.send(key, "chat/completions", body).await {
            Ok(r) => r,
            Err(a) => return a,
        };
        let mut events = response.bytes_stream().eventsource();
        let mut content = String::new();
        let mut calls: Vec<(String, String, String)> = Vec::new();
        let mut finish_reason = None;
        let mut usage = None;
        let mut received = 0usize;
        loop {
            if received > MAX_RESPONSE_BYTES {
                return Attempt::Fail(self.invalid(format!(
                    "the streamed answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            let event = match tokio::time::timeout(self.config.stream_idle_timeout, events.next())
                .await
            {
                Err(_) => {
                    return Attempt::Retry(self.timeout(self.config.stream_idle_timeout), None);
                }
                Ok(None) if finish_reason.is_some() => break,
                Ok(None) => {
                    return Attempt::Retry(
                        self.invalid("the stream ended before the answer was complete".into()),
                        None,
                    );
                }
                Ok(Some(Err(e))) => {
                    return Attempt::Retry(self.invalid(format!("the stream broke: {e}")), None);
                }
                Ok(Some(Ok(event))) => event,
            };
            let data = event.data.trim();
            if data == "[DONE]" {
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: ChatChunk = match serde_json::from_str(data) {
                Ok(c) => c,
                Err(e) => {
                    let preview: String = data.chars().take(120).collect();
                    return Attempt::Retry(
                        self.invalid(format!("a stream chunk is not JSON ({e}): {preview}")),
                        None,
                    );
                }
            };
            if let Some(error) = chunk.error {
                return Attempt::Retry(
                    self.invalid(format!("the stream carried an error: {}", error.message)),
                    None,
                );
            }
            if chunk.usage.is_some() {
                usage = chunk.usage;
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    on_text(&text);
                    content.push_str(&text);
                    received += text.len();
                }
                for fragment in choice.delta.tool_calls {
                    // Providers that send whole calls without `index` (or
                    // reuse 0) mark a new call with a new id.
                    let slot = match (fragment.index, &fragment.id) {
                        (Some(i), _) => i,
                        (None, Some(id))
                            if calls.last().is_some_and(|c| !c.0.is_empty() && c.0 != *id) =>
                        {
                            calls.len()
                        }
                        (None, _) => calls.len().saturating_sub(1),
                    };
                    if slot >= MAX_TOOL_CALLS {
                        return Attempt::Fail(self.invalid(format!(
                            "a tool call index of {slot} is beyond the {MAX_TOOL_CALLS} supported"
                        )));
                    }
                    if calls.len() <= slot {
                        calls.resize(slot + 1, Default::default());
                    }
                    let call = &mut calls[slot];
                    if let Some(id) = fragment.id {
                        call.0 = id;
                    }
                    if let Some(f) = fragment.function {
                        call.1.push_str(f.name.as_deref().unwrap_or_default());
                        call.2.push_str(f.arguments.as_deref().unwrap_or_default());
                    }
                    received += call.2.len();
                }
                if choice.finish_reason.is_some() {
                    finish_reason = choice.finish_reason;
                }
            }
        }
        let tool_calls = calls
            .into_iter()
            .filter(|(_, name, _)| !name.is_empty())
            .enumerate()
            .map(|(i, (id, name, arguments))| ToolCall {
                id: if id.is_empty() {
                    format!("call_{i}")
                } else {
                    id
                },
                kind: "function".into(),
                function: FunctionCall { name, arguments },
            })
            .collect();
        Attempt::Done(Completion {
            message: Message {
                role: Role::Assistant,
                content: (!content.is_empty()).then_some(content),
                tool_calls,
                tool_call_id: None,
            },
            finish_reason,
            usage,
        })
    }

    /// Embeds `inputs` with the provider's `/embeddings` endpoint.
    pub async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let key = self.key()?.to_owned();
        let model = self
            .config
            .embedding_model
            .as_deref()
            .unwrap_or(&self.config.model);
        let body = serde_json::to_vec(&json!({"model": model, "input": inputs}))
            .map_err(|e| self.invalid(format!("cannot encode the request: {e}")))?;
        let mut attempt = 0;
        loop {
            let outcome = match self.send(&key, "embeddings", &body).await {
                Err(a) => a,
                Ok(response) => {
                    match tokio::time::timeout(
                        self.config.request_timeout,
                        response.json::<Value>(),
                    )
                    .await
                    {
                        Err(_) => Attempt::Retry(self.timeout(self.config.request_timeout), None),
                        Ok(Ok(v)) => Attempt::Done(v),
                        Ok(Err(e)) => Attempt::Retry(
                            self.invalid(format!("not JSON: {}", root_cause(&e))),
                            None,
                        ),
                    }
                }
            };
            let value = match outcome {
                Attempt::Done(v) => v,
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, wait) => {
                    if self.pause_before_retry(&mut attempt, &e, wait).await {
                        continue;
                    }
                    return Err(e);
                }
            };
            let mut rows: Vec<(usize, Vec<f32>)> = value["data"]
                .as_array()
                .ok_or_else(|| self.invalid("no `data` array in the embeddings response".into()))?
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let index = row["index"].as_u64().map_or(i, |x| x as usize);
                    let vector = row["embedding"].as_array().map(|a| {
                        a.iter()
                            .filter_map(Value::as_f64)
                            .map(|x| x as f32)
                            .collect()
                    });
                    vector.map(|v| (index, v)).ok_or_else(|| {
                        self.invalid("an embedding is not an array of numbers".into())
                    })
                })
                .collect::<Result<_, _>>()?;
            rows.sort_by_key(|(i, _)| *i);
            if rows.len() != inputs.len() {
                return Err(self.invalid(format!(
                    "asked for {} embeddings, got {}",
                    inputs.len(),
                    rows.len()
                )));
            }
            return Ok(rows.into_iter().map(|(_, v)| v).collect());
        }
    }
}

/// The provider's requested wait: `Retry-After` (seconds or an HTTP date) or
/// `x-ratelimit-reset` (seconds), as some OpenAI-compatible providers send.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().trim_end_matches('s').parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    };
    seconds("retry-after")
        .or_else(|| {
            let date = headers.get("retry-after")?.to_str().ok()?;
            let when = httpdate::parse_http_date(date).ok()?;
            Some(
                when.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default(),
            )
        })
        .or_else(|| seconds("x-ratelimit-reset"))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_dates_and_reset_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "0.5".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30))
                .parse()
                .unwrap(),
        );
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn only_transient_failures_retry() {
        let status = |s| LlmError::Status {
            provider: "p".into(),
            status: s,
            message: String::new(),
        };
        assert!(status(429).retryable() && status(500).retryable() && status(503).retryable());
        assert!(!status(400).retryable() && !status(401).retryable() && !status(404).retryable());
        assert!(status(401).to_string().contains("LAUNCH_LLM_API_KEY"));
    }
}
