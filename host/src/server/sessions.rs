//! The sessions API: create, list, get (history and tool steps), delete, and
//! post a message (JSON, or a stream of events over SSE or a WebSocket).
//!
//! Stream events, the same on SSE (`event:` name + JSON `data:`) and on the
//! WebSocket (JSON text frames with a `type` field):
//! `delta {content}`, `tool_started {id, name, arguments}`,
//! `tool_finished {id, name, arguments, result | error, duration_ms}`, then
//! either `done` (the same body as the JSON answer, sent after the turn is
//! stored) or `error {error: {message, type, param, code}}`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::turns::{self, TurnRequest, TurnResult, no_such_session};
use crate::agent::Event;
use crate::llm::Message;
use crate::memory::{SessionInfo, StoredMessage, StoredTurn};

/// `POST /v1/sessions` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// A title to show in lists.
    #[serde(default)]
    title: Option<String>,
}

/// `POST /v1/sessions/{id}/messages` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The user's message.
    content: String,
    /// Answer as a stream of server-sent events instead of one JSON object.
    #[serde(default)]
    stream: bool,
}

/// `GET /v1/sessions` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Most sessions to return (1-200, default 50).
    #[serde(default)]
    limit: Option<u32>,
    /// Page backwards: only sessions last active before this `updated_at`.
    #[serde(default)]
    before: Option<i64>,
}

/// A page of sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Always `list`.
    object: &'static str,
    /// Most recently active first.
    data: Vec<SessionInfo>,
    /// Whether older sessions exist (pass the last `updated_at` as `before`).
    has_more: bool,
}

/// `GET /v1/sessions/{id}` query: which page of history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Most turns to return (1-100, default 20). A page also stops at about
    /// 2 MiB of messages and tool steps (it always holds at least one turn).
    #[serde(default)]
    limit: Option<u32>,
    /// Page backwards: only turns older than this turn id (pass `turns[0].id`).
    #[serde(default)]
    before: Option<i64>,
}

/// Bytes of messages and steps in one page of history, about.
const HISTORY_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// A session with a page of its history: its most recent turns, or those
/// before `before`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionDetail {
    /// The session.
    #[serde(flatten)]
    session: SessionInfo,
    /// The messages of this page's turns, oldest first.
    messages: Vec<StoredMessage>,
    /// This page's turns with their tool steps, oldest first.
    turns: Vec<StoredTurn>,
    /// Whether older turns exist: fetch them with `before` = `turns[0].id`.
    has_more: bool,
}

/// The answer to a posted message (also the `done` stream event).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnResponse {
    /// Always `session.turn`.
    object: &'static str,
    /// The session.
    session_id: String,
    /// The assistant's answer.
    #[schema(value_type = Object)]
    message: Value,
    /// `stop`, `length`, `max_iterations` or `timeout`.
    finish_reason: String,
    /// Tool calls of the turn, in order.
    #[schema(value_type = Vec<Object>)]
    steps: Vec<crate::agent::Step>,
    /// Tokens the provider reported for the turn.
    #[schema(value_type = Object)]
    usage: crate::llm::Usage,
    /// Model calls made.
    iterations: u32,
    /// Earlier messages recalled into the prompt by semantic memory.
    recalled: Vec<StoredMessage>,
    /// The stored turn's id (as in the session's `turns`).
    turn_id: Option<i64>,
}

fn turn_response(session: &str, result: TurnResult) -> TurnResponse {
    let outcome = result.outcome;
    TurnResponse {
        object: "session.turn",
        session_id: session.to_owned(),
        message: json!({"role": "assistant", "content": outcome.content}),
        finish_reason: outcome.finish_reason.as_str().to_owned(),
        steps: outcome.steps,
        usage: outcome.usage,
        iterations: outcome.iterations,
        recalled: result.recalled,
        turn_id: result.turn_id,
    }
}

/// Parses an optional JSON body: empty means the default.
fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("invalid JSON body: {e}")))
}

/// Create a session.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body(content = Option<CreateSession>, description = "Optional; `{}` or no body is fine"),
    responses((status = 201, body = SessionInfo), (status = 400, description = "Bad body")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let request: CreateSession = optional_json(&body?)?;
    if let Some(t) = &request.title
        && t.len() > 512
    {
        return Err(ApiError::invalid(
            Some("title"),
            "`title` is longer than 512 bytes",
        ));
    }
    let session = state
        .memory
        .store()
        .create_session(&caller.owner, request.title)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)).into_response())
}

/// List sessions, most recently active first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, body = SessionList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(None, e.body_text()))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let mut data = state
        .memory
        .store()
        .sessions(&caller.owner, limit + 1, query.before)
        .await?;
    let has_more = data.len() > limit as usize;
    data.truncate(limit as usize);
    Ok(Json(SessionList {
        object: "list",
        data,
        has_more,
    }))
}

/// A session with a page of its history: the most recent turns (with their
/// messages and tool steps); older pages with `before`.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), HistoryQuery),
    responses((status = 200, body = SessionDetail), (status = 400, description = "Bad query"), (status = 404, description = "No such session")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionDetail>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(None, e.body_text()))?;
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let store = state.memory.store();
    let session = store
        .session(&caller.owner, &id)
        .await?
        .ok_or_else(|| no_such_session(&id))?;
    let page = store
        .history(&id, query.before, limit, HISTORY_PAGE_BYTES)
        .await?;
    Ok(Json(SessionDetail {
        session,
        messages: page.messages,
        turns: page.turns,
        has_more: page.has_more,
    }))
}

/// Delete a session, its history and its vectors.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "`{id, object: \"session.deleted\", deleted: true}`"), (status = 404, description = "No such session")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state.memory.delete(&caller.owner, &id).await? {
        return Err(no_such_session(&id));
    }
    Ok(Json(
        json!({"id": id, "object": "session.deleted", "deleted": true}),
    ))
}

/// Checks a user message against the size limit.
fn user_message(state: &AppState, content: String) -> Result<Message, ApiError> {
    let max = state.limits.max_message_bytes;
    if content.len() > max {
        return Err(ApiError::invalid(
            Some("content"),
            format!(
                "the message is {} bytes, more than the {max} this server accepts ([server] max_message_bytes)",
                content.len()
            ),
        ));
    }
    if content.trim().is_empty() {
        return Err(ApiError::invalid(
            Some("content"),
            "`content` is empty; send the user's message",
        ));
    }
    Ok(Message::user(content))
}

/// Post a user message and get the agent's answer (JSON, or SSE with `stream: true`).
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = PostMessage,
    responses(
        (status = 200, body = TurnResponse, description = "The answer; with `stream: true`, `text/event-stream` events delta, tool_started, tool_finished, then done (this body) or error"),
        (status = 404, description = "No such session"), (status = 503, description = "LLM not configured or server busy")))]
pub async fn post_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<PostMessage>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let user = user_message(&state, body.content)?;
    if state
        .memory
        .store()
        .session(&caller.owner, &id)
        .await?
        .is_none()
    {
        return Err(no_such_session(&id));
    }
    let request = TurnRequest {
        owner: caller.owner,
        session: Some(id.clone()),
        messages: vec![user],
    };
    let running = turns::spawn(&state, request, body.stream);
    if body.stream {
        return Ok(sse(id, running).into_response());
    }
    // Not aborted if this request is dropped: the turn completes and is stored.
    let result = running
        .result
        .await
        .map_err(|_| ApiError::internal("the turn's task ended without a result"))??;
    Ok(Json(turn_response(&id, result)).into_response())
}

/// One stream event as `(name, data)`; `None` for the agent's own `done`,
/// which is replaced by the stored turn's.
fn stream_event(event: Event) -> Option<(&'static str, Value)> {
    let name = match &event {
        Event::Delta { .. } => "delta",
        Event::ToolStarted { .. } => "tool_started",
        Event::ToolFinished(_) => "tool_finished",
        Event::Done { .. } => return None,
    };
    let mut data = serde_json::to_value(&event).unwrap_or(Value::Null);
    if let Some(obj) = data.as_object_mut() {
        obj.remove("type");
    }
    Some((name, data))
}

/// The final event of a turn.
fn final_event(id: &str, result: Option<Result<TurnResult, ApiError>>) -> (&'static str, Value) {
    match result {
        Some(Ok(r)) => (
            "done",
            serde_json::to_value(turn_response(id, r)).unwrap_or(Value::Null),
        ),
        Some(Err(e)) => ("error", e.body()),
        None => (
            "error",
            ApiError::internal("the turn's task ended without a result").body(),
        ),
    }
}

/// The events of `running`, then its final event.
fn turn_events(
    id: String,
    running: turns::RunningTurn,
) -> impl Stream<Item = (&'static str, Value)> {
    let turns::RunningTurn { events, result, .. } = running;
    let live = tokio_stream_of(events).filter_map(|e| async move { stream_event(e) });
    let last = futures::stream::once(async move { final_event(&id, result.await.ok()) });
    live.chain(last)
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn sse(
    id: String,
    running: turns::RunningTurn,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = turn_events(id, running)
        .map(|(name, data)| Ok(SseEvent::default().event(name).data(data.to_string())));
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A WebSocket client's frame.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WsRequest {
    content: String,
}

/// The session's event stream over a WebSocket: send `{"content": "..."}`
/// text frames, receive the events as JSON frames with a `type` field.
#[utoipa::path(get, path = "/v1/sessions/{id}/ws", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
           ("access_token" = Option<String>, Query, description = "API key, for browsers that cannot set headers on WebSocket requests")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 404, description = "No such session")))]
pub async fn ws(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if state
        .memory
        .store()
        .session(&caller.owner, &id)
        .await?
        .is_none()
    {
        return Err(no_such_session(&id));
    }
    let socket_permit = state.access.open_socket(&caller.rate_key)?;
    // Frames and messages are bounded by the message limit (plus room for
    // the JSON around it) before they are buffered.
    let max = state.limits.max_message_bytes + 1024;
    Ok(upgrade
        .max_frame_size(max)
        .max_message_size(max)
        .on_upgrade(move |socket| async move {
            let _socket_permit = socket_permit;
            ws_session(state, caller, id, socket).await;
        }))
}

/// Serves one session's WebSocket: each text frame is a turn, counted
/// against the caller's rate limit like a POST. A socket that stays silent
/// (no frame, not even a pong to the server's pings) for the idle timeout,
/// or stops reading what the server sends, is closed.
async fn ws_session(state: AppState, caller: Caller, id: String, mut socket: WebSocket) {
    let idle = state.limits.connections.idle_timeout;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + idle / 2, idle / 2);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let frame = tokio::select! {
            frame = socket.recv() => frame,
            _ = ping.tick() => {
                if last_heard.elapsed() >= idle {
                    close(&mut socket, idle, 1001, "idle: nothing received within the idle timeout").await;
                    return;
                }
                if send_frame(&mut socket, idle, WsMessage::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
            () = state.shutdown.cancelled() => {
                close(&mut socket, idle, 1001, "the server is shutting down").await;
                return;
            }
        };
        let Some(Ok(frame)) = frame else {
            return;
        };
        last_heard = tokio::time::Instant::now();
        let text = match frame {
            WsMessage::Text(t) => t,
            WsMessage::Close(_) => return,
            // Pings are answered by axum; binary frames are not part of the protocol.
            WsMessage::Binary(_) => {
                let e = ApiError::invalid(None, "send JSON text frames: {\"content\": \"...\"}");
                if send(&mut socket, idle, "error", e.body()).await.is_err() {
                    return;
                }
                continue;
            }
            _ => continue,
        };
        // Every turn counts against the caller's rate limit, like a POST.
        let user = state
            .access
            .check_rate(&caller.rate_key)
            .and_then(|()| {
                serde_json::from_str::<WsRequest>(&text).map_err(|e| {
                    ApiError::invalid(
                        None,
                        format!("invalid frame: {e}; send {{\"content\": \"...\"}}"),
                    )
                })
            })
            .and_then(|r| user_message(&state, r.content));
        let user = match user {
            Ok(u) => u,
            Err(e) => {
                if send(&mut socket, idle, "error", error_event(&e))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let running = turns::spawn(
            &state,
            TurnRequest {
                owner: caller.owner.clone(),
                session: Some(id.clone()),
                messages: vec![user],
            },
            true,
        );
        let mut events = std::pin::pin!(turn_events(id.clone(), running));
        while let Some((name, data)) = events.next().await {
            // A closed or stalled socket ends the stream; the turn still
            // completes and is stored.
            if send(&mut socket, idle, name, data).await.is_err() {
                return;
            }
        }
        last_heard = tokio::time::Instant::now();
    }
}

/// An `error` event: the error body, plus `retry_after` (seconds) when
/// waiting helps (a rate limit).
fn error_event(e: &ApiError) -> Value {
    let mut body = e.body();
    if let (Some(secs), Some(obj)) = (e.retry_after_secs(), body.as_object_mut()) {
        obj.insert("retry_after".into(), secs.into());
    }
    body
}

/// Sends a frame, giving up on a client that does not read it within `limit`.
async fn send_frame(socket: &mut WebSocket, limit: Duration, frame: WsMessage) -> Result<(), ()> {
    match tokio::time::timeout(limit, socket.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn close(socket: &mut WebSocket, limit: Duration, code: u16, reason: &'static str) {
    let frame = axum::extract::ws::CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = send_frame(socket, limit, WsMessage::Close(Some(frame))).await;
}

/// Sends one event as a JSON text frame with a `type` field.
async fn send(socket: &mut WebSocket, limit: Duration, name: &str, data: Value) -> Result<(), ()> {
    let mut frame = json!({"type": name});
    if let (Some(f), Value::Object(d)) = (frame.as_object_mut(), data) {
        f.extend(d);
    }
    send_frame(socket, limit, WsMessage::Text(frame.to_string().into())).await
}
