//! A bounded load test against a real `launch serve`: 2,000 direct tool
//! invocations and 2,000 chat completions (one tool call, then the answer,
//! from a zero-latency mock LLM), 64 at a time each, all of which must
//! succeed with the right result. The whole test stops by itself after 120 s.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, Server};
use serde_json::{Value, json};

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 64;
const BOUND: Duration = Duration::from_secs(120);

/// A calculator call on the user's expression, then "The answer is RESULT."
fn script(body: &Value) -> Reply {
    let last = body["messages"].as_array().and_then(|m| m.last());
    let Some(last) = last else {
        return Reply::error(400, "mock LLM: no messages");
    };
    let text = last["content"].as_str().unwrap_or("");
    if last["role"] == "tool" {
        Reply::text(format!("The answer is {text}."))
    } else {
        Reply::tool("calculator_evaluate", json!({"expression": text}))
    }
}

/// The calculator's result for an integer, as JSON text (`4` -> `4.0`).
fn number(n: usize) -> String {
    json!(n as f64).to_string()
}

/// Runs `REQUESTS` calls of `one` (given the request index) `CONCURRENCY` at
/// a time; returns the failures and the elapsed time.
async fn run<F, Fut>(label: &str, one: F) -> (Vec<String>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let failures: Vec<String> = futures::stream::iter((0..REQUESTS).map(one))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "{label}: {REQUESTS} requests at concurrency {CONCURRENCY} in {:.2} s ({:.0} req/s), {} failed",
        elapsed.as_secs_f64(),
        REQUESTS as f64 / elapsed.as_secs_f64(),
        failures.len()
    );
    (failures, elapsed)
}

async fn invoke(http: &reqwest::Client, url: &str, i: usize) -> Result<(), String> {
    let r = http
        .post(url)
        .json(&json!({"expression": format!("{i} + 1")}))
        .send()
        .await
        .map_err(|e| format!("invoke {i}: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("invoke {i}: {e}"))?;
    if status != 200 || body["result"] != json!((i + 1) as f64) {
        return Err(format!("invoke {i}: {status} {body}"));
    }
    Ok(())
}

async fn chat(http: &reqwest::Client, url: &str, i: usize) -> Result<(), String> {
    let r = http
        .post(url)
        .json(&json!({"messages": [{"role": "user", "content": format!("{i} * 2")}]}))
        .send()
        .await
        .map_err(|e| format!("chat {i}: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("chat {i}: {e}"))?;
    let expected = format!("The answer is {}.", number(i * 2));
    let step = &body["launch"]["steps"][0];
    if status != 200
        || body["choices"][0]["message"]["content"] != expected.as_str()
        || step["name"] != "calculator_evaluate"
        || step["result"] != json!((i * 2) as f64)
    {
        return Err(format!("chat {i}: {status} {body}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_invocations_and_turns_without_an_error() {
    let mock = MockLlm::start().await;
    mock.respond_with(script);
    // Flat memory over thousands of requests.
    mock.set_recording(false);
    let dir = PluginDir::new().plugin("calculator");
    let base = mock.base_url();
    let s = Server::start(
        dir.path(),
        &[
            ("LAUNCH_LLM_BASE_URL", base.as_str()),
            ("LAUNCH_LLM_MODEL", "mock-model"),
            ("LAUNCH_LLM_API_KEY", "test-key"),
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "0"),
            ("LAUNCH_MAX_CONCURRENT_TURNS", "256"),
        ],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let invoke_url = format!("{}/v1/tools/calculator_evaluate/invoke", s.url);
    let chat_url = format!("{}/v1/chat/completions", s.url);

    let load = async {
        let (invoke_failures, _) = run("tool invocations", |i| invoke(&http, &invoke_url, i)).await;
        let (chat_failures, _) = run("chat completions", |i| chat(&http, &chat_url, i)).await;
        (invoke_failures, chat_failures)
    };
    let (invoke_failures, chat_failures) = tokio::time::timeout(BOUND, load)
        .await
        .unwrap_or_else(|_| panic!("the load did not finish within {} s", BOUND.as_secs()));

    assert!(
        invoke_failures.is_empty(),
        "{} of {REQUESTS} tool invocations failed; first: {:?}",
        invoke_failures.len(),
        &invoke_failures[..invoke_failures.len().min(5)]
    );
    assert!(
        chat_failures.is_empty(),
        "{} of {REQUESTS} chat completions failed; first: {:?}",
        chat_failures.len(),
        &chat_failures[..chat_failures.len().min(5)]
    );
    // Two model calls per turn, none retried.
    assert_eq!(mock.request_count(), 2 * REQUESTS);
    // The server is still healthy afterwards.
    let health = http.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
