//! The HTTP API over real HTTP: OpenAI-compatible chat (plain and streamed)
//! with tool steps in the `launch` extension, tools, models, and every error
//! as an OpenAI error body with the right status.

#![allow(clippy::unwrap_used)]

use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server(mock: &MockLlm, key: Option<&str>) -> (PluginDir, Server) {
    let dir = PluginDir::new()
        .plugin("calculator")
        .fixture("kitchen-sink");
    let base = mock.base_url();
    let mut env = vec![
        ("LAUNCH_LLM_BASE_URL", base.as_str()),
        ("LAUNCH_LLM_MODEL", "mock-model"),
    ];
    if let Some(k) = key {
        env.push(("LAUNCH_LLM_API_KEY", k));
    }
    let server = Server::start_with(dir.path(), &env, key.is_none());
    (dir, server)
}

async fn error_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    for key in ["message", "type", "param", "code"] {
        assert!(
            body["error"].get(key).is_some(),
            "missing error.{key}: {body}"
        );
    }
    body["error"].clone()
}

#[tokio::test]
async fn tools_models_and_direct_invocation() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, Some("k")).await;
    let http = reqwest::Client::new();
    let models: Value = http
        .get(format!("{}/v1/models", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "mock-model");
    let tools: Value = http
        .get(format!("{}/v1/tools", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tools["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "calculator_evaluate")
    );
    let r: Value = http
        .post(format!("{}/v1/tools/calculator_evaluate/invoke", s.url))
        .json(&json!({"expression": "2 + 2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], json!(4.0));

    let e = error_of(
        http.post(format!("{}/v1/tools/nope/invoke", s.url))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(e["code"], "unknown_tool");
    let e = error_of(
        http.post(format!("{}/v1/tools/kitchen_sink_echo_u8/invoke", s.url))
            .json(&json!({"value": 300}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("`$.value`: expected an integer from 0 to 255"),
        "{e}"
    );
    let e = error_of(
        http.post(format!("{}/v1/tools/kitchen_sink_fail/invoke", s.url))
            .json(&json!({"message": "no"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (Some("tool_error"), Some("no"))
    );
}

#[tokio::test]
async fn malformed_requests_get_precise_4xx() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, Some("k")).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", s.url);
    let json_body = |b: &str| {
        http.post(&url)
            .header("content-type", "application/json")
            .body(b.to_owned())
    };
    let e = error_of(
        json_body("{\"messages\": [").send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["code"], "invalid_json");
    let e = error_of(
        json_body("{\"messages\": \"hi\"}").send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("messages"), "{e}");
    let e = error_of(
        json_body("{\"messages\": []}").send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["param"], "messages");
    let e = error_of(
        json_body("{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["param"], "messages[0].role");
    let e = error_of(
        http.post(&url).body("hello").send().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("application/json"));
    // The server answers 413 without reading the body and closes that
    // connection, so this one goes on its own client.
    let huge = format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}",
        "x".repeat(5 << 20)
    );
    let oversized = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(huge);
    error_of(
        oversized.send().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    error_of(
        http.get(format!("{}/v1/nothing", s.url))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(mock.request_count(), 0, "no bad request reached the model");
}

#[tokio::test]
async fn chat_completions_plain_returns_the_answer_and_steps() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, Some("k")).await;
    mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "6 * 7"}),
    ));
    mock.push(Reply::text("42"));
    let r: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&json!({"model": "anything", "messages": [{"role": "user", "content": [{"type": "text", "text": "6*7?"}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(
        r["choices"][0]["message"],
        json!({"role": "assistant", "content": "42"})
    );
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    assert_eq!(r["launch"]["steps"][0]["name"], "calculator_evaluate");
    assert_eq!(r["launch"]["steps"][0]["result"], json!(42.0));
}

#[tokio::test]
async fn chat_completions_streamed_carries_tokens_and_steps() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, Some("k")).await;
    mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "6 * 7"}),
    ));
    mock.push(Reply::text("The answer is forty two."));
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "6*7?"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["choices"][0]["index"] == 0)
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "The answer is forty two.");
    let kinds: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["launch"]["type"].as_str())
        .collect();
    assert_eq!(kinds, ["tool_started", "tool_finished", "done"]);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn chat_without_a_key_is_a_clear_503_and_tools_still_work() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, None).await;
    let http = reqwest::Client::new();
    let ready: Value = http
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["llm"]["configured"], false);
    let e = error_of(
        http.post(format!("{}/v1/chat/completions", s.url))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("LAUNCH_LLM_API_KEY"),
        "{e}"
    );
    let r = http
        .post(format!("{}/v1/tools/calculator_evaluate/invoke", s.url))
        .json(&json!({"expression": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn provider_failure_is_a_502_naming_the_provider() {
    let mock = MockLlm::start().await;
    let (_d, s) = server(&mock, Some("k")).await;
    mock.push(Reply::error(401, "invalid api key"));
    let e = error_of(
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", s.url))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("invalid api key"),
        "{e}"
    );
}
