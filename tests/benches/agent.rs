//! Agent-loop benchmark (issue: LLM client and agent loop): one chat turn with
//! two tool calls (calculator + clock) against a zero-latency mock LLM over
//! loopback HTTP; host-side time is the turn minus the mock's round trips.
//!
//! Run with `make bench`. Prints Markdown rows for BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use launch::agent::{Agent, AgentConfig};
use launch::llm::{LlmClient, Message, ProviderConfig};
use launch_tests::PluginDir;
use launch_tests::mock_llm::{MockLlm, Reply, ToolCall, provider_config};
use launch_tests::stats::{machine, summarize, us};
use serde_json::{Value, json};

const TURNS: usize = 2_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("machine: {}\n", machine());
    rt.block_on(turn_overhead());
}

fn script(body: &Value) -> Reply {
    let last_is_tool = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    if last_is_tool {
        Reply::text("It is 14 and the clock says now.")
    } else {
        Reply::ToolCalls(vec![
            ToolCall::new("calculator_evaluate", json!({"expression": "2 * 7"})),
            ToolCall::new("clock_now", json!({"time-zone": "Europe/Paris"})),
        ])
    }
}

async fn turn_overhead() {
    let mock = MockLlm::start().await;
    mock.respond_with(script);
    let dir = PluginDir::new().plugin("calculator").plugin("clock");
    let registry = Arc::new(dir.load());
    let provider = ProviderConfig {
        request_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(10),
        max_retries: 0,
        ..provider_config(&mock)
    };
    let config = AgentConfig {
        system_prompt: "bench".into(),
        max_iterations: 10,
        turn_timeout: Duration::from_secs(30),
        max_parallel_tools: 4,
        summarize_on_limit: false,
    };
    let agent = Agent::new(registry, LlmClient::new(provider.clone()).unwrap(), config);
    let history = [Message::user(
        "What is 2 * 7, and what time is it in Paris?",
    )];

    // The mock's share: the exact two requests the agent sends (captured from
    // one turn), replayed by a bare HTTP client. The mock parses and answers
    // them just as it does for the agent, so their round trip is the mock's
    // time plus loopback HTTP.
    agent.run(&history, None).await.unwrap();
    let bodies: Vec<Value> = mock.chat_requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 2);
    mock.set_recording(false);
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", mock.base_url());
    let mut bare = Vec::with_capacity(TURNS);
    let mut turns = Vec::with_capacity(TURNS);
    for i in 0..TURNS + 200 {
        let start = Instant::now();
        for body in &bodies {
            let r = http.post(&url).json(body).send().await.unwrap();
            std::hint::black_box(r.bytes().await.unwrap());
        }
        let b = start.elapsed();
        let start = Instant::now();
        let out = agent.run(&history, None).await.unwrap();
        let t = start.elapsed();
        assert_eq!(out.steps.len(), 2);
        assert!(out.steps.iter().all(|s| s.error.is_none()));
        if i >= 200 {
            bare.push(b);
            turns.push(t);
        }
    }
    let host: Vec<Duration> = turns
        .iter()
        .zip(&bare)
        .map(|(t, b)| t.saturating_sub(*b))
        .collect();
    let (turns, bare, mut host) = (
        summarize(&mut turns.clone()),
        summarize(&mut bare.clone()),
        host,
    );
    let host = summarize(&mut host);
    println!(
        "## Agent turn: two tool calls (calculator + clock) against a zero-latency mock, {} turns",
        turns.n
    );
    println!("| measure | p50 | p90 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| whole turn (2 model calls over loopback HTTP + 2 tool calls) | {} | {} | {} |",
        us(turns.p50),
        us(turns.p90),
        us(turns.p99)
    );
    println!(
        "| the mock's share (the same 2 requests from a bare HTTP client) | {} | {} | {} |",
        us(bare.p50),
        us(bare.p90),
        us(bare.p99)
    );
    println!(
        "| host-side (turn minus mock share, per turn) | {} | {} | {} |\n",
        us(host.p50),
        us(host.p90),
        us(host.p99)
    );
}
