//! Conversation memory: durable sessions in SQLite ([`store`]) and, when an
//! embedder is available, semantic recall of earlier messages through a
//! faiss index ([`semantic`]). The agent's context for a session turn is the
//! recent window that fits a token budget plus the most similar older
//! messages, marked as recalled.

pub mod store;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::agent::TurnOutcome;
use crate::config::EmbedderChoice;
use crate::llm::{LlmClient, Message};
pub use store::{Durability, SessionInfo, Store, StoredMessage, StoredTurn};

/// How memory behaves.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Estimated tokens of stored history sent with each turn (the recent window).
    pub context_tokens: i64,
    /// Older messages recalled per turn.
    pub recall_k: usize,
    /// Lowest cosine similarity a recalled message must have.
    pub recall_min_score: f32,
    /// Recall from all of the owner's sessions, not only the current one.
    pub cross_session_recall: bool,
    /// Sessions idle longer than this are deleted.
    pub session_ttl: Option<Duration>,
    /// Beyond this many sessions, the least recently active are deleted.
    pub max_sessions: Option<u64>,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            context_tokens: 6000,
            recall_k: 4,
            recall_min_score: 0.3,
            cross_session_recall: false,
            session_ttl: None,
            max_sessions: None,
            durability: Durability::Full,
        }
    }
}

/// What a session turn sends to the agent.
#[derive(Debug, Clone)]
pub struct Context {
    /// The recent window, the recall note (if any) and the new user message.
    pub history: Vec<Message>,
    /// Messages recalled from beyond the window.
    pub recalled: Vec<StoredMessage>,
    /// Messages left out of the window.
    pub trimmed: usize,
}

/// Sessions plus optional semantic recall.
pub struct Memory {
    store: Store,
    config: MemoryConfig,
    /// Why there is no semantic recall, when there is none.
    no_recall: Option<String>,
}

/// The store's file name in the data directory.
pub const STORE_FILE: &str = "launch.db";

impl Memory {
    /// Opens the store in `data_dir` and the embedder `choice`.
    pub async fn open(
        data_dir: &Path,
        config: MemoryConfig,
        choice: EmbedderChoice,
        _llm: LlmClient,
    ) -> Result<Self> {
        let store = Store::open(&data_dir.join(STORE_FILE), config.durability)?;
        let reason = match choice {
            EmbedderChoice::None => "embedder = \"none\"".to_owned(),
            _ => "semantic recall is not built yet".to_owned(),
        };
        tracing::warn!("memory without semantic recall: {reason}");
        let memory = Self {
            store,
            config,
            no_recall: Some(reason),
        };
        // Retention applies from the start, not only at the first periodic run.
        memory.prune().await?;
        Ok(memory)
    }

    /// The session store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// The context for a new `user` message in `session`.
    pub async fn context(&self, session: &str, user: &Message) -> Result<Context> {
        let budget = self.config.context_tokens - store::estimate_tokens(user);
        let window = self.store.window(session, budget.max(0)).await?;
        if window.older > 0 {
            tracing::info!(
                session,
                kept = window.messages.len(),
                trimmed = window.older,
                budget = self.config.context_tokens,
                "context trimmed to the recent window"
            );
        }
        let mut history: Vec<Message> = window.messages.iter().map(|m| m.to_message()).collect();
        history.push(user.clone());
        Ok(Context {
            history,
            recalled: Vec::new(),
            trimmed: window.older,
        })
    }

    /// Stores a finished turn.
    pub async fn record(
        &self,
        session: &str,
        user: Message,
        outcome: &TurnOutcome,
        duration: Duration,
    ) -> Result<()> {
        self.store
            .commit_turn(session, user, outcome, duration.as_secs_f64() * 1000.0)
            .await?;
        Ok(())
    }

    /// Deletes a session and its vectors; false if `owner` has no such session.
    pub async fn delete(&self, owner: &str, session: &str) -> Result<bool> {
        Ok(self.store.delete_session(owner, session).await?.is_some())
    }

    /// Applies the retention settings once; returns how many sessions went.
    pub async fn prune(&self) -> Result<usize> {
        if self.config.session_ttl.is_none() && self.config.max_sessions.is_none() {
            return Ok(0);
        }
        let idle = self.config.session_ttl.map(|d| d.as_millis() as i64);
        let (n, _ids) = self.store.prune(idle, self.config.max_sessions).await?;
        if n > 0 {
            tracing::info!(sessions = n, "retention deleted sessions");
        }
        Ok(n)
    }

    /// What memory can do, for `/readyz`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "semantic_recall": self.no_recall.is_none(),
            "reason": self.no_recall,
        })
    }

    /// Periodic upkeep: retention and the stored-sessions gauge.
    pub async fn maintain(&self) -> Result<()> {
        self.prune().await?;
        let sessions = self.store.session_count().await?;
        metrics::gauge!("launch_sessions_stored").set(sessions as f64);
        Ok(())
    }

    /// Makes everything durable and compact (at shutdown).
    pub async fn flush(&self) -> Result<()> {
        self.store.checkpoint().await
    }
}
