//! Exact inner-product vector index (faiss `IDMap` over `IndexFlatIP`) keyed by i64 message ids.
//!
//! Why flat: with unit vectors the inner product is the cosine, and a flat scan
//! is exact, needs no training, supports removal, and at the sizes one agent
//! server holds (1e4-1e5 messages of 384 floats) a session-filtered query takes
//! well under a millisecond (see `benches/memory.rs`). HNSW would trade exactness
//! for speed we do not need, and its recall drops under restrictive filters.
//!
//! Filtering: the allowed message ids are turned into a bitmap over storage
//! rows and passed to faiss as an `IDSelectorBitmap`; the search runs on the
//! flat sub-index and row numbers are mapped back to ids here. Searching through
//! `IndexIDMap` itself would be simpler but its label-translation loop is an
//! OpenMP `parallel for`: on 2 busy cores every query then waits for a second
//! OpenMP thread to be scheduled (measured 6-8 ms instead of 0.06 ms at 10k
//! vectors).
//!
//! Threads: with that detour, a single-query search never starts an OpenMP team
//! (`num_threads(min(nq, max_threads))` with nq = 1) and never reaches BLAS (used
//! from 20 queries at once), so this module needs no thread setting. Still,
//! start the host with `OMP_NUM_THREADS=1` (this also stops OpenBLAS from
//! spawning its idle pool thread at load): libgomp and OpenBLAS read it once at
//! load, so setting it from Rust after start-up does nothing, and
//! `omp_set_num_threads` only affects the calling thread, not tokio's other
//! blocking threads.
//!
//! On-disk format: the faiss index file followed by a 48-byte footer
//! (payload length u64 LE, SHA-256 of the payload, magic `LMVIDX01`). The footer
//! is verified before faiss parses anything, so a truncated or corrupted file is
//! rejected with an error instead of reaching faiss' reader, where a corrupted
//! length field could make it allocate gigabytes before failing.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::{Context, Result, anyhow, bail, ensure};
use faiss::index::IndexImpl;
use faiss::selector::IdSelector;
use faiss::{FlatIndex, IdMap, Idx, Index, MetricType};
use sha2::{Digest, Sha256};

/// Magic bytes closing every file written by [`VectorIndex::save`].
const FOOTER_MAGIC: &[u8; 8] = b"LMVIDX01";
/// Footer: payload length (8) + SHA-256 (32) + magic (8).
const FOOTER_LEN: u64 = 48;
/// Refuse absurd dimensions early (faiss would try to allocate them).
const MAX_DIM: usize = 65_536;

type Inner = IdMap<FlatIndex>;

/// The faiss index plus the reverse of its id map.
struct State {
    index: Inner,
    /// Message id -> storage row in the flat index. faiss keeps row -> id
    /// (`id_map`); this direction turns `allowed` ids into a row bitmap in
    /// O(|allowed|). Rebuilt after removals, which renumber rows.
    rows: HashMap<i64, usize>,
}

impl State {
    fn new(index: Inner) -> Result<Self> {
        let rows = row_map(&index)?;
        Ok(State { index, rows })
    }
}

/// Builds id -> row for `index`, checking the invariants `add` maintains
/// (non-negative, unique ids) for indexes that come from disk.
fn row_map(index: &Inner) -> Result<HashMap<i64, usize>> {
    let ids = index.id_map();
    let mut rows = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        let id = id.to_native();
        ensure!(id >= 0, "index holds negative id {id}");
        ensure!(rows.insert(id, row).is_none(), "index holds id {id} twice");
    }
    Ok(rows)
}

/// A thread-safe exact inner-product index from message id to vector.
///
/// Vectors should be L2-normalised (as `MiniLm::embed` returns them) so
/// that scores are cosine similarities. Searches take a shared lock and may run
/// concurrently; `add` and `remove` take it exclusively. All methods block on
/// CPU or disk: call them from a blocking thread, not an async task.
pub struct VectorIndex {
    state: RwLock<State>,
    dim: usize,
}

// The host shares one index between tokio's blocking threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<VectorIndex>();
};

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dim", &self.dim)
            .field("len", &self.len())
            .finish()
    }
}

impl VectorIndex {
    /// Creates an empty index for vectors of `dim` floats.
    pub fn create(dim: usize) -> Result<Self> {
        ensure!(
            (1..=MAX_DIM).contains(&dim),
            "vector dimension {dim} out of range 1..={MAX_DIM}"
        );
        let flat = FlatIndex::new_ip(u32::try_from(dim)?).context("creating faiss IndexFlatIP")?;
        let index = IdMap::new(flat).context("creating faiss IndexIDMap")?;
        Ok(VectorIndex {
            state: RwLock::new(State::new(index)?),
            dim,
        })
    }

    /// Loads an index written by [`VectorIndex::save`].
    ///
    /// Returns an error (never aborts) for a missing, truncated or corrupted file,
    /// and for a valid faiss file that is not an ID-mapped flat inner-product index.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display();
        verify_footer(path).with_context(|| format!("vector index {shown} is damaged"))?;
        let path_str = path
            .to_str()
            .with_context(|| format!("vector index path {shown} is not UTF-8 (faiss needs it)"))?;

        let raw: IndexImpl = faiss::read_index(path_str)
            .with_context(|| format!("faiss could not read vector index {shown}"))?;
        let index: Inner = raw
            .into_id_map()
            .with_context(|| format!("{shown} is not an ID-mapped faiss index"))?
            .try_cast_inner_index::<FlatIndex>()
            .with_context(|| format!("{shown} is not an ID-mapped flat faiss index"))?;

        ensure!(
            index.metric_type() == MetricType::InnerProduct,
            "{shown} uses metric {:?}, expected inner product",
            index.metric_type()
        );
        let dim = index.d() as usize;
        ensure!((1..=MAX_DIM).contains(&dim), "{shown} has dimension {dim}");
        let ntotal = usize::try_from(index.ntotal())?;
        ensure!(
            index.id_map().len() == ntotal,
            "{shown} is inconsistent: {ntotal} vectors but {} ids",
            index.id_map().len()
        );
        let state = State::new(index).with_context(|| format!("{shown} is inconsistent"))?;
        Ok(VectorIndex {
            state: RwLock::new(state),
            dim,
        })
    }

    /// Writes the index to `path` atomically: a temporary file in the same
    /// directory is written, fsynced and renamed over `path`, and the directory is
    /// fsynced, so a crash leaves either the old file or the new one.
    ///
    /// Holds the shared lock while faiss writes, so searches continue but `add`
    /// and `remove` wait (about 0.3 s per 100k vectors of 384 floats).
    pub fn save(&self, path: &Path) -> Result<()> {
        let shown = path.display();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".vector-index-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let tmp_str = tmp
            .path()
            .to_str()
            .with_context(|| format!("temporary path for {shown} is not UTF-8 (faiss needs it)"))?
            .to_owned();

        {
            let state = self.read()?;
            // faiss opens the path itself (fopen "wb"), writing into the same inode
            // our handle `tmp` refers to.
            faiss::write_index(&state.index, &tmp_str)
                .with_context(|| format!("faiss could not write {tmp_str}"))?;
        }

        let file = tmp.as_file_mut();
        file.seek(SeekFrom::Start(0))?;
        let (len, digest) = hash_prefix(BufReader::with_capacity(1 << 20, &mut *file), None)
            .with_context(|| format!("hashing {tmp_str}"))?;
        file.seek(SeekFrom::End(0))?;
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&len.to_le_bytes());
        footer.extend_from_slice(&digest);
        footer.extend_from_slice(FOOTER_MAGIC);
        file.write_all(&footer)
            .with_context(|| format!("writing footer to {tmp_str}"))?;
        file.sync_all()
            .with_context(|| format!("fsync {tmp_str}"))?;

        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming {tmp_str} to {shown}"))?;
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("fsync directory {}", dir.display()))?;
        Ok(())
    }

    /// Adds `ids.len()` vectors, given flattened in `vectors`
    /// (`vectors.len() == ids.len() * dimension()`).
    ///
    /// Ids must be non-negative (faiss uses -1 for "no result") and new: an id
    /// already in the index, or repeated in `ids`, is an error and nothing is
    /// added. Vectors must be finite.
    pub fn add(&self, ids: &[i64], vectors: &[f32]) -> Result<()> {
        ensure!(
            vectors.len() == ids.len() * self.dim,
            "add: {} ids need {} floats at dimension {}, got {}",
            ids.len(),
            ids.len() * self.dim,
            self.dim,
            vectors.len()
        );
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(pos) = vectors.iter().position(|x| !x.is_finite()) {
            bail!(
                "add: vector for id {} has a non-finite value",
                ids[pos / self.dim]
            );
        }

        let mut state = self.write()?;
        let first_row = state.rows.len();
        let mut new_rows = HashMap::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            ensure!(id >= 0, "add: id {id} is negative");
            // IndexIDMap would accept a duplicate silently; it would then come
            // back twice from search and survive removal of one copy.
            ensure!(
                !state.rows.contains_key(&id),
                "add: id {id} is already in the index"
            );
            ensure!(
                new_rows.insert(id, first_row + i).is_none(),
                "add: id {id} appears twice"
            );
        }
        let xids: Vec<Idx> = ids.iter().map(|&id| Idx::from(id)).collect();
        state
            .index
            .add_with_ids(vectors, &xids)
            .context("faiss add_with_ids")?;
        // faiss appends rows in order, so the new ones are first_row.. .
        state.rows.extend(new_rows);
        Ok(())
    }

    /// Returns up to `k` `(id, score)` pairs, best first, among only the ids in
    /// `allowed` (ids in `allowed` that are not stored are ignored). The score is
    /// the inner product, i.e. the cosine for unit vectors.
    ///
    /// The filter is applied inside faiss' scan (an `IDSelectorBitmap`), so the
    /// result is exact however few ids are allowed.
    pub fn search(&self, query: &[f32], k: usize, allowed: &[i64]) -> Result<Vec<(i64, f32)>> {
        ensure!(
            query.len() == self.dim,
            "search: query has {} floats, index dimension is {}",
            query.len(),
            self.dim
        );
        ensure!(
            query.iter().all(|x| x.is_finite()),
            "search: query has a non-finite value"
        );
        if k == 0 || allowed.is_empty() {
            return Ok(Vec::new());
        }

        let state = self.read()?;
        // faiss' IDSelectorBitmap: row r is selected if bit (r & 7) of byte r >> 3
        // is set. Rows are dense (0..ntotal), so this is ntotal / 8 bytes.
        let mut bitmap = vec![0u8; state.rows.len().div_ceil(8)];
        let mut selected = 0usize;
        for id in allowed {
            if let Some(&row) = state.rows.get(id) {
                let (byte, bit) = (row >> 3, 1u8 << (row & 7));
                if bitmap[byte] & bit == 0 {
                    bitmap[byte] |= bit;
                    selected += 1;
                }
            }
        }
        // faiss sizes its result heap by k: never ask for more than can exist.
        let k = k.min(selected);
        if k == 0 {
            return Ok(Vec::new());
        }

        // faiss keeps a pointer to `bitmap` rather than a copy: `sel` is declared
        // after it, so it is dropped first.
        let sel = IdSelector::bitmap(&bitmap).context("creating faiss IDSelectorBitmap")?;
        let (scores, rows) = ffi::search_flat_with_selector(&state.index, query, k, &sel)?;
        drop(sel);

        let ids = state.index.id_map();
        let mut out = Vec::with_capacity(k);
        for (row, score) in rows.into_iter().zip(scores) {
            // With k <= selected, faiss fills every slot; -1 would mean "no result".
            if row < 0 {
                continue;
            }
            let id = usize::try_from(row)
                .ok()
                .and_then(|r| ids.get(r))
                .with_context(|| format!("faiss returned row {row} outside 0..{}", ids.len()))?;
            out.push((id.to_native(), score));
        }
        Ok(out)
    }

    /// Removes the vectors of `ids`; returns how many were found and removed.
    ///
    /// Costs a pass over the whole index (faiss compacts its arrays, and the
    /// id -> row map is rebuilt).
    pub fn remove(&self, ids: &[i64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let xids: Vec<Idx> = ids.iter().map(|&id| Idx::from(id)).collect();
        let sel = IdSelector::batch(&xids).context("creating faiss IDSelectorBatch")?;
        let mut state = self.write()?;
        if !ids.iter().any(|id| state.rows.contains_key(id)) {
            return Ok(0);
        }
        let removed = state.index.remove_ids(&sel).context("faiss remove_ids")?;
        // Removal shifts later rows down; renumber.
        state.rows = row_map(&state.index)?;
        Ok(removed)
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        // A poisoned lock means a panic elsewhere while holding it; no method
        // panics between faiss' change and the row map update, so read anyway.
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.rows.len()
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the stored vectors.
    pub fn dimension(&self) -> usize {
        self.dim
    }

    /// All stored ids, in storage order (tests check what a save kept).
    #[cfg(test)]
    fn ids(&self) -> Result<Vec<i64>> {
        let state = self.read()?;
        Ok(state.index.id_map().iter().map(|i| i.to_native()).collect())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state
            .read()
            .map_err(|_| anyhow!("vector index lock poisoned"))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state
            .write()
            .map_err(|_| anyhow!("vector index lock poisoned"))
    }
}

/// Checks the footer written by `save`: length and SHA-256 of the faiss payload.
fn verify_footer(path: &Path) -> Result<()> {
    let mut file = File::open(path).context("opening")?;
    let len = file.metadata().context("stat")?.len();
    ensure!(
        len >= FOOTER_LEN,
        "file is {len} bytes, shorter than its {FOOTER_LEN}-byte footer (truncated?)"
    );
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.seek(SeekFrom::Start(len - FOOTER_LEN))?;
    file.read_exact(&mut footer).context("reading footer")?;
    ensure!(
        &footer[40..48] == FOOTER_MAGIC,
        "no vector-index footer (truncated, or not written by VectorIndex::save)"
    );
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&footer[0..8]);
    let payload_len = u64::from_le_bytes(len_bytes);
    ensure!(
        payload_len == len - FOOTER_LEN,
        "footer says {payload_len} payload bytes, file holds {}",
        len - FOOTER_LEN
    );
    file.seek(SeekFrom::Start(0))?;
    let (hashed, digest) = hash_prefix(BufReader::with_capacity(1 << 20, file), Some(payload_len))
        .context("hashing payload")?;
    ensure!(hashed == payload_len, "payload shorter than footer says");
    ensure!(
        digest[..] == footer[8..40],
        "checksum mismatch (corrupted file)"
    );
    Ok(())
}

/// SHA-256 of the first `limit` bytes of `reader` (all of it when `None`),
/// with the number of bytes hashed.
fn hash_prefix(reader: impl Read, limit: Option<u64>) -> Result<(u64, [u8; 32])> {
    let mut reader = reader.take(limit.unwrap_or(u64::MAX));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hasher.finalize().into()))
}

/// The one place this crate calls faiss' C API directly.
mod ffi {
    use std::ffi::CStr;
    use std::os::raw::c_int;
    use std::ptr;

    use anyhow::{Result, bail, ensure};
    use faiss::selector::IdSelector;
    use faiss_sys::{
        FaissSearchParameters, faiss_Index_search_with_params, faiss_SearchParameters_free,
        faiss_SearchParameters_new, faiss_get_last_error,
    };

    use super::Inner;

    /// One filtered k-NN query on the flat index inside `index` (bypassing the
    /// IDMap, see the module docs). `sel` selects storage rows. Returns `k`
    /// scores and rows, best first (-1 = no result).
    ///
    /// Why raw FFI: the safe `faiss::SearchParameters::new(selector)` in faiss
    /// 0.13 `mem::forget`s the selector, and faiss' `SearchParameters` does not
    /// own its `sel`, so every query would leak the selector. Here the
    /// parameters only borrow `sel`, and we free them ourselves.
    #[allow(unsafe_code)]
    pub(super) fn search_flat_with_selector(
        index: &Inner,
        query: &[f32],
        k: usize,
        sel: &IdSelector,
    ) -> Result<(Vec<f32>, Vec<i64>)> {
        // The caller validates these; a mismatch would let faiss read or write
        // out of bounds, so check again right next to the unsafe calls.
        ensure!(
            k > 0 && query.len() == faiss::Index::d(index) as usize,
            "search_flat_with_selector: k {k}, query length {}",
            query.len()
        );
        let k_native = i64::try_from(k)?;
        let mut scores = vec![f32::NEG_INFINITY; k];
        let mut rows = vec![-1i64; k];

        let mut params: *mut FaissSearchParameters = ptr::null_mut();
        // SAFETY: `sel.inner_ptr()` is a live IDSelector owned by `sel`, which
        // outlives `params` (freed below, before we return). faiss only stores
        // the pointer; it neither frees nor mutates the selector.
        let rc = unsafe { faiss_SearchParameters_new(&mut params, sel.inner_ptr()) };
        if rc != 0 || params.is_null() {
            bail!("faiss_SearchParameters_new failed: {}", last_error(rc));
        }
        // SAFETY: `index.index_inner_ptr()` is the IndexFlat owned by the IDMap,
        // alive for the borrow of `index` (the caller holds the read guard, and
        // concurrent const searches are thread-safe in faiss). `query` holds
        // d floats for n = 1 query; `scores` and `rows` hold n * k slots.
        let rc = unsafe {
            faiss_Index_search_with_params(
                index.index_inner_ptr(),
                1,
                query.as_ptr(),
                k_native,
                params,
                scores.as_mut_ptr(),
                rows.as_mut_ptr(),
            )
        };
        // Copy faiss' thread-local message out before any other faiss call.
        let err = (rc != 0).then(|| last_error(rc));
        // SAFETY: `params` came from faiss_SearchParameters_new and is freed once.
        // Its destructor does not touch `sel`, which `IdSelector`'s Drop frees.
        unsafe { faiss_SearchParameters_free(params) };
        if let Some(err) = err {
            bail!("faiss search failed: {err}");
        }
        Ok((scores, rows))
    }

    /// faiss' message for the last failed C API call on this thread.
    #[allow(unsafe_code)]
    fn last_error(rc: c_int) -> String {
        // SAFETY: faiss_get_last_error returns null or a NUL-terminated string in
        // thread-local storage, valid until the next faiss call on this thread;
        // it is copied out immediately.
        let msg = unsafe {
            let p = faiss_get_last_error();
            if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p).to_string_lossy().into_owned())
            }
        };
        format!(
            "code {rc}: {}",
            msg.unwrap_or_else(|| "no message".to_owned())
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashSet;

    const D: usize = 8;

    /// Deterministic pseudo-random unit vectors.
    fn unit_vectors(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let row: Vec<f32> = (0..d)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(row.iter().map(|x| x / norm));
        }
        out
    }

    fn brute_force(
        vectors: &[f32],
        ids: &[i64],
        q: &[f32],
        k: usize,
        allowed: &[i64],
    ) -> Vec<(i64, f32)> {
        let allowed: HashSet<i64> = allowed.iter().copied().collect();
        let mut all: Vec<(i64, f32)> = ids
            .iter()
            .zip(vectors.chunks(q.len()))
            .filter(|(id, _)| allowed.contains(id))
            .map(|(&id, v)| (id, v.iter().zip(q).map(|(a, b)| a * b).sum()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(k);
        all
    }

    fn assert_same(got: &[(i64, f32)], want: &[(i64, f32)]) {
        assert_eq!(got.len(), want.len(), "got {got:?} want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0, "got {got:?} want {want:?}");
            assert!((g.1 - w.1).abs() < 1e-5);
        }
    }

    #[test]
    fn add_search_filter() {
        let idx = VectorIndex::create(D).unwrap();
        assert!(idx.is_empty());
        let ids: Vec<i64> = (0..500).map(|i| i * 7 + 3).collect();
        let vecs = unit_vectors(ids.len(), D, 1);
        idx.add(&ids, &vecs).unwrap();
        assert_eq!(idx.len(), 500);
        assert_eq!(idx.dimension(), D);

        let q = &unit_vectors(1, D, 99)[..];
        // Exact against brute force, for a sparse filter, a dense one, and all.
        let sparse: Vec<i64> = ids.iter().copied().step_by(37).collect();
        let dense: Vec<i64> = ids.iter().copied().filter(|id| id % 2 == 0).collect();
        for allowed in [&sparse, &dense, &ids] {
            let got = idx.search(q, 10, allowed).unwrap();
            assert_same(&got, &brute_force(&vecs, &ids, q, 10, allowed));
            assert!(got.iter().all(|(id, _)| allowed.contains(id)));
        }

        // A vector finds itself first with score ~1.
        let me = &vecs[40 * D..41 * D];
        let got = idx.search(me, 3, &ids).unwrap();
        assert_eq!(got[0].0, ids[40]);
        assert!((got[0].1 - 1.0).abs() < 1e-5);

        // Unknown and negative allowed ids are ignored; k larger than the matches.
        let got = idx.search(q, 10, &[ids[5], 1_000_000, -1, ids[9]]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(idx.search(q, 10, &[]).unwrap().is_empty());
        assert!(idx.search(q, 0, &ids).unwrap().is_empty());
        assert!(idx.search(q, 10, &[1_000_000]).unwrap().is_empty());
    }

    #[test]
    fn large_sparse_ids() {
        // The selector is over storage rows, so huge, sparse ids cost nothing extra.
        let idx = VectorIndex::create(D).unwrap();
        let ids: Vec<i64> = (0..200).map(|i| i * 1_000_000_007 + 11).collect();
        let vecs = unit_vectors(ids.len(), D, 2);
        idx.add(&ids, &vecs).unwrap();
        let q = &unit_vectors(1, D, 3)[..];
        let allowed: Vec<i64> = ids.iter().copied().step_by(3).collect();
        let got = idx.search(q, 5, &allowed).unwrap();
        assert_same(&got, &brute_force(&vecs, &ids, q, 5, &allowed));
    }

    #[test]
    fn rejects_bad_input() {
        let idx = VectorIndex::create(D).unwrap();
        let v = unit_vectors(2, D, 4);
        assert!(idx.add(&[1, 2], &v[..D]).is_err(), "wrong length");
        assert!(idx.add(&[1, 1], &v).is_err(), "duplicate in batch");
        assert!(idx.add(&[-1, 2], &v).is_err(), "negative id");
        let mut nan = v.clone();
        nan[3] = f32::NAN;
        assert!(idx.add(&[1, 2], &nan).is_err(), "NaN");
        assert_eq!(idx.len(), 0, "failed adds add nothing");
        idx.add(&[1, 2], &v).unwrap();
        assert!(idx.add(&[3, 2], &v).is_err(), "already present");
        assert_eq!(idx.len(), 2);
        assert!(idx.search(&v[..D - 1], 1, &[1]).is_err(), "query length");
        assert!(VectorIndex::create(0).is_err());
        idx.add(&[], &[]).unwrap();
    }

    #[test]
    fn remove() {
        let idx = VectorIndex::create(D).unwrap();
        let ids: Vec<i64> = (0..100).collect();
        let vecs = unit_vectors(100, D, 5);
        idx.add(&ids, &vecs).unwrap();
        assert_eq!(idx.remove(&[3, 50, 99, 12345]).unwrap(), 3);
        assert_eq!(idx.len(), 97);
        assert_eq!(idx.remove(&[3]).unwrap(), 0);
        assert_eq!(idx.remove(&[]).unwrap(), 0);
        let me = &vecs[50 * D..51 * D];
        let got = idx.search(me, 100, &ids).unwrap();
        assert_eq!(got.len(), 97);
        assert!(got.iter().all(|(id, _)| ![3, 50, 99].contains(id)));
        // Remaining vectors still map to the right ids after compaction.
        let me = &vecs[51 * D..52 * D];
        assert_eq!(idx.search(me, 1, &ids).unwrap()[0].0, 51);
        // A removed id can be added again.
        idx.add(&[50], &vecs[50 * D..51 * D]).unwrap();
        assert_eq!(idx.len(), 98);
    }

    #[test]
    fn save_load_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.faiss");
        let idx = VectorIndex::create(D).unwrap();
        let ids: Vec<i64> = (0..300).map(|i| i * 3).collect();
        let vecs = unit_vectors(300, D, 6);
        idx.add(&ids, &vecs).unwrap();
        idx.save(&path).unwrap();
        // Saving again replaces the file atomically and leaves no temp files.
        idx.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);

        let loaded = VectorIndex::load(&path).unwrap();
        assert_eq!(loaded.len(), 300);
        assert_eq!(loaded.dimension(), D);
        assert_eq!(loaded.ids().unwrap(), ids);
        let q = &unit_vectors(1, D, 7)[..];
        let allowed: Vec<i64> = ids.iter().copied().step_by(5).collect();
        assert_same(
            &loaded.search(q, 7, &allowed).unwrap(),
            &idx.search(q, 7, &allowed).unwrap(),
        );
        // The loaded index is fully usable.
        loaded.add(&[1], &vecs[..D]).unwrap();
        assert_eq!(loaded.remove(&[0, 1]).unwrap(), 2);

        // Empty index round-trips too.
        let empty = dir.path().join("empty.faiss");
        VectorIndex::create(D).unwrap().save(&empty).unwrap();
        assert!(VectorIndex::load(&empty).unwrap().is_empty());
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.faiss");
        let idx = VectorIndex::create(D).unwrap();
        let ids: Vec<i64> = (0..50).collect();
        idx.add(&ids, &unit_vectors(50, D, 8)).unwrap();
        idx.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.faiss");

        assert!(VectorIndex::load(&dir.path().join("missing")).is_err());

        // Every truncation length, including empty.
        for cut in (0..good.len()).step_by(7).chain([good.len() - 1]) {
            std::fs::write(&bad, &good[..cut]).unwrap();
            assert!(VectorIndex::load(&bad).is_err(), "truncated at {cut}");
        }
        // A flipped byte anywhere (header, vectors, ids, footer).
        for pos in (0..good.len()).step_by(13) {
            let mut b = good.clone();
            b[pos] ^= 0x5a;
            std::fs::write(&bad, &b).unwrap();
            assert!(VectorIndex::load(&bad).is_err(), "flipped byte {pos}");
        }
        // Garbage, and a raw faiss file without our footer.
        std::fs::write(&bad, vec![0xffu8; 4096]).unwrap();
        assert!(VectorIndex::load(&bad).is_err());
        std::fs::write(&bad, &good[..good.len() - FOOTER_LEN as usize]).unwrap();
        let err = format!("{:#}", VectorIndex::load(&bad).unwrap_err());
        assert!(err.contains("bad.faiss"), "{err}");
    }

    #[test]
    fn wrong_kind_of_faiss_index_is_an_error() {
        // A well-formed file (valid footer) holding an L2 index without IDMap.
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.faiss");
        let mut flat = FlatIndex::new_l2(D as u32).unwrap();
        flat.add(&unit_vectors(3, D, 9)).unwrap();
        faiss::write_index(&flat, raw.to_str().unwrap()).unwrap();
        let mut bytes = std::fs::read(&raw).unwrap();
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let len = bytes.len() as u64;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&digest);
        bytes.extend_from_slice(FOOTER_MAGIC);
        std::fs::write(&raw, &bytes).unwrap();
        let err = format!("{:#}", VectorIndex::load(&raw).unwrap_err());
        assert!(err.contains("ID-mapped"), "{err}");
    }

    #[test]
    fn concurrent_searches_and_adds() {
        let idx = std::sync::Arc::new(VectorIndex::create(D).unwrap());
        let owned = unit_vectors(2000, D, 10);
        let vecs = &owned;
        let ids: Vec<i64> = (0..1000).collect();
        idx.add(&ids, &vecs[..1000 * D]).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let idx = idx.clone();
                s.spawn(move || {
                    for i in 0..200 {
                        let q = &vecs[(i * 5 + t) % 1000 * D..][..D];
                        let allowed: Vec<i64> = (0..2000).step_by(t + 1).collect();
                        let got = idx.search(q, 5, &allowed).unwrap();
                        assert!(!got.is_empty());
                    }
                });
            }
            let idx = idx.clone();
            s.spawn(move || {
                for i in 1000..2000 {
                    idx.add(&[i as i64], &vecs[i * D..(i + 1) * D]).unwrap();
                }
            });
        });
        assert_eq!(idx.len(), 2000);
    }
}
