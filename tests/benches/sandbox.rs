//! Sandbox benchmarks (issues 3 and 14): what the always-on limits cost per
//! call, how quickly a caller gets the timeout error after the deadline, how
//! much host memory a maximally amplifying result costs the server, and how
//! fast a calm plugin answers while another spins at its full concurrency.
//!
//! Run with `make bench`. Prints Markdown rows for BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use launch::plugins::engine::{EPOCH_TICK, config};
use launch_tests::stats::{machine, ms, summarize, us};
use launch_tests::{PluginDir, Server, peak_rss, plugin_wasm};
use serde_json::json;
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("machine: {}\n", machine());
    // `cargo bench --bench sandbox -- NAME` runs only the sections containing NAME.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("limits_overhead") {
        rt.block_on(limits_overhead());
    }
    if wanted("timeout_latency") {
        rt.block_on(timeout_latency());
    }
    if wanted("amplification_memory") {
        rt.block_on(amplification_memory());
    }
    if wanted("cpu_fairness") {
        rt.block_on(cpu_fairness());
    }
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Instantiate + call `calculator.evaluate` with Launch's engine configuration,
/// with or without the epoch deadline and the memory limiter.
struct Harness {
    engine: Engine,
    pre: wasmtime::component::InstancePre<State>,
    export: wasmtime::component::ComponentExportIndex,
    limited: bool,
}

impl Harness {
    fn new(limited: bool) -> Self {
        let mut cfg = config(false);
        cfg.epoch_interruption(limited);
        let engine = Engine::new(&cfg).unwrap();
        let component = Component::from_file(&engine, plugin_wasm("calculator")).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        linker.define_unknown_imports_as_traps(&component).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let export = component.get_export_index(None, "evaluate").unwrap();
        Self {
            engine,
            pre,
            export,
            limited,
        }
    }

    async fn call(&self) -> Duration {
        let start = Instant::now();
        let limits = StoreLimitsBuilder::new()
            .memory_size(64 << 20)
            .instances(64)
            .tables(64)
            .build();
        let state = State {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits,
        };
        let mut store = Store::new(&self.engine, state);
        if self.limited {
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(1000);
            store.epoch_deadline_trap();
        }
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        let func = instance.get_func(&mut store, self.export).unwrap();
        let mut results = [Val::Bool(false)];
        func.call_async(
            &mut store,
            &[Val::String("2 * (3 + 4) - sqrt(16) / 2".into())],
            &mut results,
        )
        .await
        .unwrap();
        start.elapsed()
    }
}

async fn limits_overhead() {
    let with = Harness::new(true);
    let without = Harness::new(false);
    // Interleave rounds so drift in the machine's speed hits both equally.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..12 {
        for _ in 0..2_000 {
            let (x, y) = (with.call().await, without.call().await);
            if round > 1 {
                a.push(x);
                b.push(y);
            }
        }
    }
    let (a, b) = (summarize(&mut a), summarize(&mut b));
    println!(
        "## Cost of the limits: instantiate + call calculator.evaluate, {} calls each, interleaved",
        a.n
    );
    println!("| configuration | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| epoch deadline + memory limiter (as Launch runs) | {} | {} |",
        us(a.p50),
        us(a.p99)
    );
    println!("| neither | {} | {} |", us(b.p50), us(b.p99));
    println!(
        "| difference (p50) | {:+.1}% | |\n",
        (a.p50.as_secs_f64() / b.p50.as_secs_f64() - 1.0) * 100.0
    );
}

async fn timeout_latency() {
    let dir = PluginDir::new()
        .fixture("spin")
        .manifest("spin", "[limits]\ntimeout_ms = 100\n");
    let registry = dir.load();
    let deadline = Duration::from_millis(100);
    let mut late = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let err = registry.call("spin_forever", &json!({})).await.unwrap_err();
        assert_eq!(err.code(), "timeout");
        late.push(start.elapsed().saturating_sub(deadline));
    }
    let late = summarize(&mut late);
    println!(
        "## Deadline to timeout error: spin_forever with timeout_ms = 100, {} runs",
        late.n
    );
    println!("| tick | overshoot p50 | overshoot max | max / tick |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.2} |\n",
        ms(EPOCH_TICK),
        ms(late.p50),
        ms(late.p99),
        late.p99.as_secs_f64() / EPOCH_TICK.as_secs_f64()
    );
}

/// Each amplifying result type with two sizes: the most elements whose JSON
/// still fits the 1 MiB output limit (the call succeeds: lifted values, JSON
/// text and the parsed result all exist), and about the most elements the
/// type's hostcall fuel lets the host lift (the call fails once the JSON text
/// passes the limit). Bigger lists fail before anything is lifted.
const AMPLIFIERS: [(&str, &str, u32, u32); 3] = [
    (
        "amplify_flags_list",
        "`list<flags>` (32 flags, all set)",
        7_600,
        13_000,
    ),
    ("amplify_results_list", "`list<result>`", 87_000, 400_000),
    (
        "amplify_records_list",
        "`list<record>` (8 bools)",
        13_900,
        19_000,
    ),
];

async fn amplification_memory() {
    println!(
        "## Host memory for amplifying results at the 1 MiB output limit (`launch serve`, peak RSS growth over a warmed-up server)"
    );
    println!("| result type | elements | outcome | one call | three at once |");
    println!("|---|---|---|---|---|");
    let dir = PluginDir::new().wat("amplify", "amplify");
    let client = reqwest::Client::new();
    for (tool, what, fits, most) in AMPLIFIERS {
        for n in [fits, most] {
            let mut growth = Vec::new();
            let mut status = 0;
            for parallel in [1usize, 3] {
                let server = Server::start(dir.path(), &[]);
                let url = format!("{}/v1/tools/{tool}/invoke", server.url);
                let warm = client
                    .post(&url)
                    .json(&json!({"n": 10}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(warm.status(), 200);
                let baseline = peak_rss(server.pid());
                let calls: Vec<_> = (0..parallel)
                    .map(|_| {
                        let (client, url) = (client.clone(), url.clone());
                        tokio::spawn(async move {
                            let reply = client
                                .post(url)
                                .json(&json!({"n": n}))
                                .send()
                                .await
                                .unwrap();
                            let status = reply.status().as_u16();
                            reply.bytes().await.unwrap();
                            status
                        })
                    })
                    .collect();
                for call in calls {
                    status = call.await.unwrap();
                }
                growth.push(peak_rss(server.pid()).saturating_sub(baseline));
            }
            let outcome = if status == 200 {
                "result returned"
            } else {
                "output_too_large"
            };
            println!(
                "| {what} | {n} | {outcome} | {:.1} MiB | {:.1} MiB |",
                growth[0] as f64 / 1048576.0,
                growth[1] as f64 / 1048576.0
            );
        }
    }
    println!();
}

async fn cpu_fairness() {
    let dir = PluginDir::new()
        .fixture("spin")
        .manifest("spin", "[limits]\ntimeout_ms = 30000\n")
        .plugin("calculator");
    let registry = std::sync::Arc::new(dir.load());
    let args = json!({"expression": "2 * (3 + 4)"});
    let calm = |registry: std::sync::Arc<launch::plugins::Registry>| {
        let args = args.clone();
        async move {
            let mut samples = Vec::new();
            for _ in 0..200 {
                let start = Instant::now();
                registry.call("calculator_evaluate", &args).await.unwrap();
                samples.push(start.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            summarize(&mut samples)
        }
    };
    let alone = calm(registry.clone()).await;
    let spinning: Vec<_> = (0..32)
        .map(|_| {
            let r = registry.clone();
            tokio::spawn(async move { r.call("spin_forever", &json!({})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let beside = calm(registry.clone()).await;
    for call in &spinning {
        call.abort();
    }
    println!(
        "## A calm plugin beside a spinning one: calculator_evaluate, {} calls 5 ms apart, while 32 calls of spin_forever run (spin's full concurrency)",
        beside.n
    );
    println!("| condition | p50 | p99 |");
    println!("|---|---|---|");
    println!("| alone | {} | {} |", ms(alone.p50), ms(alone.p99));
    println!(
        "| beside 32 spinning calls | {} | {} |\n",
        ms(beside.p50),
        ms(beside.p99)
    );
}
