//! `POST /v1/chat/completions`: OpenAI-compatible, streamed or not. The
//! server runs the tools itself; only the final answer is `content`. Tool
//! steps travel in the non-standard `launch` field: on the response object
//! (`launch.steps`), and in streams on extra chunks whose standard part is an
//! empty delta, so OpenAI SDKs ignore them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use crate::agent::{Event, FinishReason, TurnError, TurnOutcome};
use crate::llm::{Message, Role, ToolCall};

/// The parts of an OpenAI chat request Launch uses; other fields SDKs send
/// (`n`, `user`, `tools`...) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    /// Echoed back; the configured model answers.
    #[serde(default)]
    model: Option<String>,
    /// The conversation; the last message is normally the user's.
    messages: Vec<InMessage>,
    /// Stream as server-sent events.
    #[serde(default)]
    stream: bool,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

/// Most messages one request may carry.
const MAX_MESSAGES: usize = 1000;

fn convert(messages: Vec<InMessage>) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "`messages` is empty; send at least one user message",
        ));
    }
    if messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            Some("messages"),
            format!(
                "{} messages is more than the {MAX_MESSAGES} this server accepts",
                messages.len()
            ),
        ));
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" => Role::Tool,
                other => {
                    return Err(ApiError::invalid(
                        Some(&format!("messages[{i}].role")),
                        format!("unknown role {other:?}; use system, user, assistant or tool"),
                    ));
                }
            };
            let content = match m.content {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(Value::Array(parts)) => Some(text_parts(&parts, i)?),
                Some(_) => {
                    return Err(ApiError::invalid(
                        Some(&format!("messages[{i}].content")),
                        "`content` must be a string or an array of text parts",
                    ));
                }
            };
            Ok(Message {
                role,
                content,
                tool_calls: m.tool_calls,
                tool_call_id: m.tool_call_id,
            })
        })
        .collect()
}

/// Joins `[{"type": "text", "text": ...}]` parts; other part types are refused.
fn text_parts(parts: &[Value], i: usize) -> Result<String, ApiError> {
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        match (part["type"].as_str(), part["text"].as_str()) {
            (Some("text"), Some(t)) => text.push_str(t),
            _ => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].content[{j}]")),
                    "only text parts ({\"type\": \"text\", \"text\": ...}) are supported",
                ));
            }
        }
    }
    Ok(text)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The OpenAI finish reason for a turn, and Launch's own.
fn finish_reasons(reason: FinishReason) -> (&'static str, FinishReason) {
    match reason {
        FinishReason::Length => ("length", reason),
        _ => ("stop", reason),
    }
}

/// `POST /v1/chat/completions`
pub async fn completions(
    State(state): State<AppState>,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let history = convert(request.messages)?;
    let model = request
        .model
        .unwrap_or_else(|| state.agent.llm().config().model.clone());
    let id = format!("chatcmpl-{:016x}", fastrand::u64(..));
    if request.stream {
        return Ok(stream(state, history, model, id).into_response());
    }
    let outcome = state.agent.run(&history, None).await?;
    Ok(Json(completion_body(&outcome, &model, &id)).into_response())
}

fn completion_body(outcome: &TurnOutcome, model: &str, id: &str) -> Value {
    let (finish, launch_finish) = finish_reasons(outcome.finish_reason);
    json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": outcome.content},
            "finish_reason": finish,
        }],
        "usage": outcome.usage,
        "launch": {"steps": outcome.steps, "finish_reason": launch_finish, "iterations": outcome.iterations},
    })
}

/// Aborts the turn when the stream is dropped (the client went away).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn stream(
    state: AppState,
    history: Vec<Message>,
    model: String,
    id: String,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<TurnOutcome, TurnError>>();
    let agent = Arc::clone(&state.agent);
    let turn = tokio::spawn(async move {
        let outcome = agent.run(&history, Some(&tx)).await;
        let _ = done_tx.send(outcome);
    });
    let chunk = move |delta: Value, finish: Option<&str>, launch: Option<Value>| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let Some(l) = launch {
            c["launch"] = l;
        }
        SseEvent::default().data(c.to_string())
    };
    struct St<F> {
        rx: mpsc::UnboundedReceiver<Event>,
        done: Option<tokio::sync::oneshot::Receiver<Result<TurnOutcome, TurnError>>>,
        chunk: F,
        started: bool,
        _turn: AbortOnDrop,
    }
    let initial = St {
        rx,
        done: Some(done_rx),
        chunk,
        started: false,
        _turn: AbortOnDrop(turn),
    };
    let events = futures::stream::unfold(initial, |mut st| async move {
        if !st.started {
            st.started = true;
            let first = (st.chunk)(json!({"role": "assistant", "content": ""}), None, None);
            return Some((vec![first], st));
        }
        match st.rx.recv().await {
            Some(Event::Delta { content }) => {
                let e = (st.chunk)(json!({"content": content}), None, None);
                Some((vec![e], st))
            }
            Some(Event::ToolStarted {
                id,
                name,
                arguments,
            }) => {
                let launch =
                    json!({"type": "tool_started", "id": id, "name": name, "arguments": arguments});
                let e = (st.chunk)(json!({}), None, Some(launch));
                Some((vec![e], st))
            }
            Some(Event::ToolFinished(step)) => {
                let mut launch = serde_json::to_value(&step).unwrap_or(Value::Null);
                launch["type"] = "tool_finished".into();
                let e = (st.chunk)(json!({}), None, Some(launch));
                Some((vec![e], st))
            }
            Some(Event::Done {
                finish_reason,
                usage,
            }) => {
                let (finish, launch_finish) = finish_reasons(finish_reason);
                let launch =
                    json!({"type": "done", "finish_reason": launch_finish, "usage": usage});
                let e = (st.chunk)(json!({}), Some(finish), Some(launch));
                Some((vec![e, SseEvent::default().data("[DONE]")], st))
            }
            None => {
                // The turn ended without `Done`: it failed. Report the error the
                // way OpenAI streams do, as a `data: {"error": ...}` event.
                let done = st.done.take()?;
                match done.await {
                    Ok(Err(e)) => Some((
                        vec![SseEvent::default().data(ApiError::from(e).body().to_string())],
                        st,
                    )),
                    _ => None,
                }
            }
        }
    });
    use futures::StreamExt;
    let flat = events.flat_map(|batch| futures::stream::iter(batch.into_iter().map(Ok)));
    Sse::new(flat).keep_alive(KeepAlive::default())
}
