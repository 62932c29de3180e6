//! HTTP throughput of a real `launch serve` under `wrk` (Debian package
//! `wrk`): 2 threads, 64 connections, `--latency`, against
//!
//! - `invoke`: `POST /v1/tools/calculator_evaluate/invoke` (target ≥ 10,000 req/s);
//! - `chat`: `POST /v1/chat/completions`, not streamed, each turn one
//!   calculator call and the answer from a zero-latency mock LLM (two model
//!   calls per turn; target ≥ 1,000 turns/s).
//!
//! The mock runs in this process, so wrk, the server and the mock share the
//! machine's cores. Each scenario runs `LAUNCH_BENCH_RUNS` times (default 3)
//! for `LAUNCH_BENCH_SECS` seconds (default 10) after a short warm-up; the
//! medians are printed as Markdown rows for BENCHMARKS.md. The wrk scripts
//! are in `tests/benches/wrk/`; their `done()` prints one `WRK_RESULT` line
//! that is parsed here.
//!
//! - `flood`: `/healthz` latency on a fresh connection each time while
//!   3,000 idle and dripping connections are held open against a server
//!   whose open-file limit is 2,048 (soft and hard), more than it has
//!   descriptors for: 500 requests (`LAUNCH_FLOOD_PROBES`), each given 2 s.
//!
//! Run: `cargo bench -p launch-tests --bench http [invoke|chat|flood]`.
//! `LAUNCH_TEST_BIN=path` benchmarks another build of `launch`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;

use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::stats::machine;
use launch_tests::{PluginDir, Server, repo_root};
use serde_json::{Value, json};

const THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;

/// One calculator call on the user's text, then the answer.
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

struct Scenario {
    name: &'static str,
    path: &'static str,
    script: &'static str,
    unit: &'static str,
    target: f64,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "invoke",
        path: "/v1/tools/calculator_evaluate/invoke",
        script: "invoke.lua",
        unit: "req/s",
        target: 10_000.0,
    },
    Scenario {
        name: "chat",
        path: "/v1/chat/completions",
        script: "chat.lua",
        unit: "turns/s",
        target: 1_000.0,
    },
];

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wrk_dir() -> PathBuf {
    repo_root().join("tests/benches/wrk")
}

fn require_wrk() {
    // wrk has no --version that exits 0; `-v` prints the version and usage.
    match std::process::Command::new("wrk").arg("-v").output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            println!("load generator: {}", text.lines().next().unwrap_or("wrk"));
        }
        Err(e) => {
            eprintln!(
                "wrk is not runnable ({e}); install it (`apt-get install wrk`, or `make setup`)"
            );
            std::process::exit(1);
        }
    }
}

/// Parses the `WRK_RESULT key=value...` line printed by `report.lua`.
fn parse(output: &str) -> Option<Run> {
    let line = output.lines().find(|l| l.starts_with("WRK_RESULT "))?;
    let fields: HashMap<&str, u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let requests = fields["requests"];
    let secs = fields["duration_us"] as f64 / 1e6;
    let errors = [
        "connect_errors",
        "read_errors",
        "write_errors",
        "status_errors",
        "timeouts",
    ]
    .iter()
    .map(|k| fields[k])
    .sum();
    Some(Run {
        requests,
        rps: requests as f64 / secs,
        p50_ms: fields["p50_us"] as f64 / 1e3,
        p99_ms: fields["p99_us"] as f64 / 1e3,
        errors,
    })
}

async fn wrk(url: &str, scenario: &Scenario, secs: u64) -> (Run, String) {
    let script = wrk_dir().join(scenario.script);
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{secs}s"))
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(&script)
        .arg(format!("{url}{}", scenario.path))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = parse(&stdout).unwrap_or_else(|| {
        panic!(
            "no WRK_RESULT line in wrk's output ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (run, stdout)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// One request of each kind, checked, before measuring.
async fn check_answers(url: &str) {
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{url}/v1/tools/calculator_evaluate/invoke"))
        .json(&json!({"expression": "2 * (3 + 4)"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], json!(14.0), "{r}");
    let r: Value = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"messages": [{"role": "user", "content": "2 * (3 + 4)"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["choices"][0]["message"]["content"], "The answer is 14.0.",
        "{r}"
    );
    assert_eq!(r["launch"]["steps"][0]["result"], json!(14.0), "{r}");
}

async fn bench(filter: Option<String>) {
    let secs = env_number("LAUNCH_BENCH_SECS", 10);
    let runs = env_number("LAUNCH_BENCH_RUNS", 3).max(1);
    let mock = MockLlm::start().await;
    mock.respond_with(script);
    mock.set_recording(false);
    let dir = PluginDir::new().plugin("calculator");
    let base = mock.base_url();
    let server = Server::start(
        dir.path(),
        &[
            ("LAUNCH_LLM_BASE_URL", base.as_str()),
            ("LAUNCH_LLM_MODEL", "mock-model"),
            ("LAUNCH_LLM_API_KEY", "test-key"),
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "0"),
            ("LAUNCH_MAX_CONCURRENT_TURNS", "256"),
        ],
    );
    check_answers(&server.url).await;
    println!(
        "wrk -t{THREADS} -c{CONNECTIONS} -d{secs}s --latency, {runs} runs per scenario, medians; \
         wrk, `launch serve` and the mock LLM share the cores\n"
    );
    let mut rows = Vec::new();
    for scenario in SCENARIOS {
        if filter.as_deref().is_some_and(|f| f != scenario.name) {
            continue;
        }
        // Warm-up: connections, instance pools, caches.
        let _ = wrk(&server.url, scenario, 2).await;
        let mut results = Vec::new();
        let llm_before = mock.request_count();
        for i in 1..=runs {
            let (run, output) = wrk(&server.url, scenario, secs).await;
            println!(
                "{} run {i}: {:.0} {} (p50 {:.2} ms, p99 {:.2} ms, {} requests, {} errors)",
                scenario.name,
                run.rps,
                scenario.unit,
                run.p50_ms,
                run.p99_ms,
                run.requests,
                run.errors
            );
            if run.errors > 0 {
                println!("{output}");
            }
            results.push(run);
        }
        let llm_calls = mock.request_count() - llm_before;
        let requests: u64 = results.iter().map(|r| r.requests).sum();
        if scenario.name == "chat" {
            // wrk stops mid-request; those turns still reach the mock.
            println!(
                "chat: {llm_calls} model calls for {requests} completed turns ({:.3} per turn)",
                llm_calls as f64 / requests as f64
            );
        }
        let rps = median(results.iter().map(|r| r.rps).collect());
        let p50 = median(results.iter().map(|r| r.p50_ms).collect());
        let p99 = median(results.iter().map(|r| r.p99_ms).collect());
        let errors: u64 = results.iter().map(|r| r.errors).sum();
        let verdict = if rps >= scenario.target {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "{}: median {rps:.0} {} (target ≥ {:.0}: {verdict}), p50 {p50:.2} ms, p99 {p99:.2} ms, {errors} errors\n",
            scenario.name, scenario.unit, scenario.target
        );
        rows.push(format!(
            "| {} `{}` | {rps:.0} {} | {p50:.2} ms | {p99:.2} ms | {errors} |",
            scenario.name, scenario.path, scenario.unit
        ));
    }
    println!("machine: {}\n", machine());
    println!("| scenario | throughput (median) | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    drop(server);
}

/// Connections held open by the flood.
const FLOOD_CONNECTIONS: usize = 3_000;
/// Health checks measured during it (`LAUNCH_FLOOD_PROBES`).
const FLOOD_PROBES: u64 = 500;

async fn flood() {
    use tokio::io::AsyncWriteExt;
    let dir = PluginDir::new().plugin("calculator");
    let server = Server::start_with_fd_limit(dir.path(), &[], "-n 2048");
    let host = server.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::with_capacity(FLOOD_CONNECTIONS);
    let mut failed_connects = 0;
    for i in 0..FLOOD_CONNECTIONS {
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::net::TcpStream::connect(&host),
        )
        .await
        {
            Ok(Ok(mut c)) => {
                if i % 2 == 1 {
                    let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHo").await;
                }
                held.push(c);
            }
            _ => {
                // The server stopped accepting (the backlog is full): more
                // attempts would only wait out their timeouts.
                failed_connects += 1;
                if failed_connects == 20 {
                    break;
                }
            }
        }
    }
    // One fresh connection per probe: the accept path is what a flood hurts.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    let probes = env_number("LAUNCH_FLOOD_PROBES", FLOOD_PROBES);
    let mut latencies = Vec::new();
    let mut failures = 0;
    for _ in 0..probes {
        let started = std::time::Instant::now();
        match http.get(format!("{}/healthz", server.url)).send().await {
            Ok(r) if r.status().is_success() => {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0)
            }
            _ => failures += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "flood: {} connections held ({failed_connects} could not connect); /healthz on fresh connections: \
         {} of {probes} answered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        held.len(),
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    if failures > 0 {
        println!("flood: {failures} health checks failed or took over 2 s");
    }
    println!("machine: {}", machine());
    drop(held);
}

fn main() {
    // `cargo bench` passes `--bench`; a bare word selects one scenario.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref() == Some("flood") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(flood());
        return;
    }
    require_wrk();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(filter));
}
