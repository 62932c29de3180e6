//! Prometheus metrics: one process-wide recorder, a middleware that counts
//! and times every request by route, and `GET /metrics`. Tool, LLM and turn
//! metrics are recorded where those things happen (`metrics` macros).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): from a tool call's tens of microseconds to a
/// long agent turn.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The process's recorder, installed on first use (the `metrics` facade
/// allows one per process; every router in it shares this one).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                if metrics::set_global_recorder(recorder).is_err() {
                    tracing::warn!("another metrics recorder is installed; /metrics will be empty");
                }
                describe();
                handle
            }
            // The bucket list is a constant; this cannot fail with it, but a
            // metrics fault must never stop the server.
            Err(e) => {
                tracing::warn!("metrics disabled: {e}");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "launch_http_requests_total",
        "HTTP requests by method, route and status"
    );
    describe_histogram!(
        "launch_http_request_duration_seconds",
        "HTTP request latency by route (to the response head; streams end later)"
    );
    describe_counter!(
        "launch_tool_calls_total",
        "Tool calls by tool and outcome (ok or the error code)"
    );
    describe_histogram!(
        "launch_tool_call_duration_seconds",
        "Tool call latency by tool"
    );
    describe_counter!(
        "launch_mcp_requests_total",
        "MCP requests by method (initialize, tools/list, tools/call) and transport (http, stdio)"
    );
    describe_counter!(
        "launch_llm_requests_total",
        "Requests to the LLM provider by provider and outcome"
    );
    describe_histogram!(
        "launch_llm_request_duration_seconds",
        "LLM request latency by provider"
    );
    describe_counter!(
        "launch_llm_tokens_total",
        "Tokens reported by the provider, by kind (prompt, completion)"
    );
    describe_counter!(
        "launch_turns_total",
        "Agent turns by finish reason (or error)"
    );
    describe_gauge!("launch_turns_active", "Agent turns running now");
    describe_gauge!("launch_sessions_active", "Sessions with a turn running now");
    describe_gauge!("launch_sessions_stored", "Sessions in the store");
}

/// Middleware: counts and times each request under its route pattern (so
/// ids in paths do not explode the label set).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("launch_http_requests_total", "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("launch_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn render() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
}
