//! Sandbox benchmarks (issue: sandbox): what the always-on limits cost per
//! call, and how quickly a caller gets the timeout error after the deadline.
//!
//! Run with `make bench`. Prints Markdown rows for BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use launch::plugins::engine::{EPOCH_TICK, config};
use launch_tests::stats::{machine, ms, summarize, us};
use launch_tests::{PluginDir, plugin_wasm};
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
    rt.block_on(limits_overhead());
    rt.block_on(timeout_latency());
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
