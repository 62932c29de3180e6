//! Latency benchmarks for the vector memory: embedding, faiss filtered search,
//! and a plain Rust brute-force scan for comparison.
//!
//! Run: `make bench` or `cargo bench -p launch-tests --bench memory` (needs
//! the model: `make model`). Skip the embedding part with
//! `BENCH_SKIP_EMBED=1`. Also times committing a turn to the session store.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use launch::memory::embed::MiniLm;
use launch::memory::vector::VectorIndex;

const D: usize = 384;
const K: usize = 10;

fn model_dir() -> PathBuf {
    std::env::var_os("MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(launch_tests::model_dir)
}

/// Times `f` `n` times after `warm` untimed calls; returns sorted durations.
fn time_n(warm: usize, n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    for i in 0..warm {
        f(i);
    }
    let mut out: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(name: &str, sorted: &[Duration]) -> f64 {
    let p50 = pct(sorted, 0.5);
    println!(
        "{name:<52} p50 {p50:>8.3} ms  p99 {:>8.3} ms  (n={})",
        pct(sorted, 0.99),
        sorted.len()
    );
    p50
}

fn threads() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// xorshift64 pseudo-random unit vectors.
fn unit_vectors(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n * D);
    let mut row = vec![0f32; D];
    for _ in 0..n {
        for x in row.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *x = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(row.iter().map(|x| x / norm));
    }
    out
}

/// Dot product written so LLVM vectorises it (8 independent accumulators).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a
        .chunks_exact(8)
        .remainder()
        .iter()
        .zip(b.chunks_exact(8).remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Keeps the k best (score, id) pairs, best first.
struct TopK {
    k: usize,
    items: Vec<(f32, i64)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }
    #[inline]
    fn push(&mut self, score: f32, id: i64) {
        if self.items.len() == self.k && score <= self.items[self.k - 1].0 {
            return;
        }
        let pos = self.items.partition_point(|&(s, _)| s >= score);
        self.items.insert(pos, (score, id));
        self.items.truncate(self.k);
    }
}

/// Brute force over all rows.
fn bf_all(vectors: &[f32], ids: &[i64], q: &[f32]) -> Vec<(f32, i64)> {
    let mut top = TopK::new(K);
    for (row, &id) in vectors.chunks_exact(D).zip(ids) {
        top.push(dot(row, q), id);
    }
    top.items
}

/// Brute force over the allowed ids only, via an id -> row map (what a
/// Rust-side index would keep).
fn bf_allowed(
    vectors: &[f32],
    rows: &HashMap<i64, usize>,
    q: &[f32],
    allowed: &[i64],
) -> Vec<(f32, i64)> {
    let mut top = TopK::new(K);
    for id in allowed {
        if let Some(&r) = rows.get(id) {
            top.push(dot(&vectors[r * D..(r + 1) * D], q), *id);
        }
    }
    top.items
}

fn bench_embed() {
    let t = Instant::now();
    let m = MiniLm::load(&model_dir()).unwrap();
    println!("model load: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let short = "I have a dog named Rex";
    report(
        "embed 1 short sentence",
        &time_n(5, 50, |_| {
            black_box(m.embed(&[short]).unwrap());
        }),
    );
    let sentences: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "Message {i}: the user mentioned that their favourite colour is number {}.",
                i * 7
            )
        })
        .collect();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let p50 = report(
        "embed batch of 64 sentences (~20 tokens)",
        &time_n(1, 10, |_| {
            black_box(m.embed(&refs).unwrap());
        }),
    );
    println!("  = {:.2} ms per sentence", p50 / 64.0);
    let para = "The quick brown fox jumps over the lazy dog. ".repeat(25);
    report(
        "embed 1 long text (256 tokens, truncated)",
        &time_n(2, 20, |_| {
            black_box(m.embed(&[para.as_str()]).unwrap());
        }),
    );
    println!("{} after embedding", threads());
}

fn bench_search(n: usize) {
    let vectors = unit_vectors(n, 42);
    let ids: Vec<i64> = (0..n as i64).map(|i| i + 1_000).collect();
    let index = VectorIndex::create(D).unwrap();
    let t = Instant::now();
    // Add in chunks of 1000 like a host backfilling would.
    for (c_ids, c_vec) in ids.chunks(1000).zip(vectors.chunks(1000 * D)) {
        index.add(c_ids, c_vec).unwrap();
    }
    println!(
        "\n== {n} vectors (d={D}) ==  add: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let queries = unit_vectors(200, 7);
    let q = |i: usize| &queries[(i % 200) * D..(i % 200 + 1) * D];
    // 1% contiguous: one session's older messages stored together. 1% strided:
    // a session whose messages interleave with other sessions' (rows are in
    // insertion order), the harder case for memory locality.
    let start = n / 3;
    let allowed_1pct: Vec<i64> = ids[start..start + n / 100].to_vec();
    let allowed_1pct_strided: Vec<i64> = ids.iter().copied().step_by(100).collect();
    let rows: HashMap<i64, usize> = ids.iter().enumerate().map(|(r, &id)| (id, r)).collect();
    let iters = if n >= 100_000 { 300 } else { 1000 };

    let f1 = report(
        "faiss filtered search, allowed = 1% contiguous",
        &time_n(20, iters, |i| {
            black_box(index.search(q(i), K, &allowed_1pct).unwrap());
        }),
    );
    let f1s = report(
        "faiss filtered search, allowed = 1% strided",
        &time_n(20, iters, |i| {
            black_box(index.search(q(i), K, &allowed_1pct_strided).unwrap());
        }),
    );
    let b1s = report(
        "rust brute force over allowed 1% strided",
        &time_n(20, iters, |i| {
            black_box(bf_allowed(&vectors, &rows, q(i), &allowed_1pct_strided));
        }),
    );
    println!("  ratio faiss/brute-force: 1% strided {:.2}x", f1s / b1s);
    let fa = report(
        "faiss filtered search, allowed = all",
        &time_n(5, iters, |i| {
            black_box(index.search(q(i), K, &ids).unwrap());
        }),
    );
    let b1 = report(
        "rust brute force over allowed 1% contiguous",
        &time_n(20, iters, |i| {
            black_box(bf_allowed(&vectors, &rows, q(i), &allowed_1pct));
        }),
    );
    let ba = report(
        "rust brute force over all rows",
        &time_n(5, iters, |i| {
            black_box(bf_all(&vectors, &ids, q(i)));
        }),
    );
    println!(
        "  ratio faiss/brute-force: 1% contiguous {:.2}x, all {:.2}x",
        f1 / b1,
        fa / ba
    );

    let allowed_10pct: Vec<i64> = ids.iter().copied().step_by(10).collect();
    let f10 = report(
        "faiss filtered search, allowed = 10% strided",
        &time_n(20, iters, |i| {
            black_box(index.search(q(i), K, &allowed_10pct).unwrap());
        }),
    );
    let b10 = report(
        "rust brute force over allowed 10% strided",
        &time_n(20, iters, |i| {
            black_box(bf_allowed(&vectors, &rows, q(i), &allowed_10pct));
        }),
    );
    println!("  ratio faiss/brute-force: 10% strided {:.2}x", f10 / b10);

    // Correctness spot check: faiss and brute force agree.
    for i in 0..20 {
        let f: Vec<i64> = index
            .search(q(i), K, &allowed_1pct)
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        let b: Vec<i64> = bf_allowed(&vectors, &rows, q(i), &allowed_1pct)
            .iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(f, b, "faiss and brute force disagree");
        let f: Vec<i64> = index
            .search(q(i), K, &ids)
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        let b: Vec<i64> = bf_all(&vectors, &ids, q(i)).iter().map(|r| r.1).collect();
        assert_eq!(f, b, "faiss and brute force disagree (all)");
    }

    if n >= 100_000 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.faiss");
        let t = Instant::now();
        index.save(&path).unwrap();
        let save = t.elapsed();
        let t = Instant::now();
        let loaded = VectorIndex::load(&path).unwrap();
        println!(
            "save {:.0} ms, load {:.0} ms ({} MB, {} vectors)",
            save.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3,
            std::fs::metadata(&path).unwrap().len() >> 20,
            loaded.len()
        );
        let t = Instant::now();
        let removed = index.remove(&allowed_1pct[..10]).unwrap();
        println!(
            "remove 10 ids: {:.1} ms ({removed} removed)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    println!("{}", threads());
}

/// Committing one turn (user message, a tool call, its result, the answer,
/// one step) to the session store, at both durability levels.
fn bench_persist() {
    use launch::agent::{FinishReason, Step, TurnOutcome};
    use launch::llm::{Message, Usage};
    use launch::memory::{Durability, Store};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let call: launch::llm::ToolCall = serde_json::from_value(serde_json::json!({
        "id": "call_1", "type": "function",
        "function": {"name": "calculator_evaluate", "arguments": "{\"expression\": \"6*7\"}"}
    }))
    .unwrap();
    let outcome = TurnOutcome {
        content: "It is 42.".into(),
        finish_reason: FinishReason::Stop,
        steps: vec![Step {
            id: "call_1".into(),
            name: "calculator_evaluate".into(),
            arguments: serde_json::json!({"expression": "6*7"}),
            result: Some(serde_json::json!(42.0)),
            error: None,
            duration_ms: 0.03,
        }],
        usage: Usage::default(),
        messages: vec![
            Message {
                role: launch::llm::Role::Assistant,
                content: None,
                tool_calls: vec![call],
                tool_call_id: None,
            },
            Message::tool("call_1", "42.0"),
            Message::assistant("It is 42."),
        ],
        iterations: 2,
    };
    for durability in [Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("launch.db"), durability).unwrap();
        let session = rt.block_on(store.create_session("", None)).unwrap().id;
        let times = time_n(20, 300, |_| {
            rt.block_on(store.commit_turn(
                &session,
                Message::user("What is 6 times 7?"),
                &outcome,
                1.0,
            ))
            .unwrap();
        });
        report(
            &format!("commit a turn (durability {durability:?})"),
            &times,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore any arguments.
    println!("{} at start", threads());
    bench_persist();
    if std::env::var_os("BENCH_SKIP_EMBED").is_none() {
        bench_embed();
    }
    bench_search(10_000);
    bench_search(100_000);
}
