//! Tests of the mock OpenAI-compatible server itself, over real HTTP with
//! reqwest, so the agent tests can trust what it sends.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use launch_tests::mock_llm::*;
use serde_json::{Value, json};

async fn post_chat(mock: &MockLlm, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("test-key")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    })
}

/// The JSON payloads of an SSE body, with `[DONE]` kept as a string.
fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

fn parse_chunks(payloads: &[String]) -> Vec<Value> {
    payloads
        .iter()
        .filter(|p| *p != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn text_reply_non_streaming() {
    let mock = MockLlm::start().await;
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    assert!(mock.base_url().ends_with("/v1"));
    mock.push(Reply::text("Hello there, human."));

    let resp = post_chat(&mock, chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], "chatcmpl-mock-1");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "gpt-test");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello there, human.");
    assert!(choice["message"].get("tool_calls").is_none());
    let usage = &v["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), p + c);
}

#[tokio::test]
async fn model_defaults_when_absent_and_replies_are_fifo() {
    let mock = MockLlm::start().await;
    mock.push_all([Reply::text("first"), Reply::text("second")]);
    assert_eq!(mock.pending_replies(), 2);
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let a: Value = post_chat(&mock, body.clone()).await.json().await.unwrap();
    let b: Value = post_chat(&mock, body).await.json().await.unwrap();
    assert_eq!(a["model"], "mock-model");
    assert_eq!(a["choices"][0]["message"]["content"], "first");
    assert_eq!(b["choices"][0]["message"]["content"], "second");
    assert_eq!(b["id"], "chatcmpl-mock-2");
    assert_eq!(mock.pending_replies(), 0);
}

#[tokio::test]
async fn tool_calls_non_streaming() {
    let mock = MockLlm::start().await;
    let calls = vec![
        ToolCall::new("read_file", json!({"path": "/tmp/a.txt"})),
        ToolCall::raw("broken", "{\"oops\": "),
    ];
    mock.push(Reply::ToolCalls(calls.clone()));

    let v: Value = post_chat(&mock, chat_body(false))
        .await
        .json()
        .await
        .unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].is_null());
    let got = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(got.len(), 2);
    for (got, want) in got.iter().zip(&calls) {
        assert_eq!(got["id"], want.id.as_str());
        assert!(want.id.starts_with("call_"));
        assert_eq!(got["type"], "function");
        assert_eq!(got["function"]["name"], want.name.as_str());
        assert_eq!(got["function"]["arguments"], want.arguments.as_str());
    }
    let args: Value =
        serde_json::from_str(got[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"path": "/tmp/a.txt"}));
    assert_ne!(calls[0].id, calls[1].id);
}

#[tokio::test]
async fn streaming_text_reassembles_and_ends_with_done() {
    let mock = MockLlm::start().await;
    let text = "The quick brown fox jumps over the lazy dog. Ünïcödé ✓";
    mock.push(Reply::text(text));
    mock.push(Reply::text("Hi there"));

    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = post_chat(&mock, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let payloads = sse_payloads(&resp.text().await.unwrap());
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    assert_eq!(payloads.iter().filter(|p| *p == "[DONE]").count(), 1);
    let chunks = parse_chunks(&payloads);

    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    let mut content = String::new();
    let mut deltas = 0;
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-mock-1");
        assert_eq!(chunk["model"], "gpt-test");
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(piece);
            deltas += 1;
        }
    }
    assert_eq!(content, text);
    assert!(deltas >= 3, "only {deltas} content deltas");

    // The finish chunk, then the usage chunk with no choices.
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(finish["usage"].is_null());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // Without include_usage there is no usage chunk; a two-word text still
    // arrives in at least three deltas.
    let payloads = sse_payloads(
        &post_chat(&mock, chat_body(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let chunks = parse_chunks(&payloads);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(pieces.len() >= 3, "{pieces:?}");
    assert_eq!(pieces.concat(), "Hi there");
}

#[tokio::test]
async fn streaming_tool_calls_reassemble_per_index() {
    let mock = MockLlm::start().await;
    let calls = vec![
        ToolCall::new(
            "write_file",
            json!({"path": "notes/todo.md", "content": "line one\nline \"two\"\n"}),
        ),
        ToolCall::raw("search", "{\"query\": \"rust async\", \"limit\": 5}"),
        ToolCall::raw("no_args", ""),
    ];
    mock.push(Reply::ToolCalls(calls.clone()));

    let payloads = sse_payloads(
        &post_chat(&mock, chat_body(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks = parse_chunks(&payloads);

    #[derive(Default)]
    struct Acc {
        id: String,
        name: String,
        arguments: String,
        fragments: usize,
    }
    let mut acc: BTreeMap<u64, Acc> = BTreeMap::new();
    let mut order = Vec::new();
    for chunk in &chunks {
        let Some(deltas) = chunk["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        assert_eq!(deltas.len(), 1);
        let d = &deltas[0];
        let index = d["index"].as_u64().unwrap();
        order.push(index);
        let a = acc.entry(index).or_default();
        if let Some(id) = d["id"].as_str() {
            assert_eq!(d["type"], "function");
            assert_eq!(d["function"]["arguments"], "");
            a.id = id.to_owned();
            a.name = d["function"]["name"].as_str().unwrap().to_owned();
        } else {
            // Fragments carry only the index and a piece of the arguments.
            assert!(d.get("type").is_none() && d["function"].get("name").is_none());
            a.arguments
                .push_str(d["function"]["arguments"].as_str().unwrap());
            a.fragments += 1;
        }
    }
    assert_eq!(acc.len(), 3);
    for (i, want) in calls.iter().enumerate() {
        let got = &acc[&(i as u64)];
        assert_eq!(got.id, want.id);
        assert_eq!(got.name, want.name);
        assert_eq!(got.arguments, want.arguments);
    }
    assert!(acc[&0].fragments >= 3 && acc[&1].fragments >= 3);
    // The calls' deltas are interleaved, not sent one call after another.
    let first_of_1 = order.iter().position(|&i| i == 1).unwrap();
    let last_of_0 = order.iter().rposition(|&i| i == 0).unwrap();
    assert!(first_of_1 < last_of_0, "{order:?}");

    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn rate_limit_error_with_retry_after() {
    let mock = MockLlm::start().await;
    mock.push(Reply::error(429, "Rate limit reached").with_retry_after("1"));
    mock.push(Reply::error(500, "boom"));

    let resp = post_chat(&mock, chat_body(false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Rate limit reached");
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let resp = post_chat(&mock, chat_body(true)).await;
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("retry-after").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "boom");
}

#[tokio::test]
async fn hang_times_out_on_the_client() {
    let mock = MockLlm::start().await;
    mock.push(Reply::Hang);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat_body(false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Recorded although never answered.
    assert_eq!(mock.request_count(), 1);
    assert_eq!(mock.requests()[0].body["model"], "gpt-test");
}

#[tokio::test]
async fn garbage_is_not_json() {
    let mock = MockLlm::start().await;
    mock.push(Reply::Garbage("{\"choices\": [oops".into()));
    mock.push(Reply::Garbage("not json at all".into()));

    let resp = post_chat(&mock, chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert_eq!(text, "{\"choices\": [oops");
    assert!(serde_json::from_str::<Value>(&text).is_err());

    let resp = post_chat(&mock, chat_body(true)).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let payloads = sse_payloads(&resp.text().await.unwrap());
    assert_eq!(payloads[0], "not json at all");
    assert!(serde_json::from_str::<Value>(&payloads[0]).is_err());
}

#[tokio::test]
async fn cut_stream_ends_without_done() {
    let mock = MockLlm::start().await;
    mock.push(Reply::CutStream { chunks: 3 });

    let mut resp = post_chat(&mock, chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let mut received = Vec::new();
    let ended_in_error = loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(ended_in_error, "the connection should drop mid-body");
    let text = String::from_utf8(received).unwrap();
    assert!(!text.contains("[DONE]"));
    let chunks = parse_chunks(&sse_payloads(&text));
    assert_eq!(chunks.len(), 3, "{text}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test]
async fn cut_stream_without_streaming_closes_with_no_response() {
    let mock = MockLlm::start().await;
    mock.push(Reply::CutStream { chunks: 1 });
    mock.push(Reply::text("still alive"));

    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", mock.base_url());
    let err = client
        .post(&url)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    // The server goes on serving new connections.
    let v: Value = client
        .post(&url)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "still alive");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn empty_queue_answers_500_with_a_clear_message() {
    let mock = MockLlm::start().await;
    mock.push(Reply::text("only one"));
    assert_eq!(post_chat(&mock, chat_body(false)).await.status(), 200);

    let resp = post_chat(&mock, chat_body(false)).await;
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "mock LLM: no scripted reply left for request 2"
    );
}

#[tokio::test]
async fn respond_with_is_used_once_the_queue_is_empty() {
    let mock = MockLlm::start().await;
    mock.push(Reply::text("queued"));
    mock.respond_with(|body| {
        let last = body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        Reply::text(format!("echo: {last}"))
    });

    let a: Value = post_chat(&mock, chat_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["choices"][0]["message"]["content"], "queued");
    for _ in 0..2 {
        let v: Value = post_chat(&mock, chat_body(false))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "echo: hello");
    }
    assert_eq!(mock.request_count(), 3);
    // The responder saw the body, and the record still has it too.
    assert_eq!(mock.requests()[2].messages()[0]["content"], "hello");
}

#[tokio::test]
async fn delayed_and_raw_replies() {
    let mock = MockLlm::start().await;
    mock.push(Reply::text("late").delayed_by(Duration::from_millis(150)));
    mock.push(Reply::Raw {
        status: 418,
        content_type: "text/plain".into(),
        body: "teapot".into(),
    });

    let started = Instant::now();
    let v: Value = post_chat(&mock, chat_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(v["choices"][0]["message"]["content"], "late");

    let resp = post_chat(&mock, chat_body(true)).await;
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().await.unwrap(), "teapot");
}

#[tokio::test]
async fn embeddings_shape_and_similarity() {
    let mock = MockLlm::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/embeddings", mock.base_url());
    let texts = [
        "The cat sat on the mat",
        "the CAT sat on a mat!",
        "Quarterly revenue projections exceeded expectations",
    ];
    let v: Value = client
        .post(&url)
        .json(&json!({"model": "text-embed-test", "input": texts}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embed-test");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let vectors: Vec<Vec<f64>> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["object"], "embedding");
            assert_eq!(d["index"], i);
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    for vector in &vectors {
        assert_eq!(vector.len(), EMBEDDING_DIM);
        assert!(
            (cosine(vector, vector) - 1.0).abs() < 1e-4,
            "not normalised"
        );
    }
    let similar = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(similar > 0.7, "{similar}");
    assert!(similar > unrelated + 0.5, "{similar} vs {unrelated}");

    // A single string works too and is deterministic.
    let single: Value = client
        .post(&url)
        .json(&json!({"input": texts[0]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(single["model"], "mock-embedding");
    assert_eq!(single["data"].as_array().unwrap().len(), 1);
    assert_eq!(single["data"][0]["embedding"], data[0]["embedding"]);

    let bad = client
        .post(&url)
        .json(&json!({"input": [1, 2, 3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Recorded, and told apart from chat requests by path.
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 3);
    assert!(recorded.iter().all(|r| r.path == "/v1/embeddings"));
    assert!(mock.chat_requests().is_empty());
}

#[tokio::test]
async fn requests_record_bodies_and_headers() {
    let mock = MockLlm::start().await;
    mock.push_all([Reply::text("one"), Reply::text("two")]);
    let mut second = chat_body(true);
    second["messages"] = json!([{"role": "user", "content": "again"}]);
    post_chat(&mock, chat_body(false))
        .await
        .text()
        .await
        .unwrap();
    post_chat(&mock, second.clone()).await.text().await.unwrap();

    assert_eq!(mock.request_count(), 2);
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].body, chat_body(false));
    assert_eq!(recorded[1].body, second);
    assert_eq!(recorded[1].messages()[0]["content"], "again");
    for r in &recorded {
        assert_eq!(r.path, "/v1/chat/completions");
        assert!(r.is_chat());
        assert_eq!(r.header("Authorization"), Some("Bearer test-key"));
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/json")
        );
    }
    assert_eq!(mock.last_request().unwrap(), recorded[1]);

    // With recording off requests are still counted, not stored.
    mock.clear_requests();
    mock.set_recording(false);
    mock.push(Reply::text("three"));
    post_chat(&mock, chat_body(false))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(mock.request_count(), 3);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn models_and_unknown_routes() {
    let mock = MockLlm::start().await;
    let client = reqwest::Client::new();
    let v: Value = client
        .get(format!("{}/models", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})
    );
    let resp = client
        .post(format!("{}/completions", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no route for POST /v1/completions")
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn concurrent_requests_each_get_one_reply() {
    let mock = MockLlm::start().await;
    mock.set_recording(false);
    mock.respond_with(|_| Reply::text("ok"));
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", mock.base_url());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let v: Value = client
                    .post(url)
                    .json(&chat_body(false))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every request got its own number");
    assert_eq!(mock.request_count(), 200);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let mock = MockLlm::start().await;
    let url = format!("{}/models", mock.base_url());
    let clone = mock.clone();
    drop(mock);
    // A clone keeps it running.
    assert!(reqwest::get(&url).await.unwrap().status().is_success());
    drop(clone);
    // The server task is aborted asynchronously: allow it a moment.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.get(&url).send().await.is_ok() {
        assert!(Instant::now() < deadline, "still serving after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
