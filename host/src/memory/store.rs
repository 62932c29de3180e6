//! The session store: sessions, messages, tool steps, turns and message
//! embeddings in one SQLite file (WAL). A turn is committed in one
//! transaction, so a crash at any point keeps every committed turn and never
//! half of one. The schema is versioned in code (`PRAGMA user_version`).
//!
//! SQLite calls block, so every method runs on tokio's blocking pool; one
//! connection serves them all (SQLite serialises writers anyway, and reads of
//! one session are small).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use crate::agent::{FinishReason, Step, StepError, TurnOutcome};
use crate::llm::{Message, Role, ToolCall};

/// Schema migrations, in order; `user_version` is how many have run.
/// Append only: a released step is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, turns, messages, tool steps, embeddings, metadata.
    // Message ids are AUTOINCREMENT so an id is never reused: the vector
    // index is keyed by them, and a stale vector must never match a new message.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        title TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_owner ON sessions(owner, updated_at);
    CREATE INDEX sessions_by_age ON sessions(updated_at);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        finish_reason TEXT NOT NULL,
        iterations INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX turns_by_session ON turns(session_id, id);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT,
        tool_calls TEXT,
        tool_call_id TEXT,
        tokens INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_session ON messages(session_id, id);
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        call_id TEXT NOT NULL,
        name TEXT NOT NULL,
        arguments TEXT NOT NULL,
        result TEXT,
        error_code TEXT,
        error_message TEXT,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX steps_by_turn ON steps(turn_id);
    CREATE TABLE embeddings (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: a session's stored size in bytes (sessions are bounded by it), and
    // reading history a turn at a time (pages).
    "CREATE INDEX messages_by_turn ON messages(turn_id, id);
    ALTER TABLE sessions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
    CREATE TEMP TABLE session_sizes AS
        SELECT session_id, SUM(n) AS n FROM (
            SELECT session_id, COALESCE(LENGTH(CAST(content AS BLOB)), 0)
                + COALESCE(LENGTH(CAST(tool_calls AS BLOB)), 0) AS n FROM messages
            UNION ALL
            SELECT session_id, LENGTH(CAST(arguments AS BLOB))
                + COALESCE(LENGTH(CAST(result AS BLOB)), 0) FROM steps
        ) GROUP BY session_id;
    CREATE INDEX temp.session_sizes_by_id ON session_sizes(session_id);
    UPDATE sessions SET bytes = COALESCE((SELECT n FROM session_sizes WHERE session_id = sessions.id), 0);
    DROP TABLE temp.session_sizes;",
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit: a committed turn survives a power cut.
    #[default]
    Full,
    /// fsync at checkpoints: a committed turn survives a process crash
    /// (`kill -9`), and the last ones may be lost on a power cut.
    Normal,
}

/// A session as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// Session id (a UUIDv7: sorts by creation time).
    pub id: String,
    /// Optional title given at creation.
    pub title: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last activity, Unix milliseconds.
    pub updated_at: i64,
    /// Messages stored (user, assistant, tool).
    pub message_count: i64,
    /// Prompt tokens the provider reported over all turns.
    pub prompt_tokens: i64,
    /// Completion tokens the provider reported over all turns.
    pub completion_tokens: i64,
    /// Bytes of stored history: message texts, tool calls, tool arguments
    /// and results (sessions are bounded by it).
    pub bytes: i64,
}

/// A stored message with its id.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredMessage {
    /// Message id (also the key of its vector).
    pub id: i64,
    /// The turn that added it.
    pub turn_id: i64,
    /// `user`, `assistant` or `tool`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Text; absent for an assistant message that only calls tools.
    pub content: Option<String>,
    /// Tool calls of an assistant message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Estimated tokens (used for the context window).
    pub tokens: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl StoredMessage {
    /// The message as the model sees it.
    pub fn to_message(&self) -> Message {
        Message {
            role: self.role,
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
            tool_call_id: self.tool_call_id.clone(),
        }
    }
}

/// A stored turn, with its tool steps.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredTurn {
    /// Turn id.
    pub id: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Why the turn ended.
    #[schema(value_type = String)]
    pub finish_reason: FinishReason,
    /// Model calls made.
    pub iterations: i64,
    /// Provider-reported prompt tokens.
    pub prompt_tokens: i64,
    /// Provider-reported completion tokens.
    pub completion_tokens: i64,
    /// Wall-clock time of the turn.
    pub duration_ms: f64,
    /// Tool calls, in order.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Step>,
}

/// A page of a session's history: whole turns with their messages.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    /// Oldest first.
    pub turns: Vec<StoredTurn>,
    /// The messages of those turns, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Whether older turns exist (page on with `before` = the first turn's id).
    pub has_more: bool,
}

/// Bytes a message adds to its session's size.
fn message_bytes(m: &Message, calls: Option<&String>) -> i64 {
    (m.content.as_ref().map_or(0, String::len) + calls.map_or(0, String::len)) as i64
}

/// The tool steps of a turn, in order, and the bytes of their stored
/// arguments and results (measured on the stored text, not re-serialized).
fn steps_of(c: &Connection, turn: i64) -> Result<(Vec<Step>, usize)> {
    let mut stmt = c.prepare_cached(
        "SELECT call_id, name, arguments, result, error_code, error_message, duration_ms
         FROM steps WHERE turn_id = ?1 ORDER BY id",
    )?;
    let mut bytes = 0;
    let steps = stmt
        .query_map(params![turn], |r| {
            let mut json = |i: usize| -> rusqlite::Result<Option<Value>> {
                Ok(r.get::<_, Option<String>>(i)?.map(|t| {
                    bytes += t.len();
                    serde_json::from_str(&t).unwrap_or(Value::String(t))
                }))
            };
            let error = match (
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ) {
                (Some(code), message) => Some(StepError {
                    code,
                    message: message.unwrap_or_default(),
                }),
                _ => None,
            };
            Ok(Step {
                id: r.get(0)?,
                name: r.get(1)?,
                arguments: json(2)?.unwrap_or(Value::Null),
                result: json(3)?,
                error,
                duration_ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((steps, bytes))
}

/// The ids a committed turn produced.
#[derive(Debug, Clone)]
pub struct CommittedTurn {
    /// The turn.
    pub turn_id: i64,
    /// Every message of the turn, in order, with its id.
    pub messages: Vec<(i64, Message)>,
}

/// The recent end of a session that fits a token budget.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Oldest first; starts at a user message so tool results never lose their call.
    pub messages: Vec<StoredMessage>,
    /// Messages older than the window (candidates for recall).
    pub older: usize,
}

/// The store.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

/// Tokens of a message, estimated (4 bytes a token plus framing). Providers
/// tokenise differently; this is for budgeting, not billing.
pub fn estimate_tokens(message: &Message) -> i64 {
    let text = message.content.as_deref().map_or(0, str::len)
        + message
            .tool_calls
            .iter()
            .map(|c| c.function.name.len() + c.function.arguments.len())
            .sum::<usize>();
    (text as i64 + 3) / 4 + 4
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn parse_role(s: &str) -> Role {
    match s {
        "system" => Role::System,
        "user" => Role::User,
        "tool" => Role::Tool,
        _ => Role::Assistant,
    }
}

const SESSION_COLUMNS: &str =
    "id, title, created_at, updated_at, message_count, prompt_tokens, completion_tokens, bytes";

fn session_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        id: row.get(0)?,
        title: row.get(1)?,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
        message_count: row.get(4)?,
        prompt_tokens: row.get(5)?,
        completion_tokens: row.get(6)?,
        bytes: row.get(7)?,
    })
}

const MESSAGE_COLUMNS: &str =
    "id, turn_id, role, content, tool_calls, tool_call_id, tokens, created_at";

fn message_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let calls: Option<String> = row.get(4)?;
    Ok(StoredMessage {
        id: row.get(0)?,
        turn_id: row.get(1)?,
        role: parse_role(&row.get::<_, String>(2)?),
        content: row.get(3)?,
        // Written by this module from `Vec<ToolCall>`; unreadable JSON would
        // mean a hand-edited file, and an empty list is the safe reading.
        tool_calls: calls
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
        tool_call_id: row.get(5)?,
        tokens: row.get(6)?,
        created_at: row.get(7)?,
    })
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the session store {}", path.display()))?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
        ))
        .with_context(|| format!("cannot configure the session store {}", path.display()))?;
        migrate(&mut conn)
            .with_context(|| format!("cannot migrate the session store {}", path.display()))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent
            // (transactions roll back on drop), so a poisoned lock is still usable.
            let mut guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .context("the session store task failed")?
    }

    /// Creates a session owned by `owner`.
    pub async fn create_session(&self, owner: &str, title: Option<String>) -> Result<SessionInfo> {
        let owner = owner.to_owned();
        self.with(move |c| {
            let id = uuid::Uuid::now_v7().to_string();
            let now = now_ms();
            c.execute(
                "INSERT INTO sessions (id, owner, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, owner, title, now],
            )?;
            Ok(SessionInfo {
                id,
                title,
                created_at: now,
                updated_at: now,
                message_count: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                bytes: 0,
            })
        })
        .await
    }

    /// The session `id` if `owner` owns it.
    pub async fn session(&self, owner: &str, id: &str) -> Result<Option<SessionInfo>> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.with(move |c| {
            Ok(c.query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND owner = ?2"),
                params![id, owner],
                session_row,
            )
            .optional()?)
        })
        .await
    }

    /// `owner`'s sessions, most recently active first; `before` (an
    /// `updated_at`) pages backwards.
    pub async fn sessions(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<SessionInfo>> {
        let owner = owner.to_owned();
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner = ?1 AND updated_at < ?2
                 ORDER BY updated_at DESC, id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![owner, before.unwrap_or(i64::MAX), limit],
                session_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// A page of `session`'s history: its newest turns older than `before`
    /// (a turn id), at most `limit` of them and about `max_bytes` of
    /// messages and steps (at least one turn, whatever its size).
    pub async fn history(
        &self,
        session: &str,
        before: Option<i64>,
        limit: u32,
        max_bytes: usize,
    ) -> Result<HistoryPage> {
        let session = session.to_owned();
        self.with(move |c| {
            let mut candidates = c
                .prepare_cached(
                    "SELECT id, created_at, finish_reason, iterations, prompt_tokens, completion_tokens, duration_ms
                     FROM turns WHERE session_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )?
                .query_map(params![session, before.unwrap_or(i64::MAX), limit + 1], |r| {
                    Ok(StoredTurn {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        // Written by `as_str`; an unknown text would mean a hand-edited file.
                        finish_reason: FinishReason::parse(&r.get::<_, String>(2)?)
                            .unwrap_or(FinishReason::Stop),
                        iterations: r.get(3)?,
                        prompt_tokens: r.get(4)?,
                        completion_tokens: r.get(5)?,
                        duration_ms: r.get(6)?,
                        steps: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut page = HistoryPage {
                has_more: candidates.len() > limit as usize,
                ..HistoryPage::default()
            };
            candidates.truncate(limit as usize);
            let mut bytes = 0usize;
            let mut pages_messages = Vec::new();
            for mut turn in candidates {
                let messages = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE turn_id = ?1 ORDER BY id"
                    ))?
                    .query_map(params![turn.id], message_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let (steps, step_bytes) = steps_of(c, turn.id)?;
                turn.steps = steps;
                let size = messages
                    .iter()
                    .map(|m| m.content.as_ref().map_or(0, String::len))
                    .sum::<usize>()
                    + step_bytes;
                if !page.turns.is_empty() && bytes + size > max_bytes {
                    page.has_more = true;
                    break;
                }
                bytes += size;
                page.turns.push(turn);
                pages_messages.push(messages);
            }
            page.turns.reverse();
            page.messages = pages_messages.into_iter().rev().flatten().collect();
            Ok(page)
        })
        .await
    }

    /// The most recent messages of `session` that fit in `budget` estimated
    /// tokens (at least the last turn's user message, whatever its size).
    pub async fn window(&self, session: &str, budget: i64) -> Result<Window> {
        let session = session.to_owned();
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY id DESC"
            ))?;
            let mut rows = stmt.query(params![session])?;
            let mut newest_first = Vec::new();
            let mut used = 0;
            while let Some(row) = rows.next()? {
                let m = message_row(row)?;
                if used + m.tokens > budget && !newest_first.is_empty() {
                    break;
                }
                used += m.tokens;
                newest_first.push(m);
            }
            let total: i64 = c.query_row(
                "SELECT count(*) FROM messages WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )?;
            // A window must open on a user message: a tool result without
            // the assistant call before it is rejected by providers.
            while newest_first
                .last()
                .is_some_and(|m: &StoredMessage| m.role != Role::User)
            {
                newest_first.pop();
            }
            newest_first.reverse();
            let older = total as usize - newest_first.len();
            Ok(Window {
                messages: newest_first,
                older,
            })
        })
        .await
    }

    /// Commits one turn: the user's message, the turn's messages and steps,
    /// and the session's counters, in one transaction.
    pub async fn commit_turn(
        &self,
        session: &str,
        user: Message,
        outcome: &TurnOutcome,
        duration_ms: f64,
    ) -> Result<CommittedTurn> {
        let session = session.to_owned();
        let messages: Vec<Message> = std::iter::once(user)
            .chain(outcome.messages.iter().cloned())
            .collect();
        let steps = outcome.steps.clone();
        let usage = outcome.usage;
        let finish = outcome.finish_reason;
        let iterations = outcome.iterations;
        self.with(move |c| {
            let tx = c.transaction()?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO turns (session_id, created_at, finish_reason, iterations, prompt_tokens, completion_tokens, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![session, now, finish.as_str(), iterations, usage.prompt_tokens as i64, usage.completion_tokens as i64, duration_ms],
            )?;
            let turn_id = tx.last_insert_rowid();
            let mut ids = Vec::with_capacity(messages.len());
            let mut bytes = 0i64;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (session_id, turn_id, role, content, tool_calls, tool_call_id, tokens, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for m in messages {
                    let calls = if m.tool_calls.is_empty() {
                        None
                    } else {
                        Some(serde_json::to_string(&m.tool_calls)?)
                    };
                    bytes += message_bytes(&m, calls.as_ref());
                    insert.execute(params![
                        session,
                        turn_id,
                        role_str(m.role),
                        m.content,
                        calls,
                        m.tool_call_id,
                        estimate_tokens(&m),
                        now
                    ])?;
                    ids.push((tx.last_insert_rowid(), m));
                }
                let mut insert = tx.prepare_cached(
                    "INSERT INTO steps (session_id, turn_id, call_id, name, arguments, result, error_code, error_message, duration_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for s in &steps {
                    let (arguments, result) =
                        (s.arguments.to_string(), s.result.as_ref().map(Value::to_string));
                    bytes += (arguments.len() + result.as_ref().map_or(0, String::len)) as i64;
                    insert.execute(params![
                        session,
                        turn_id,
                        s.id,
                        s.name,
                        arguments,
                        result,
                        s.error.as_ref().map(|e| &e.code),
                        s.error.as_ref().map(|e| &e.message),
                        s.duration_ms
                    ])?;
                }
            }
            let changed = tx.execute(
                "UPDATE sessions SET updated_at = ?2, message_count = message_count + ?3,
                     prompt_tokens = prompt_tokens + ?4, completion_tokens = completion_tokens + ?5,
                     bytes = bytes + ?6
                 WHERE id = ?1",
                params![session, now, ids.len() as i64, usage.prompt_tokens as i64, usage.completion_tokens as i64, bytes],
            )?;
            if changed == 0 {
                // Deleted while the turn ran: nothing is kept.
                bail!("session {session} was deleted during the turn");
            }
            tx.commit()?;
            Ok(CommittedTurn {
                turn_id,
                messages: ids,
            })
        })
        .await
    }

    /// Deletes `owner`'s session `id` with everything in it; returns the ids
    /// of its messages (to drop their vectors), or `None` if there was no such session.
    pub async fn delete_session(&self, owner: &str, id: &str) -> Result<Option<Vec<i64>>> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.with(move |c| {
            let tx = c.transaction()?;
            let ids = message_ids(&tx, &id)?;
            let n = tx.execute(
                "DELETE FROM sessions WHERE id = ?1 AND owner = ?2",
                params![id, owner],
            )?;
            tx.commit()?;
            Ok((n > 0).then_some(ids))
        })
        .await
    }

    /// Applies retention: deletes sessions idle longer than `max_idle_ms`
    /// and, beyond the newest `max_sessions`, the oldest ones. Returns the
    /// deleted sessions' message ids.
    pub async fn prune(
        &self,
        max_idle_ms: Option<i64>,
        max_sessions: Option<u64>,
    ) -> Result<(usize, Vec<i64>)> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut doomed: Vec<String> = Vec::new();
            if let Some(idle) = max_idle_ms {
                let mut stmt = tx.prepare("SELECT id FROM sessions WHERE updated_at < ?1")?;
                let rows = stmt.query_map(params![now_ms() - idle], |r| r.get(0))?;
                doomed.extend(rows.collect::<rusqlite::Result<Vec<String>>>()?);
            }
            if let Some(max) = max_sessions {
                let mut stmt = tx.prepare(
                    "SELECT id FROM sessions ORDER BY updated_at DESC, id DESC LIMIT -1 OFFSET ?1",
                )?;
                let rows = stmt.query_map(params![max as i64], |r| r.get(0))?;
                for id in rows {
                    let id: String = id?;
                    if !doomed.contains(&id) {
                        doomed.push(id);
                    }
                }
            }
            let mut ids = Vec::new();
            for id in &doomed {
                ids.extend(message_ids(&tx, id)?);
                tx.execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
            }
            tx.commit()?;
            Ok((doomed.len(), ids))
        })
        .await
    }

    /// Number of sessions stored.
    pub async fn session_count(&self) -> Result<i64> {
        self.with(|c| Ok(c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?))
            .await
    }

    /// Ids of the messages of `sessions` that have a vector and are older
    /// than `before_id` (the recent window's start): what recall may return.
    pub async fn recall_candidates(
        &self,
        sessions: Vec<String>,
        before_id: Option<i64>,
    ) -> Result<Vec<i64>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.id FROM messages m JOIN embeddings e ON e.message_id = m.id
                 WHERE m.session_id = ?1 AND m.id < ?2",
            )?;
            let mut ids = Vec::new();
            for s in &sessions {
                let rows =
                    stmt.query_map(params![s, before_id.unwrap_or(i64::MAX)], |r| r.get(0))?;
                ids.extend(rows.collect::<rusqlite::Result<Vec<i64>>>()?);
            }
            Ok(ids)
        })
        .await
    }

    /// Ids of `owner`'s sessions.
    pub async fn session_ids(&self, owner: &str) -> Result<Vec<String>> {
        let owner = owner.to_owned();
        self.with(move |c| {
            let mut stmt = c.prepare_cached("SELECT id FROM sessions WHERE owner = ?1")?;
            let rows = stmt.query_map(params![owner], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }

    /// The texts of messages `ids` (for the recall prompt), in id order.
    pub async fn texts(&self, ids: Vec<i64>) -> Result<Vec<StoredMessage>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
            ))?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(m) = stmt.query_row(params![id], message_row).optional()? {
                    out.push(m);
                }
            }
            out.sort_by_key(|m| m.id);
            Ok(out)
        })
        .await
    }

    /// Stores message vectors (little-endian f32), replacing any; returns
    /// the ids stored (a message deleted meanwhile is skipped).
    pub async fn put_embeddings(&self, items: Vec<(i64, Vec<f32>)>) -> Result<Vec<i64>> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut stored = Vec::with_capacity(items.len());
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO embeddings (message_id, vector) VALUES (?1, ?2)",
                )?;
                for (id, v) in &items {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    // A message deleted meanwhile fails the foreign key; skip it.
                    match stmt.execute(params![id, bytes]) {
                        Ok(_) => stored.push(*id),
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Up to `limit` stored vectors with ids greater than `after`, in id order.
    pub async fn embeddings_after(&self, after: i64, limit: u32) -> Result<Vec<(i64, Vec<f32>)>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT message_id, vector FROM embeddings WHERE message_id > ?1 ORDER BY message_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                let bytes: Vec<u8> = r.get(1)?;
                let v = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok((r.get(0)?, v))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Stored vectors with message ids up to `max_id`.
    pub async fn embedding_count_upto(&self, max_id: i64) -> Result<i64> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM embeddings WHERE message_id <= ?1",
                params![max_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// User and assistant messages with text and no vector yet (after a
    /// crash between commit and embedding, or a new embedder), oldest first.
    pub async fn unembedded(&self, limit: u32) -> Result<Vec<(i64, String)>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.id, m.content FROM messages m LEFT JOIN embeddings e ON e.message_id = m.id
                 WHERE e.message_id IS NULL AND m.role IN ('user', 'assistant')
                   AND m.content IS NOT NULL AND m.content != ''
                 ORDER BY m.id LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// A value of the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.with(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    /// Sets `key`; when `clear_embeddings`, drops every stored vector in the
    /// same transaction (a new embedder makes them meaningless).
    pub async fn set_meta(&self, key: &str, value: &str, clear_embeddings: bool) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with(move |c| {
            let tx = c.transaction()?;
            if clear_embeddings {
                tx.execute("DELETE FROM embeddings", [])?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Moves the WAL into the main file (on shutdown), so the next open is quick.
    pub async fn checkpoint(&self) -> Result<()> {
        self.with(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
        .await
    }
}

fn message_ids(tx: &Transaction<'_>, session: &str) -> Result<Vec<i64>> {
    let mut stmt = tx.prepare_cached("SELECT id FROM messages WHERE session_id = ?1")?;
    let rows = stmt.query_map(params![session], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        bail!(
            "the store has schema version {version}, newer than this build knows ({}); run a newer Launch or use another data directory",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "session store migrated");
    }
    Ok(())
}
