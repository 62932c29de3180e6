//! Conversation memory: durable sessions in SQLite ([`store`]) and, when an
//! embedder is available, semantic recall of earlier messages through a
//! faiss index ([`semantic`]). The agent's context for a session turn is the
//! recent window that fits a token budget plus the most similar older
//! messages, marked as recalled.

pub mod embed;
mod semantic;
pub mod store;
pub mod vector;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::agent::TurnOutcome;
use crate::config::EmbedderChoice;
use crate::llm::{LlmClient, Message, Role};
pub use semantic::{Embedder, Semantic};
pub use store::{Durability, HistoryPage, SessionInfo, Store, StoredMessage, StoredTurn};

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
    /// The user message's vector, when semantic memory is on.
    pub query: Option<Vec<f32>>,
}

/// Sessions plus optional semantic recall.
pub struct Memory {
    store: Store,
    config: MemoryConfig,
    semantic: Option<Arc<Semantic>>,
    /// Embeddings of committed turns, running after the answer went out;
    /// awaited at shutdown before the index is saved.
    embedding: tokio_util::task::TaskTracker,
    /// Why there is no semantic recall, when there is none.
    no_recall: Option<String>,
}

/// The store's file name in the data directory.
pub const STORE_FILE: &str = "launch.db";
/// The vector index's folder in the data directory.
pub const VECTORS_DIR: &str = "vectors";

/// The embedder for `choice`, or why there is none. An explicit choice
/// that cannot work is an error; `auto` falls back and says why.
async fn embedder(choice: EmbedderChoice, llm: LlmClient) -> Result<Result<Embedder, String>> {
    let remote_configured = llm.config().embedding_model.is_some();
    Ok(match choice {
        EmbedderChoice::None => Err("embedder = \"none\"".to_owned()),
        EmbedderChoice::Local(dir) => Ok(Embedder::local(&dir)?),
        EmbedderChoice::Remote => match Embedder::remote(llm).await {
            Ok(e) => Ok(e),
            Err(e) if remote_configured => Err(format!("{e:#}")),
            Err(e) => return Err(e),
        },
        EmbedderChoice::Auto(dir) => {
            if dir.join("model.safetensors").is_file() {
                Ok(Embedder::local(&dir)?)
            } else if remote_configured {
                Embedder::remote(llm).await.map_err(|e| format!("{e:#}"))
            } else {
                Err(format!(
                    "no local embedding model in {} (run `make model`, or set LAUNCH_EMBEDDING_MODEL_DIR) and no remote embedding model (LAUNCH_LLM_EMBEDDING_MODEL)",
                    dir.display()
                ))
            }
        }
    })
}

impl Memory {
    /// Opens the store and vector index in `data_dir` with the embedder
    /// `choice`, applies retention, and starts embedding any messages that
    /// have no vector yet.
    pub async fn open(
        data_dir: &Path,
        config: MemoryConfig,
        choice: EmbedderChoice,
        llm: LlmClient,
    ) -> Result<Self> {
        let store = Store::open(&data_dir.join(STORE_FILE), config.durability)?;
        let (semantic, no_recall) = match embedder(choice, llm).await? {
            Ok(embedder) => {
                let semantic =
                    Semantic::open(&store, &data_dir.join(VECTORS_DIR), embedder).await?;
                (Some(semantic), None)
            }
            Err(reason) => {
                tracing::warn!("memory without semantic recall: {reason}");
                (None, Some(reason))
            }
        };
        let memory = Self {
            store,
            config,
            semantic,
            embedding: tokio_util::task::TaskTracker::new(),
            no_recall,
        };
        // Retention applies from the start, not only at the first periodic run.
        memory.prune().await?;
        if let Some(semantic) = &memory.semantic {
            let (semantic, store) = (Arc::clone(semantic), memory.store.clone());
            tokio::spawn(async move {
                match semantic.backfill(&store).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(messages = n, "embedded messages that had no vector"),
                    Err(e) => tracing::warn!("embedding stored messages failed: {e:#}"),
                }
            });
        }
        Ok(memory)
    }

    /// The session store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The context for a new `user` message in `owner`'s `session`.
    pub async fn context(&self, owner: &str, session: &str, user: &Message) -> Result<Context> {
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
        let (recalled, query) = self.recall(owner, session, user, &window).await;
        if !recalled.is_empty() {
            history.push(Message::system(recall_note(&recalled)));
        }
        history.push(user.clone());
        Ok(Context {
            history,
            recalled,
            query,
        })
    }

    /// Earlier messages like `user`, from beyond the recent window; and the
    /// query vector, to store with the message. Recall is best effort: a
    /// failure is logged and the turn goes on without it.
    async fn recall(
        &self,
        owner: &str,
        session: &str,
        user: &Message,
        window: &store::Window,
    ) -> (Vec<StoredMessage>, Option<Vec<f32>>) {
        let Some(semantic) = &self.semantic else {
            return (Vec::new(), None);
        };
        let text = user.content.clone().unwrap_or_default();
        let found = async {
            let query = semantic
                .embedder()
                .embed(vec![text])
                .await?
                .pop()
                .unwrap_or_default();
            if self.config.recall_k == 0 {
                return Ok((Vec::new(), query));
            }
            let before = window.messages.first().map(|m| m.id);
            let mut allowed = self
                .store
                .recall_candidates(vec![session.to_owned()], before)
                .await?;
            if self.config.cross_session_recall {
                let others: Vec<String> = self
                    .store
                    .session_ids(owner)
                    .await?
                    .into_iter()
                    .filter(|s| s != session)
                    .collect();
                allowed.extend(self.store.recall_candidates(others, None).await?);
            }
            let hits = semantic
                .search(query.clone(), self.config.recall_k, allowed)
                .await?;
            let ids: Vec<i64> = hits
                .iter()
                .filter(|(_, score)| *score >= self.config.recall_min_score)
                .map(|(id, _)| *id)
                .collect();
            anyhow::Ok((self.store.texts(ids).await?, query))
        };
        match found.await {
            Ok((recalled, query)) => {
                if !recalled.is_empty() {
                    tracing::info!(
                        session,
                        recalled = recalled.len(),
                        "recalled earlier messages"
                    );
                }
                (recalled, Some(query))
            }
            Err(e) => {
                tracing::warn!(
                    session,
                    "semantic recall failed; answering without it: {e:#}"
                );
                (Vec::new(), None)
            }
        }
    }

    /// Stores a finished turn (returning its id), then embeds its text messages in the
    /// background, so the answer does not wait for them (a long answer takes
    /// the local model a third of a second). The turn is durable once
    /// committed; an embedding lost to a crash or a failure is made at the
    /// next start.
    pub async fn record(
        &self,
        session: &str,
        user: Message,
        outcome: &TurnOutcome,
        duration: Duration,
        query: Option<Vec<f32>>,
    ) -> Result<i64> {
        let committed = self
            .store
            .commit_turn(session, user, outcome, duration.as_secs_f64() * 1000.0)
            .await?;
        let turn_id = committed.turn_id;
        let Some(semantic) = &self.semantic else {
            return Ok(turn_id);
        };
        let mut known = Vec::new();
        let mut texts = Vec::new();
        for (i, (id, m)) in committed.messages.into_iter().enumerate() {
            let Some(text) = m.content.filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            match (i, m.role, &query) {
                (0, _, Some(q)) => known.push((id, q.clone())),
                (_, Role::User | Role::Assistant, _) => texts.push((id, text)),
                _ => {}
            }
        }
        let (semantic, store, session) =
            (Arc::clone(semantic), self.store.clone(), session.to_owned());
        self.embedding.spawn(async move {
            if let Err(e) = semantic.index_messages(&store, texts, known).await {
                tracing::warn!(
                    session,
                    "embedding the turn failed (retried at next start): {e:#}"
                );
            }
        });
        Ok(turn_id)
    }

    /// Deletes a session and its vectors; false if `owner` has no such session.
    pub async fn delete(&self, owner: &str, session: &str) -> Result<bool> {
        let Some(ids) = self.store.delete_session(owner, session).await? else {
            return Ok(false);
        };
        self.forget(ids).await?;
        Ok(true)
    }

    async fn forget(&self, ids: Vec<i64>) -> Result<()> {
        match &self.semantic {
            Some(semantic) => semantic.remove(ids).await,
            None => Ok(()),
        }
    }

    /// Applies the retention settings once; returns how many sessions went.
    pub async fn prune(&self) -> Result<usize> {
        if self.config.session_ttl.is_none() && self.config.max_sessions.is_none() {
            return Ok(0);
        }
        let idle = self.config.session_ttl.map(|d| d.as_millis() as i64);
        let (n, ids) = self.store.prune(idle, self.config.max_sessions).await?;
        if n > 0 {
            tracing::info!(sessions = n, "retention deleted sessions");
            self.forget(ids).await?;
        }
        Ok(n)
    }

    /// What memory can do, for `/readyz`.
    pub fn status(&self) -> serde_json::Value {
        match &self.semantic {
            Some(s) => serde_json::json!({
                "semantic_recall": true,
                "embedder": s.embedder().id(),
                "dimension": s.embedder().dimension(),
                "vectors": s.len(),
                "cross_session": self.config.cross_session_recall,
            }),
            None => serde_json::json!({
                "semantic_recall": false,
                "reason": self.no_recall,
            }),
        }
    }

    /// Periodic upkeep: retention, the stored-sessions gauge, index save.
    pub async fn maintain(&self) -> Result<()> {
        self.prune().await?;
        let sessions = self.store.session_count().await?;
        metrics::gauge!("launch_sessions_stored").set(sessions as f64);
        if let Some(semantic) = &self.semantic {
            semantic.save().await?;
        }
        Ok(())
    }

    /// Makes everything durable and compact (at shutdown): finishes the
    /// pending embeddings, saves the index, checkpoints the store.
    pub async fn flush(&self) -> Result<()> {
        self.embedding.close();
        self.embedding.wait().await;
        if let Some(semantic) = &self.semantic {
            semantic.save().await?;
        }
        self.store.checkpoint().await
    }
}

/// The system note that carries recalled messages into the prompt.
fn recall_note(recalled: &[StoredMessage]) -> String {
    let mut note = String::from(
        "Recalled memory: earlier messages that may be relevant to the next message (older than the conversation shown; use them only if they help).",
    );
    for m in recalled {
        let who = match m.role {
            Role::User => "user",
            _ => "assistant",
        };
        let text = m.content.as_deref().unwrap_or_default();
        note.push_str(&format!("\n- [{who}] {text}"));
    }
    note
}
