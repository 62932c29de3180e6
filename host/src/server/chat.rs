//! `POST /v1/chat/completions`: OpenAI-compatible, streamed or not. The
//! server runs the tools itself; only the final answer is `content`. Tool
//! steps travel in the non-standard `launch` field: on the response object
//! (`launch.steps`), and in streams on extra chunks whose standard part is an
//! empty delta, so OpenAI SDKs ignore them.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::turns::{self, TurnRequest, TurnResult};
use crate::agent::{Event, FinishReason, TurnOutcome};
use crate::llm::{Message, Role, ToolCall};

/// The header that selects a stored session.
pub const SESSION_HEADER: &str = "x-session-id";

/// The parts of an OpenAI chat request Launch uses; other fields SDKs send
/// (`n`, `user`, `tools`...) are accepted and ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionRequest {
    /// Echoed back; the configured model answers.
    #[serde(default)]
    model: Option<String>,
    /// The conversation; the last message is normally the user's. With
    /// `x-session-id`, only optional system messages and the new user message.
    #[schema(value_type = Vec<Object>)]
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

fn convert(
    messages: Vec<InMessage>,
    max_messages: usize,
    max_bytes: usize,
) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "`messages` is empty; send at least one user message",
        ));
    }
    if messages.len() > max_messages {
        return Err(ApiError::invalid(
            Some("messages"),
            format!(
                "{} messages is more than the {max_messages} this server accepts ([server] max_messages)",
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
            if let Some(text) = &content
                && text.len() > max_bytes
            {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].content")),
                    format!(
                        "the message is {} bytes, more than the {max_bytes} this server accepts ([server] max_message_bytes)",
                        text.len()
                    ),
                ));
            }
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

/// The session named by `x-session-id`, if any.
fn session_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(SESSION_HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id) if !id.trim().is_empty() && id.len() <= 128 => Ok(Some(id.trim().to_owned())),
        _ => Err(ApiError::invalid(
            Some(SESSION_HEADER),
            "`x-session-id` must be a session id from POST /v1/sessions",
        )),
    }
}

/// OpenAI-compatible chat completion; the server runs the tools.
///
/// Tool steps are in the non-standard `launch` field (`launch.steps`), and in
/// streams in chunks with an empty standard delta and a `launch` event, which
/// OpenAI SDKs ignore. With the `x-session-id` header, history comes from
/// that session and the turn is stored in it.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "chat",
    params(("x-session-id" = Option<String>, Header, description = "Session whose stored history to use and extend")),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion` object (or `text/event-stream` of `chat.completion.chunk`s with `stream: true`), plus the `launch` extension"),
        (status = 400, description = "Invalid request"), (status = 404, description = "No such session"),
        (status = 413, description = "Body too large"), (status = 422, description = "Wrong JSON types"),
        (status = 502, description = "Provider error"), (status = 503, description = "LLM not configured or server busy"),
        (status = 504, description = "Provider timeout")))]
pub async fn completions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let session = session_of(&headers)?;
    let messages = convert(
        request.messages,
        state.limits.max_messages,
        state.limits.max_message_bytes,
    )?;
    let model = request
        .model
        .unwrap_or_else(|| state.agent.llm().config().model.clone());
    let id = format!("chatcmpl-{:016x}", fastrand::u64(..));
    let stored = session.is_some();
    if let Some(id) = &session {
        // Checked here too (turns check again under the session lock) so a
        // streamed request for a missing session is a 404, not an error
        // event after a 200.
        if state
            .memory
            .store()
            .session(&caller.owner, id)
            .await?
            .is_none()
        {
            return Err(turns::no_such_session(id));
        }
    }
    let turn = TurnRequest {
        owner: caller.owner,
        session,
        messages,
    };
    if request.stream {
        return Ok(stream(&state, turn, model, id).into_response());
    }
    let result = if stored {
        // A stored turn completes and is kept even if this client goes away.
        turns::spawn(&state, turn, false)
            .result
            .await
            .map_err(|_| ApiError::internal("the turn's task ended without a result"))??
    } else {
        turns::run(&state, turn, None).await?
    };
    Ok(Json(completion_body(&result.outcome, &model, &id)).into_response())
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
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

fn stream(
    state: &AppState,
    turn: TurnRequest,
    model: String,
    id: String,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    // Stateless turns die with their stream; stored ones finish and are kept.
    let stored = turn.session.is_some();
    let running = turns::spawn(state, turn, true);
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
        done: Option<tokio::sync::oneshot::Receiver<Result<TurnResult, ApiError>>>,
        chunk: F,
        started: bool,
        _turn: AbortOnDrop,
    }
    let initial = St {
        rx: running.events,
        done: Some(running.result),
        chunk,
        started: false,
        _turn: AbortOnDrop((!stored).then_some(running.task)),
    };
    let events = futures::stream::unfold(initial, |mut st| async move {
        if !st.started {
            st.started = true;
            let first = (st.chunk)(json!({"role": "assistant", "content": ""}), None, None);
            return Some((vec![first], st));
        }
        loop {
            let event = match st.rx.recv().await {
                Some(Event::Delta { content }) => {
                    (st.chunk)(json!({"content": content}), None, None)
                }
                Some(Event::ToolStarted {
                    id,
                    name,
                    arguments,
                }) => {
                    let launch = json!({"type": "tool_started", "id": id, "name": name, "arguments": arguments});
                    (st.chunk)(json!({}), None, Some(launch))
                }
                Some(Event::ToolFinished(step)) => {
                    let mut launch = serde_json::to_value(&step).unwrap_or(Value::Null);
                    launch["type"] = "tool_finished".into();
                    (st.chunk)(json!({}), None, Some(launch))
                }
                // The end is reported from the turn's result, which for a
                // session comes after the turn is stored.
                Some(Event::Done { .. }) => continue,
                None => {
                    let done = st.done.take()?;
                    let events = match done.await {
                        Ok(Ok(result)) => {
                            let outcome = &result.outcome;
                            let (finish, launch_finish) = finish_reasons(outcome.finish_reason);
                            let launch = json!({"type": "done", "finish_reason": launch_finish, "usage": outcome.usage});
                            vec![
                                (st.chunk)(json!({}), Some(finish), Some(launch)),
                                SseEvent::default().data("[DONE]"),
                            ]
                        }
                        // Failures are reported the way OpenAI streams do, as
                        // a `data: {"error": ...}` event.
                        Ok(Err(e)) => vec![SseEvent::default().data(e.body().to_string())],
                        Err(_) => vec![
                            SseEvent::default().data(
                                ApiError::internal("the turn's task ended without a result")
                                    .body()
                                    .to_string(),
                            ),
                        ],
                    };
                    return Some((events, st));
                }
            };
            return Some((vec![event], st));
        }
    });
    use futures::StreamExt;
    let flat = events.flat_map(|batch| futures::stream::iter(batch.into_iter().map(Ok)));
    Sse::new(flat).keep_alive(KeepAlive::default())
}
