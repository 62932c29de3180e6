//! Tracing: `launch chat` against the mock LLM exports its spans (turn, LLM
//! call, tool call) to an OTLP/HTTP collector, without message contents.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, launch_bin};
use serde_json::json;

#[tokio::test]
async fn chat_exports_spans_over_otlp_without_message_contents() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = received.clone();
    let collector = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let mock = MockLlm::start().await;
    mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "6 * 7"}),
    ));
    mock.push(Reply::text("It is 42."));
    let dir = PluginDir::new().plugin("calculator");
    let out = tokio::process::Command::new(launch_bin())
        .args(["chat", "What is SECRET-QUESTION-6x7?"])
        .env("LAUNCH_PLUGINS_DIR", dir.path())
        .env("LAUNCH_DATA_DIR", dir.path().join(".data"))
        .env("LAUNCH_LLM_BASE_URL", mock.base_url())
        .env("LAUNCH_LLM_API_KEY", "test-key")
        .env(
            "LAUNCH_OTLP_ENDPOINT",
            format!("http://{collector_addr}/v1/traces"),
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "It is 42.");
    assert!(stderr.contains("-> calculator_evaluate"), "{stderr}");

    let bodies = received.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no spans reached the collector");
    let all: Vec<u8> = bodies.concat();
    let has = |needle: &str| all.windows(needle.len()).any(|w| w == needle.as_bytes());
    for span in ["agent_turn", "llm_call", "tool_call", "calculator_evaluate"] {
        assert!(
            has(span),
            "span or attribute {span} missing from the export"
        );
    }
    assert!(
        !has("SECRET-QUESTION"),
        "message contents must not be exported"
    );
}

#[test]
fn chat_without_a_key_says_what_to_set() {
    let dir = PluginDir::new();
    let out = std::process::Command::new(launch_bin())
        .args(["chat", "hello"])
        .env("LAUNCH_PLUGINS_DIR", dir.path())
        .env("LAUNCH_DATA_DIR", dir.path().join(".data"))
        .env_remove("LAUNCH_LLM_API_KEY")
        .env_remove("TOGETHER_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no API key") && stderr.contains("LAUNCH_LLM_API_KEY"),
        "{stderr}"
    );
}
