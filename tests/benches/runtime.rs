//! Plugin runtime benchmarks (issue: plugin runtime): host overhead of one tool
//! call on `calculator` versus the same computation natively, and startup to
//! ready with the five first-party plugins, cold and warm.
//!
//! Run with `make bench`. Prints Markdown rows for BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use launch::plugins::{LoadOptions, Registry};
use launch_tests::stats::{machine, ms, summarize, us};
use launch_tests::{PluginDir, repo_root};
use serde_json::json;

// The calculator plugin's evaluator, compiled natively for the comparison.
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../plugins/calculator/src/eval.rs"]
mod eval;

const EXPRESSION: &str = "2 * (3 + 4) - sqrt(16) / 2";
const PLUGINS: [&str; 7] = [
    "calculator",
    "clock",
    "text",
    "files",
    "http-fetch",
    "stats",
    "json-tools",
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `cargo bench --bench runtime -- NAME` runs only the sections containing NAME.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("machine: {}\n", machine());
    if wanted("tool_call") {
        tool_call(&rt);
    }
    if wanted("other_tools") {
        other_tools(&rt);
    }
    if wanted("plugin_compile") {
        plugin_compile(&rt);
    }
    if wanted("startup") {
        startup(&rt);
    }
}

fn tool_call(rt: &tokio::runtime::Runtime) {
    let dir = PluginDir::new().plugin("calculator");
    let registry = dir.load();
    let args = json!({"expression": EXPRESSION});
    let tool = registry.get("calculator_evaluate").unwrap().clone();
    let samples = rt.block_on(async {
        for _ in 0..2_000 {
            tool.call(&args).await.unwrap();
        }
        let mut samples = Vec::with_capacity(20_000);
        let faults = minor_faults();
        for _ in 0..20_000 {
            let start = Instant::now();
            let v = tool.call(&args).await.unwrap();
            samples.push(start.elapsed());
            std::hint::black_box(v);
        }
        eprintln!(
            "minor page faults per call: {:.1}",
            (minor_faults() - faults) as f64 / 20_000.0
        );
        samples
    });
    let mut samples = samples;
    let wasm = summarize(&mut samples);

    // Native: batches, since one evaluation is shorter than the clock's resolution.
    let mut native = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let start = Instant::now();
        for _ in 0..100 {
            std::hint::black_box(eval::evaluate(std::hint::black_box(EXPRESSION)).unwrap());
        }
        native.push(start.elapsed() / 100);
    }
    let native = summarize(&mut native);
    println!(
        "## Tool call: calculator_evaluate(\"{EXPRESSION}\"), {} sequential calls",
        wasm.n
    );
    println!("| measure | p50 | p90 | p99 | mean |");
    println!("|---|---|---|---|---|");
    println!(
        "| full call (validate + convert + fresh instance + call + convert) | {} | {} | {} | {} |",
        us(wasm.p50),
        us(wasm.p90),
        us(wasm.p99),
        us(wasm.mean)
    );
    println!(
        "| native Rust `eval::evaluate` | {} | {} | {} | {} |",
        us(native.p50),
        us(native.p90),
        us(native.p99),
        us(native.mean)
    );
    println!(
        "| ratio (p50) | {:.0}x | | | |\n",
        wasm.p50.as_secs_f64() / native.p50.as_secs_f64()
    );
}

fn startup(rt: &tokio::runtime::Runtime) {
    let _guard = rt.enter();
    // The repository's own plugins folder, as `make run` serves it.
    let options = |data: &std::path::Path| LoadOptions::new(repo_root().join("plugins"), data);
    let mut cold = Vec::new();
    // Few cold runs: compiling the Python and JavaScript plugins takes seconds.
    for _ in 0..3 {
        let cache = tempfile::tempdir().unwrap();
        cold.push(time_load(&options(cache.path())));
    }
    let cache = tempfile::tempdir().unwrap();
    time_load(&options(cache.path()));
    let mut warm: Vec<Duration> = (0..10).map(|_| time_load(&options(cache.path()))).collect();
    let (cold, warm) = (summarize(&mut cold), summarize(&mut warm));
    println!("## Startup to ready: load the seven first-party plugins (Registry::load)");
    println!("| cache | runs | p50 | max |");
    println!("|---|---|---|---|");
    println!(
        "| cold (compile) | {} | {} | {} |",
        cold.n,
        ms(cold.p50),
        ms(cold.p99)
    );
    println!(
        "| warm (compile cache) | {} | {} | {} |\n",
        warm.n,
        ms(warm.p50),
        ms(warm.p99)
    );
}

fn time_load(options: &LoadOptions) -> Duration {
    let start = Instant::now();
    let registry = Registry::load(options).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(
        registry.report().loaded.len(),
        PLUGINS.len(),
        "{:#?}",
        registry.report().failed
    );
    elapsed
}

/// Minor page faults of this process so far (Linux), to explain call costs.
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.rsplit(')').next().map(str::to_owned))
        .and_then(|rest| rest.split_whitespace().nth(7).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Compiling each plugin language's component, cold (fresh cache) and warm.
fn plugin_compile(rt: &tokio::runtime::Runtime) {
    let _guard = rt.enter();
    println!("## Load one plugin: compile (fresh cache) and compile-cache hit");
    println!("| plugin | language | component | cold p50 | warm p50 |");
    println!("|---|---|---|---|---|");
    for (plugin, language) in [
        ("calculator", "Rust"),
        ("stats", "Python"),
        ("json-tools", "JavaScript"),
    ] {
        let size = std::fs::metadata(launch_tests::plugin_wasm(plugin))
            .unwrap()
            .len();
        let load = |dir: &PluginDir| {
            let start = Instant::now();
            assert_eq!(dir.load().report().loaded.len(), 1);
            start.elapsed()
        };
        let mut cold: Vec<Duration> = (0..3)
            .map(|_| load(&PluginDir::with_private_cache().plugin(plugin)))
            .collect();
        let dir = PluginDir::with_private_cache().plugin(plugin);
        load(&dir);
        let mut warm: Vec<Duration> = (0..5).map(|_| load(&dir)).collect();
        println!(
            "| {plugin} | {language} | {:.1} MB | {} | {} |",
            size as f64 / 1e6,
            ms(summarize(&mut cold).p50),
            ms(summarize(&mut warm).p50)
        );
    }
    println!();
}

/// p50 of other first-party tools, for comparison with `calculator`.
fn other_tools(rt: &tokio::runtime::Runtime) {
    let dir = PluginDir::new()
        .plugin("clock")
        .plugin("text")
        .plugin("stats")
        .plugin("json-tools");
    let registry = dir.load();
    println!("## Other tools: p50 of 2,000 sequential calls");
    println!("| tool | arguments | p50 | p99 |");
    println!("|---|---|---|---|");
    for (tool, args) in [
        ("clock_now", json!({})),
        ("clock_now", json!({"time-zone": "Europe/Paris"})),
        ("text_slugify", json!({"text": "Hello, World!"})),
        // Python (componentize-py) and JavaScript (componentize-js) plugins.
        ("stats_describe", json!({"values": [1.0, 2.0, 3.5, 10.0]})),
        (
            "json_tools_query",
            json!({"document": r#"{"users": [{"name": "Ada"}, {"name": "Grace"}]}"#, "path": "$.users[*].name"}),
        ),
    ] {
        let tool_ref = registry.get(tool).unwrap().clone();
        let mut samples: Vec<Duration> = rt.block_on(async {
            let mut v = Vec::new();
            for i in 0..2_200 {
                let start = Instant::now();
                tool_ref.call(&args).await.unwrap();
                if i >= 200 {
                    v.push(start.elapsed());
                }
            }
            v
        });
        let s = summarize(&mut samples);
        println!("| {tool} | `{args}` | {} | {} |", us(s.p50), us(s.p99));
    }
    println!();
}
