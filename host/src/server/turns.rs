//! Running agent turns for the API: the concurrency limit, one turn at a
//! time per session, context from memory, persistence, and metrics. Chat
//! completions, the sessions API and the WebSocket all come through here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::error::ApiError;
use crate::agent::{Event, TurnOutcome};
use crate::llm::{Message, Role};
use crate::memory::{SessionInfo, StoredMessage};

/// What to run.
pub struct TurnRequest {
    /// Whose sessions these are.
    pub owner: String,
    /// With a session, history comes from the store and `messages` holds
    /// only optional leading system messages and the new user message.
    /// Without, `messages` is the whole conversation.
    pub session: Option<String>,
    /// See `session`.
    pub messages: Vec<Message>,
}

/// A finished turn.
pub struct TurnResult {
    /// What the agent did.
    pub outcome: TurnOutcome,
    /// Messages recalled from earlier in the session(s).
    pub recalled: Vec<StoredMessage>,
    /// The stored turn's id (session turns only).
    pub turn_id: Option<i64>,
}

/// Bounds on concurrent turns.
pub struct TurnLimits {
    slots: Arc<Semaphore>,
    max: usize,
    queue_timeout: Duration,
    sessions: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl TurnLimits {
    /// At most `max` turns at once; a turn waits `queue_timeout` for a slot.
    pub fn new(max: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.max(1))),
            max: max.max(1),
            queue_timeout,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.queue_timeout, Arc::clone(&self.slots).acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::busy(format!(
                "all {} agent turn slots stayed busy for {} s; retry later or raise [server] max_concurrent_turns",
                self.max,
                self.queue_timeout.as_secs()
            ))
            .retry_after(1)),
        }
    }

    /// The session's lock: turns of one session run one after another, so
    /// each sees the last one's messages.
    async fn session(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Entries of sessions with no turn waiting are dead; drop them
            // so idle sessions keep nothing in memory.
            map.retain(|_, weak| weak.strong_count() > 0);
            match map.get(id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Sessions with a turn running or waiting.
    fn active_sessions(&self) -> usize {
        let map = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

/// Decrements the active-turn gauge however the turn ends (drop included).
struct ActiveTurn;

impl ActiveTurn {
    fn start() -> Self {
        metrics::gauge!("launch_turns_active").increment(1.0);
        Self
    }
}

impl Drop for ActiveTurn {
    fn drop(&mut self) {
        metrics::gauge!("launch_turns_active").decrement(1.0);
    }
}

/// Runs one turn. With a session: waits for the session's previous turn,
/// builds the context from memory, and commits the turn before returning.
pub async fn run(
    state: &AppState,
    request: TurnRequest,
    events: Option<&UnboundedSender<Event>>,
) -> Result<TurnResult, ApiError> {
    let limits = &state.turns;
    let _session_lock = match &request.session {
        Some(id) => {
            // Checked under the session's lock, so the turn before counts.
            let lock = limits.session(id).await;
            let session = state
                .memory
                .store()
                .session(&request.owner, id)
                .await?
                .ok_or_else(|| no_such_session(id))?;
            check_room(&state.limits, &session)?;
            Some(lock)
        }
        None => None,
    };
    let _slot = limits.slot().await?;
    let _active = ActiveTurn::start();
    metrics::gauge!("launch_sessions_active").set(limits.active_sessions() as f64);
    let started = Instant::now();
    let result = match &request.session {
        None => state
            .agent
            .run(&request.messages, events)
            .await
            .map(|outcome| TurnResult {
                outcome,
                recalled: Vec::new(),
                turn_id: None,
            })
            .map_err(ApiError::from),
        Some(id) => {
            session_turn(state, &request.owner, id, request.messages, events, started).await
        }
    };
    let label = match &result {
        Ok(r) => r.outcome.finish_reason.as_str(),
        Err(_) => "error",
    };
    metrics::counter!("launch_turns_total", "finish_reason" => label).increment(1);
    result
}

async fn session_turn(
    state: &AppState,
    owner: &str,
    id: &str,
    mut messages: Vec<Message>,
    events: Option<&UnboundedSender<Event>>,
    started: Instant,
) -> Result<TurnResult, ApiError> {
    let user = match messages.pop() {
        Some(m) if m.role == Role::User && messages.iter().all(|m| m.role == Role::System) => m,
        _ => {
            return Err(ApiError::invalid(
                Some("messages"),
                "with a session, send only the new user message (optionally after system messages); the session holds the history",
            ));
        }
    };
    let context = state.memory.context(owner, id, &user).await?;
    // The request's own system messages lead, then the session's history.
    messages.extend(context.history);
    let outcome = state.agent.run(&messages, events).await?;
    let turn_id = state
        .memory
        .record(id, user, &outcome, started.elapsed(), context.query)
        .await?;
    Ok(TurnResult {
        outcome,
        recalled: context.recalled,
        turn_id: Some(turn_id),
    })
}

/// Refuses a turn in a session that has reached its size bound (checked
/// before the turn, so the last turn may take it a little past the bound).
fn check_room(limits: &super::ServerConfig, session: &SessionInfo) -> Result<(), ApiError> {
    let full = if session.message_count >= limits.max_session_messages as i64 {
        Some(format!(
            "{} messages, the most a session holds ([server] max_session_messages = {})",
            session.message_count, limits.max_session_messages
        ))
    } else if session.bytes >= limits.max_session_bytes as i64 {
        Some(format!(
            "{} bytes of history, the most a session holds ([server] max_session_bytes = {})",
            session.bytes, limits.max_session_bytes
        ))
    } else {
        None
    };
    match full {
        Some(what) => Err(ApiError::conflict(
            "session_full",
            format!(
                "session {:?} is full: it has {what}; start a new session (POST /v1/sessions), or delete this one",
                session.id
            ),
        )),
        None => Ok(()),
    }
}

/// The 404 for a session that does not exist (or belongs to another key).
pub fn no_such_session(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no session {id:?}; create one with POST /v1/sessions (sessions are visible only to the API key that created them)"
    ))
}

/// A turn running in its own task, reporting as it goes.
pub struct RunningTurn {
    /// Deltas and steps as they happen (the agent's `Done` included).
    pub events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    /// The result, after the turn is committed.
    pub result: tokio::sync::oneshot::Receiver<Result<TurnResult, ApiError>>,
    /// The task: aborting it cancels the turn.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts `request` in a task tracked for graceful shutdown; with
/// `stream`, the model's answer is streamed and every step reported on
/// `events`. Session turns are left to finish and be stored even when the
/// client goes away; callers abort stateless ones, whose result nobody could
/// fetch later.
pub fn spawn(state: &AppState, request: TurnRequest, stream: bool) -> RunningTurn {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (done, result) = tokio::sync::oneshot::channel();
    let state = state.clone();
    let task = state.tasks.clone().spawn(async move {
        let outcome = run(&state, request, stream.then_some(&tx)).await;
        drop(tx);
        let _ = done.send(outcome);
    });
    RunningTurn {
        events,
        result,
        task,
    }
}
