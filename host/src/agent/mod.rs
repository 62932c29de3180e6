//! The agent loop: ask the model (with the registry's tools), run the tool
//! calls it asks for, feed the results back, repeat until it answers or a
//! limit ends the turn with a typed finish reason. Every step is reported as
//! an [`Event`] on one channel, for streaming; the same steps come back in the
//! [`TurnOutcome`].
//!
//! Cancellation is by drop: dropping the turn's future (a client went away)
//! drops the model request and the running tool calls, whose sandboxes stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;

use crate::llm::{LlmClient, LlmError, Message, Role, ToolCall, ToolSpec, Usage};
use crate::plugins::{Registry, ToolError};

/// How the loop behaves.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Prepended to every conversation that has no system message.
    pub system_prompt: String,
    /// Model calls per turn before the loop stops.
    pub max_iterations: u32,
    /// Wall-clock budget of a turn.
    pub turn_timeout: Duration,
    /// Tool calls of one model reply that run at once.
    pub max_parallel_tools: usize,
    /// When `max_iterations` is hit, ask once more without tools for a summary.
    pub summarize_on_limit: bool,
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model answered.
    Stop,
    /// The model's answer was cut by its token limit.
    Length,
    /// `max_iterations` model calls were made without a final answer.
    MaxIterations,
    /// The turn's wall-clock budget ran out.
    Timeout,
}

impl FinishReason {
    /// Every reason, for round trips.
    pub const ALL: [Self; 4] = [Self::Stop, Self::Length, Self::MaxIterations, Self::Timeout];

    /// The one text of a reason: in API bodies, the store and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::MaxIterations => "max_iterations",
            Self::Timeout => "timeout",
        }
    }

    /// The reason `text` names, as [`FinishReason::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A streamed step of a turn.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A fragment of the model's text.
    Delta {
        /// The fragment.
        content: String,
    },
    /// A tool call is starting.
    ToolStarted {
        /// The model's call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (the raw text when it was not valid JSON).
        arguments: Value,
    },
    /// A tool call finished.
    ToolFinished(Step),
    /// The turn is over.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Tokens used by all model calls of the turn.
        usage: Usage,
    },
}

/// One tool call and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The model's call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments (the raw text when it was not valid JSON).
    pub arguments: Value,
    /// The result, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Wall-clock time of the call.
    pub duration_ms: f64,
}

/// A failed tool call, as the model and API clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct StepError {
    /// Machine-readable kind (`unknown_tool`, `invalid_arguments`, `tool_error`, `timeout`...).
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// What a finished turn produced.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// The final answer.
    pub content: String,
    /// Why the turn ended.
    pub finish_reason: FinishReason,
    /// Every tool call, in order.
    pub steps: Vec<Step>,
    /// Tokens used.
    pub usage: Usage,
    /// The messages the turn added (assistant tool calls, tool results, the answer).
    pub messages: Vec<Message>,
    /// Model calls made.
    pub iterations: u32,
}

/// What a turn has accumulated so far.
struct Progress {
    messages: Vec<Message>,
    /// Where the turn's own messages begin in `messages`.
    start: usize,
    steps: Vec<Step>,
    usage: Usage,
    iterations: u32,
}

impl Progress {
    fn end(mut self, content: String, finish_reason: FinishReason) -> TurnOutcome {
        TurnOutcome {
            content,
            finish_reason,
            steps: self.steps,
            usage: self.usage,
            messages: self.messages.split_off(self.start),
            iterations: self.iterations,
        }
    }
}

/// A turn that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The model could not be asked (no key, provider down after retries...).
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// The agent: a model, the tools and the loop's limits.
pub struct Agent {
    registry: Arc<Registry>,
    llm: LlmClient,
    config: AgentConfig,
    tools: Vec<ToolSpec>,
}

impl Agent {
    /// An agent offering every tool of `registry` to `llm`.
    pub fn new(registry: Arc<Registry>, llm: LlmClient, config: AgentConfig) -> Self {
        let tools = registry
            .tools()
            .map(|t| ToolSpec {
                kind: "function",
                function: crate::llm::types::FunctionSpec {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                },
            })
            .collect();
        Self {
            registry,
            llm,
            config,
            tools,
        }
    }

    /// The loop's settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The model client.
    pub fn llm(&self) -> &LlmClient {
        &self.llm
    }

    /// Runs one turn over `history` (whose last message is normally the
    /// user's). With `events`, model text is streamed and every step is sent
    /// as it happens; the outcome is the same either way.
    pub async fn run(
        &self,
        history: &[Message],
        events: Option<&UnboundedSender<Event>>,
    ) -> Result<TurnOutcome, TurnError> {
        let span = tracing::info_span!(
            "agent_turn",
            iterations = tracing::field::Empty,
            finish_reason = tracing::field::Empty
        );
        let outcome = self.turn(history, events).instrument(span.clone()).await?;
        span.record("iterations", outcome.iterations);
        span.record(
            "finish_reason",
            tracing::field::debug(outcome.finish_reason),
        );
        if let Some(tx) = events {
            let _ = tx.send(Event::Done {
                finish_reason: outcome.finish_reason,
                usage: outcome.usage,
            });
        }
        Ok(outcome)
    }

    async fn turn(
        &self,
        history: &[Message],
        events: Option<&UnboundedSender<Event>>,
    ) -> Result<TurnOutcome, TurnError> {
        let deadline = Instant::now() + self.config.turn_timeout;
        let mut messages = Vec::with_capacity(history.len() + 4);
        if history.first().is_none_or(|m| m.role != Role::System) {
            messages.push(Message::system(self.config.system_prompt.clone()));
        }
        messages.extend_from_slice(history);
        let mut turn = Progress {
            start: messages.len(),
            messages,
            steps: Vec::new(),
            usage: Usage::default(),
            iterations: 0,
        };

        while turn.iterations < self.config.max_iterations {
            let Some(completion) = self
                .ask(&turn.messages, &self.tools, deadline, events)
                .await?
            else {
                return Ok(turn.end(String::new(), FinishReason::Timeout));
            };
            turn.iterations += 1;
            turn.usage += completion.usage.unwrap_or_default();
            let message = completion.message;
            if message.tool_calls.is_empty() {
                let content = message.content.clone().unwrap_or_default();
                let reason = if completion.finish_reason.as_deref() == Some("length") {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                };
                turn.messages.push(message);
                return Ok(turn.end(content, reason));
            }
            let calls = message.tool_calls.clone();
            turn.messages.push(message);
            // Futures collected first: a lazily mapped iterator inside the
            // stream would make the turn's future not `Send` for every lifetime.
            let pending: Vec<_> = calls
                .iter()
                .map(|call| self.run_tool(call, events))
                .collect();
            // Results arrive in call order; when the turn's budget runs out,
            // the finished prefix is kept and the rest become timeout steps,
            // so every call still gets exactly one tool message.
            let mut results =
                futures::stream::iter(pending).buffered(self.config.max_parallel_tools);
            let mut timed_out = false;
            for call in &calls {
                let step = match tokio::time::timeout_at(deadline.into(), results.next()).await {
                    Ok(Some(step)) => step,
                    Ok(None) => break,
                    Err(_) => {
                        timed_out = true;
                        unfinished(call)
                    }
                };
                turn.messages
                    .push(Message::tool(call.id.clone(), tool_message(&step)));
                turn.steps.push(step);
            }
            if timed_out {
                return Ok(turn.end(String::new(), FinishReason::Timeout));
            }
        }

        // Out of iterations: one last call without tools, so the model
        // summarises what it found instead of the turn ending empty-handed.
        let mut content = String::new();
        if self.config.summarize_on_limit {
            turn.messages.push(Message::system(format!(
                "You have used all {} tool-calling rounds of this turn. Do not call tools; answer now with what you know.",
                self.config.max_iterations
            )));
            if let Some(completion) = self.ask(&turn.messages, &[], deadline, events).await? {
                turn.usage += completion.usage.unwrap_or_default();
                content = completion.message.content.clone().unwrap_or_default();
                turn.messages.push(Message::assistant(content.clone()));
            }
        }
        Ok(turn.end(content, FinishReason::MaxIterations))
    }

    /// One model call within the turn's budget; `None` when the budget ran out.
    async fn ask(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        deadline: Instant,
        events: Option<&UnboundedSender<Event>>,
    ) -> Result<Option<crate::llm::Completion>, LlmError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let call = async {
            match events {
                Some(tx) => {
                    let mut forward = |text: &str| {
                        let _ = tx.send(Event::Delta {
                            content: text.to_owned(),
                        });
                    };
                    self.llm.chat(messages, tools, Some(&mut forward)).await
                }
                None => self.llm.chat(messages, tools, None).await,
            }
        };
        match tokio::time::timeout(remaining, call).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    async fn run_tool(&self, call: &ToolCall, events: Option<&UnboundedSender<Event>>) -> Step {
        let name = call.function.name.clone();
        let (parsed, arguments) = arguments_of(call);
        if let Some(tx) = events {
            let _ = tx.send(Event::ToolStarted {
                id: call.id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
            });
        }
        let span = tracing::info_span!("tool_call", tool = %name, outcome = tracing::field::Empty);
        let started = Instant::now();
        let outcome = async {
            match parsed {
                Err(e) => Err(StepError {
                    code: "invalid_arguments".into(),
                    message: format!(
                        "the arguments are not valid JSON ({e}); send one JSON object matching the tool's parameter schema"
                    ),
                }),
                Ok(args) => self.registry.call(&name, &args).await.map_err(step_error),
            }
        }
        .instrument(span.clone())
        .await;
        span.record(
            "outcome",
            outcome.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"),
        );
        let (result, error) = match outcome {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        let step = Step {
            id: call.id.clone(),
            name,
            arguments,
            result,
            error,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        if let Some(tx) = events {
            let _ = tx.send(Event::ToolFinished(step.clone()));
        }
        step
    }
}

/// A call's arguments parsed (empty text means `{}`), and the value shown in
/// steps and events: the parsed JSON, or the raw text when it is not JSON.
fn arguments_of(call: &ToolCall) -> (Result<Value, serde_json::Error>, Value) {
    let text = &call.function.arguments;
    let parsed = if text.trim().is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_str(text)
    };
    let shown = parsed
        .as_ref()
        .map_or_else(|_| Value::String(text.clone()), Value::clone);
    (parsed, shown)
}

/// The step of a call that was still running when the turn's budget ran out.
fn unfinished(call: &ToolCall) -> Step {
    let (_, arguments) = arguments_of(call);
    Step {
        id: call.id.clone(),
        name: call.function.name.clone(),
        arguments,
        result: None,
        error: Some(StepError {
            code: "timeout".into(),
            message: "the turn's time budget ran out before this call finished".into(),
        }),
        duration_ms: 0.0,
    }
}

fn step_error(e: ToolError) -> StepError {
    StepError {
        code: e.code().to_owned(),
        message: e.to_string(),
    }
}

/// The tool message the model reads: the JSON result, or an error object it
/// can recognise and act on.
fn tool_message(step: &Step) -> String {
    match (&step.result, &step.error) {
        (Some(result), _) => result.to_string(),
        (None, Some(e)) => json!({"error": {"code": e.code, "message": e.message}}).to_string(),
        (None, None) => "null".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_reason_has_one_text_everywhere() {
        for reason in FinishReason::ALL {
            let serialized = serde_json::to_value(reason).unwrap();
            assert_eq!(serialized, reason.as_str());
            assert_eq!(FinishReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(FinishReason::MaxIterations.as_str(), "max_iterations");
        assert_eq!(FinishReason::parse("maxiterations"), None);
    }
}
