//! Semantic recall: message embeddings in a faiss index keyed by message id.
//!
//! SQLite is the source of truth: every vector is stored there with its
//! message, in the same store as the messages. The faiss index is a cache of
//! those vectors, saved to the data directory with the embedder's name, its
//! dimension and the highest message id it holds. At startup the index is
//! loaded, checked against the store and caught up, or rebuilt from the
//! store's vectors when it is missing, corrupt, stale or made by another
//! embedder (then the messages are embedded again, in the background).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::embed::MiniLm;
use super::store::Store;
use super::vector::VectorIndex;
use crate::llm::LlmClient;

/// Turns text into unit vectors.
#[derive(Clone)]
pub enum Embedder {
    /// all-MiniLM-L6-v2 in-process.
    Local(Arc<MiniLm>),
    /// An OpenAI-compatible `/v1/embeddings`.
    Remote {
        /// The provider client (its `embedding_model` is used).
        llm: LlmClient,
        /// Vector length, learnt from a probe at startup.
        dimension: usize,
    },
}

impl Embedder {
    /// The local model in `dir`.
    pub fn local(dir: &Path) -> Result<Self> {
        Ok(Self::Local(Arc::new(MiniLm::load(dir)?)))
    }

    /// The provider's embeddings, probed once for the dimension.
    pub async fn remote(llm: LlmClient) -> Result<Self> {
        if llm.config().embedding_model.is_none() {
            bail!(
                "embedder = \"remote\" needs an embedding model: set LAUNCH_LLM_EMBEDDING_MODEL or embedding_model in the provider's table"
            );
        }
        let probe = llm
            .embed(&["dimension probe".to_owned()])
            .await
            .context("the embeddings provider did not answer a probe")?;
        let dimension = probe.first().map_or(0, Vec::len);
        if dimension == 0 {
            bail!("the embeddings provider returned an empty vector");
        }
        Ok(Self::Remote { llm, dimension })
    }

    /// A stable name: vectors of different embedders never mix.
    pub fn id(&self) -> String {
        match self {
            Self::Local(m) => format!("local:{}", m.id()),
            Self::Remote { llm, .. } => format!(
                "remote:{}#{}",
                llm.config().base_url,
                llm.config().embedding_model.as_deref().unwrap_or("")
            ),
        }
    }

    /// Vector length.
    pub fn dimension(&self) -> usize {
        match self {
            Self::Local(m) => m.dimension(),
            Self::Remote { dimension, .. } => *dimension,
        }
    }

    /// One unit vector per text.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = match self {
            Self::Local(model) => {
                let model = Arc::clone(model);
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    model.embed(&refs)
                })
                .await
                .context("the embedding task failed")??
            }
            Self::Remote { llm, dimension } => {
                let mut vectors = llm.embed(&texts).await?;
                if vectors.iter().any(|v| v.len() != *dimension) {
                    bail!("the embeddings provider changed its vector length");
                }
                // Providers do not all normalise; inner product needs unit vectors.
                for v in &mut vectors {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    if norm > 0.0 {
                        v.iter_mut().for_each(|x| *x /= norm);
                    }
                }
                vectors
            }
        };
        Ok(vectors)
    }
}

/// What is saved beside the index file.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct IndexMeta {
    embedder: String,
    dimension: usize,
    /// Highest message id in the index when it was saved.
    max_id: i64,
    /// Vectors in the index when it was saved.
    count: usize,
}

/// The index, its files and the embedder.
pub struct Semantic {
    embedder: Embedder,
    index: Arc<VectorIndex>,
    dir: PathBuf,
    max_id: AtomicI64,
    dirty: AtomicBool,
}

/// Vectors are read from and written to the store in batches of this size.
const BATCH: u32 = 256;

impl Semantic {
    /// Opens the index in `dir` for `embedder`, rebuilding it from `store`
    /// when needed, and catches it up with the store.
    pub async fn open(store: &Store, dir: &Path, embedder: Embedder) -> Result<Arc<Self>> {
        let id = embedder.id();
        let dimension = embedder.dimension();
        let stamp = format!("{id} {dimension}");
        if store.meta("embedder").await?.as_deref() != Some(stamp.as_str()) {
            // First start, or another embedder: stored vectors are meaningless.
            store.set_meta("embedder", &stamp, true).await?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let started = Instant::now();
        let loaded = Self::load(store, dir, &id, dimension).await;
        let (index, max_id) = match loaded {
            Ok(found) => found,
            Err(reason) => {
                tracing::info!("rebuilding the vector index from the store: {reason:#}");
                (VectorIndex::create(dimension)?, 0)
            }
        };
        let semantic = Arc::new(Self {
            embedder,
            index: Arc::new(index),
            dir: dir.to_owned(),
            max_id: AtomicI64::new(max_id),
            dirty: AtomicBool::new(false),
        });
        // Catch up with vectors stored after the index was saved (or all of
        // them, for a rebuild).
        let mut after = max_id;
        loop {
            let batch = store.embeddings_after(after, BATCH).await?;
            let Some(last) = batch.last().map(|(id, _)| *id) else {
                break;
            };
            semantic.add(batch).await?;
            after = last;
        }
        tracing::info!(
            embedder = %id,
            dimension,
            vectors = semantic.index.len(),
            ms = started.elapsed().as_millis() as u64,
            "vector index ready"
        );
        Ok(semantic)
    }

    /// The saved index, if it is whole, made by this embedder, and agrees
    /// with the store.
    async fn load(
        store: &Store,
        dir: &Path,
        embedder: &str,
        dimension: usize,
    ) -> Result<(VectorIndex, i64)> {
        let meta_path = dir.join("index.json");
        let text = match std::fs::read_to_string(&meta_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no saved index"),
            Err(e) => return Err(e).context("cannot read index.json"),
        };
        let meta: IndexMeta = serde_json::from_str(&text).context("index.json is corrupt")?;
        if meta.embedder != embedder || meta.dimension != dimension {
            bail!(
                "the saved index was made by {} ({} dimensions)",
                meta.embedder,
                meta.dimension
            );
        }
        let path = dir.join("index.faiss");
        let index = tokio::task::spawn_blocking(move || VectorIndex::load(&path))
            .await
            .context("the index loading task failed")?
            .context("index.faiss is unreadable")?;
        let stored = store.embedding_count_upto(meta.max_id).await?;
        if index.len() != meta.count || index.len() as i64 != stored {
            bail!(
                "the saved index holds {} vectors, the store {stored} (a crash between saves, or deletions since)",
                index.len()
            );
        }
        Ok((index, meta.max_id))
    }

    async fn add(&self, items: Vec<(i64, Vec<f32>)>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let max = items.iter().map(|(id, _)| *id).max().unwrap_or(0);
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || {
            let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
            let flat: Vec<f32> = items.into_iter().flat_map(|(_, v)| v).collect();
            index.add(&ids, &flat)
        })
        .await
        .context("the index task failed")??;
        self.max_id.fetch_max(max, Ordering::SeqCst);
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The embedder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Vectors in the index.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Embeds `texts` and stores them under their message ids; `known`
    /// vectors (e.g. the user message's, computed for recall) are reused.
    pub async fn index_messages(
        &self,
        store: &Store,
        texts: Vec<(i64, String)>,
        known: Vec<(i64, Vec<f32>)>,
    ) -> Result<()> {
        let (ids, texts): (Vec<i64>, Vec<String>) = texts.into_iter().unzip();
        let vectors = self.embedder.embed(texts).await?;
        let mut items: Vec<(i64, Vec<f32>)> = ids.into_iter().zip(vectors).collect();
        items.extend(known);
        // Only what was stored goes into the index: a message deleted
        // meanwhile must not come back as a vector.
        let stored = store.put_embeddings(items.clone()).await?;
        items.retain(|(id, _)| stored.contains(id));
        self.add(items).await
    }

    /// The `k` best matches for `query` among `allowed` ids.
    pub async fn search(
        &self,
        query: Vec<f32>,
        k: usize,
        allowed: Vec<i64>,
    ) -> Result<Vec<(i64, f32)>> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.search(&query, k, &allowed))
            .await
            .context("the index task failed")?
    }

    /// Drops the vectors of deleted messages.
    pub async fn remove(&self, ids: Vec<i64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.remove(&ids))
            .await
            .context("the index task failed")??;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Embeds messages that have no vector yet (after a crash between a
    /// commit and its embedding, or for a new embedder), oldest first.
    pub async fn backfill(&self, store: &Store) -> Result<usize> {
        let mut done = 0;
        loop {
            let batch = store.unembedded(64).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            done += batch.len();
            self.index_messages(store, batch, Vec::new()).await?;
        }
    }

    /// Saves the index if it changed: the index file first, then its
    /// metadata, each written atomically, so a crash between the two leaves
    /// a pair that fails the count check and is rebuilt.
    pub async fn save(&self) -> Result<()> {
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let index = Arc::clone(&self.index);
        let dir = self.dir.clone();
        let meta = IndexMeta {
            embedder: self.embedder.id(),
            dimension: self.embedder.dimension(),
            max_id: self.max_id.load(Ordering::SeqCst),
            count: index.len(),
        };
        let saved = tokio::task::spawn_blocking(move || -> Result<()> {
            index.save(&dir.join("index.faiss"))?;
            let tmp = dir.join("index.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&meta)?)?;
            std::fs::rename(&tmp, dir.join("index.json"))?;
            Ok(())
        })
        .await
        .context("the index saving task failed")?;
        if saved.is_err() {
            self.dirty.store(true, Ordering::SeqCst);
        }
        saved
    }
}
