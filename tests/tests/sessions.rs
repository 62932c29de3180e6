//! Sessions over real HTTP with a real SQLite store: the sessions API, the
//! `x-session-id` header on chat completions, SSE and WebSocket streams,
//! persistence across restarts, crash safety (`kill -9` mid-turn), the
//! context window, ownership by API key, and retention.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn plugins() -> PluginDir {
    PluginDir::new().plugin("calculator")
}

fn mock_env(mock: &MockLlm) -> Vec<(&'static str, String)> {
    vec![
        ("LAUNCH_LLM_BASE_URL", mock.base_url()),
        ("LAUNCH_LLM_MODEL", "mock-model".into()),
        ("LAUNCH_LLM_API_KEY", "test-key".into()),
    ]
}

fn start(dir: &PluginDir, data: &Path, mock: &MockLlm, extra: &[(&str, &str)]) -> Server {
    let env = mock_env(mock);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Server::start_in(dir.path(), data, &all, false)
}

async fn create(http: &reqwest::Client, s: &Server, title: &str) -> String {
    let r = http
        .post(format!("{}/v1/sessions", s.url))
        .json(&json!({"title": title}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn post(http: &reqwest::Client, s: &Server, id: &str, text: &str) -> Value {
    let r = http
        .post(format!("{}/v1/sessions/{id}/messages", s.url))
        .json(&json!({"content": text}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = http.get(url).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// The texts of the messages the model was sent in chat request `n`.
fn sent_texts(mock: &MockLlm, n: usize) -> Vec<String> {
    mock.chat_requests()[n]
        .messages()
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn session_lifecycle_with_history_and_steps() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();

    let id = create(&http, &s, "math").await;
    mock.push_all([
        Reply::tool("calculator_evaluate", json!({"expression": "6 * 7"})),
        Reply::text("It is 42."),
    ]);
    let turn = post(&http, &s, &id, "What is 6 times 7?").await;
    assert_eq!(turn["object"], "session.turn");
    assert_eq!(turn["message"]["content"], "It is 42.");
    assert_eq!(turn["finish_reason"], "stop");
    assert_eq!(turn["steps"][0]["name"], "calculator_evaluate");
    assert_eq!(turn["steps"][0]["result"], json!(42.0));

    // The second turn sends the stored history, tool call and result included.
    mock.push(Reply::text("You asked about 6 times 7."));
    post(&http, &s, &id, "What did I ask?").await;
    let sent = sent_texts(&mock, 2);
    assert!(sent[0].starts_with("system: "), "{sent:?}");
    assert_eq!(sent[1], "user: What is 6 times 7?");
    assert_eq!(sent[2], "assistant: ", "the tool-calling message");
    assert_eq!(sent[3], "tool: 42.0");
    assert_eq!(sent[4], "assistant: It is 42.");
    assert_eq!(sent[5], "user: What did I ask?");
    assert_eq!(sent.len(), 6);
    let requests = mock.chat_requests();
    let tool_call = &requests[2].messages()[2]["tool_calls"][0];
    assert_eq!(tool_call["function"]["name"], "calculator_evaluate");

    let (status, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["title"], "math");
    assert_eq!(detail["message_count"], 6);
    let roles: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant"
        ]
    );
    assert_eq!(detail["turns"].as_array().unwrap().len(), 2);
    assert_eq!(
        detail["turns"][0]["steps"][0]["arguments"]["expression"],
        "6 * 7"
    );
    assert_eq!(detail["turns"][0]["iterations"], 2);

    let (_, list) = get(&http, format!("{}/v1/sessions", s.url)).await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["has_more"], false);

    let r = http
        .delete(format!("{}/v1/sessions/{id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, e) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/sessions")
    );
    let r = http
        .delete(format!("{}/v1/sessions/{id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The rows are gone from the file, not just hidden.
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn bad_session_requests_are_clear_errors() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "x").await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            http.post(format!("{}/v1/sessions/{id}/messages", s.url)).json(&json!({"content": ""})),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            http.post(format!("{}/v1/sessions/{id}/messages", s.url)).json(&json!({"text": "hi"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `text`",
        ),
        (
            http.post(format!("{}/v1/sessions/{id}/messages", s.url)).json(&json!({"content": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            http.post(format!("{}/v1/sessions/nope/messages", s.url)).json(&json!({"content": "hi"})),
            StatusCode::NOT_FOUND,
            "no session \"nope\"",
        ),
        (
            http.post(format!("{}/v1/sessions", s.url)).header("content-type", "application/json").body("{\"title\": "),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            http.post(format!("{}/v1/sessions", s.url)).json(&json!({"name": "x"})),
            StatusCode::BAD_REQUEST,
            "unknown field `name`",
        ),
        (
            http.get(format!("{}/v1/sessions?limit=abc", s.url)),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            http.post(format!("{}/v1/sessions/{id}/messages", s.url))
                .json(&json!({"content": "x".repeat(300 * 1024)})),
            StatusCode::BAD_REQUEST,
            "max_message_bytes",
        ),
        (
            http.post(format!("{}/v1/chat/completions", s.url))
                .header("x-session-id", "missing")
                .json(&json!({"messages": [{"role": "user", "content": "hi"}]})),
            StatusCode::NOT_FOUND,
            "no session",
        ),
        (
            http.post(format!("{}/v1/chat/completions", s.url))
                .header("x-session-id", id.as_str())
                .json(&json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})),
            StatusCode::BAD_REQUEST,
            "only the new user message",
        ),
    ];
    for (request, status, needle) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status, "{needle}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // Nothing reached the model, and nothing was stored.
    assert_eq!(mock.chat_requests().len(), 0);
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["message_count"], 0);
}

#[tokio::test]
async fn chat_completions_with_a_session_header_keep_history() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "chat").await;
    for (q, a) in [
        ("My name is Ada.", "Hello Ada."),
        ("What is my name?", "Ada."),
    ] {
        mock.push(Reply::text(a));
        let r: Value = http
            .post(format!("{}/v1/chat/completions", s.url))
            .header("x-session-id", id.as_str())
            .json(&json!({"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["choices"][0]["message"]["content"], a);
    }
    let sent = sent_texts(&mock, 1);
    assert_eq!(
        sent,
        [
            "system: Be brief.",
            "user: My name is Ada.",
            "assistant: Hello Ada.",
            "user: What is my name?"
        ]
    );
    // The streamed variant stores its turn too.
    mock.push(Reply::text("Still Ada."));
    let text = http
        .post(format!("{}/v1/chat/completions", s.url))
        .header("x-session-id", id.as_str())
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "And now?"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["message_count"], 6);
}

/// `(event, data)` pairs of an SSE body.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).ok();
                }
            }
            Some((event?, data?))
        })
        .collect()
}

#[tokio::test]
async fn session_messages_stream_over_sse_and_websocket() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "stream").await;

    mock.push_all([
        Reply::tool("calculator_evaluate", json!({"expression": "1 +"})),
        Reply::text("That expression is incomplete."),
    ]);
    let body = http
        .post(format!("{}/v1/sessions/{id}/messages", s.url))
        .json(&json!({"content": "compute 1 +", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"tool_started"), "{names:?}");
    assert_eq!(names[1], "tool_finished");
    assert!(
        names[2..names.len() - 1].iter().all(|n| *n == "delta"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(events[1].1["error"]["code"], "tool_error");
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "That expression is incomplete.");
    assert_eq!(
        events.last().unwrap().1["message"]["content"],
        text.as_str()
    );

    // The same stream over a WebSocket, on the same session.
    let ws_url = format!("{}/v1/sessions/{id}/ws", s.url.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    use tokio_tungstenite::tungstenite::Message as Frame;
    ws.send(Frame::text("not json")).await.unwrap();
    let frame = ws.next().await.unwrap().unwrap();
    let error: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content")
    );

    mock.push_all([
        Reply::tool("calculator_evaluate", json!({"expression": "2 ^ 10"})),
        Reply::text("1024"),
    ]);
    ws.send(Frame::text(
        json!({"content": "2 to the 10th?"}).to_string(),
    ))
    .await
    .unwrap();
    let mut kinds = Vec::new();
    let mut done = Value::Null;
    while let Some(frame) = ws.next().await {
        let v: Value = serde_json::from_str(frame.unwrap().to_text().unwrap()).unwrap();
        kinds.push(v["type"].as_str().unwrap().to_owned());
        if v["type"] == "done" || v["type"] == "error" {
            done = v;
            break;
        }
    }
    assert_eq!(kinds[..2], ["tool_started", "tool_finished"], "{kinds:?}");
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["message"]["content"], "1024");
    assert_eq!(done["steps"][0]["result"], json!(1024.0));
    ws.close(None).await.unwrap();
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["turns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn sessions_survive_restart_and_kill_9_mid_turn() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut s = start(&dir, data.path(), &mock, &[]);
    let id = create(&http, &s, "durable").await;
    mock.push(Reply::text("first answer"));
    post(&http, &s, &id, "first question").await;

    // A clean restart keeps everything.
    assert!(s.terminate().success());
    s = start(&dir, data.path(), &mock, &[]);
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["message_count"], 2);

    // kill -9 while a turn is waiting on the model: the committed turn
    // stays, the unfinished one leaves no trace, and the store reopens.
    mock.push(Reply::text("never delivered").delayed_by(Duration::from_secs(30)));
    let url = format!("{}/v1/sessions/{id}/messages", s.url);
    let pending = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(url)
                .json(&json!({"content": "second question"}))
                .send()
                .await
        }
    });
    while mock.chat_requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.signal("KILL");
    s.wait();
    assert!(
        pending.await.unwrap().is_err(),
        "the connection died with the server"
    );
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(db);
    let s = start(&dir, data.path(), &mock, &[]);
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["message_count"], 2);
    assert_eq!(detail["messages"][1]["content"], "first answer");
    mock.push(Reply::text("third answer"));
    post(&http, &s, &id, "third question").await;
}

/// Many turns in flight in parallel sessions, the server killed with
/// SIGKILL at an arbitrary moment: every turn whose answer the client got is
/// in the store afterwards, whole, and the file passes an integrity check.
#[tokio::test]
async fn kill_9_under_write_load_loses_no_acknowledged_turn() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("ok"));
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut s = start(&dir, data.path(), &mock, &[]);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(create(&http, &s, &format!("s{i}")).await);
    }
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for id in ids.clone() {
        let (http, url, acked) = (http.clone(), s.url.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let text = format!("{id} message {n}");
                let r = http
                    .post(format!("{url}/v1/sessions/{id}/messages"))
                    .json(&json!({"content": text}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => acked.lock().unwrap().push(text),
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.signal("KILL");
    s.wait();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() > 8,
        "the load produced only {} turns",
        acked.len()
    );
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut stmt = db
        .prepare("SELECT content FROM messages WHERE role = 'user'")
        .unwrap();
    let stored: std::collections::HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for text in &acked {
        assert!(stored.contains(text), "acknowledged turn {text:?} was lost");
    }
    // Every stored user message has its answer: no half turns.
    let orphans: i64 = db
        .query_row(
            "SELECT count(*) FROM turns t WHERE (SELECT count(*) FROM messages m WHERE m.turn_id = t.id) != 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn long_sessions_are_trimmed_to_the_token_budget() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("noted"));
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("launch.toml");
    std::fs::write(&config, "[memory]\ncontext_tokens = 300\n").unwrap();
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[("LAUNCH_CONFIG", config.to_str().unwrap())],
    );
    let http = reqwest::Client::new();
    let id = create(&http, &s, "long").await;
    for i in 0..12 {
        // ~100 tokens a message by the 4-bytes-a-token estimate.
        post(
            &http,
            &s,
            &id,
            &format!("fact {i}: {}", "lorem ipsum ".repeat(33)),
        )
        .await;
    }
    let sent = sent_texts(&mock, 11);
    let users: Vec<&String> = sent.iter().filter(|m| m.starts_with("user: ")).collect();
    assert!(users.len() < 4, "{} user messages sent", users.len());
    assert!(users.last().unwrap().starts_with("user: fact 11:"));
    assert!(
        sent[1].starts_with("user: "),
        "the window opens on a user message: {sent:?}"
    );
    assert!(
        s.log().iter().any(|l| l.contains("context trimmed")),
        "the trim is logged"
    );
    let (_, detail) = get(&http, format!("{}/v1/sessions/{id}", s.url)).await;
    assert_eq!(detail["message_count"], 24, "trimming never deletes");
}

#[tokio::test]
async fn sessions_belong_to_the_api_key_that_made_them() {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789ab");
    let keys = format!("{alice},{bob}");
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[("LAUNCH_API_KEYS", keys.as_str())],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/sessions", s.url))
        .bearer_auth(alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_bob = http
        .get(format!("{}/v1/sessions/{id}", s.url))
        .bearer_auth(bob)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bob.status(), StatusCode::NOT_FOUND);
    let bobs: Value = http
        .get(format!("{}/v1/sessions", s.url))
        .bearer_auth(bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["data"], json!([]));
    let r = http
        .delete(format!("{}/v1/sessions/{id}", s.url))
        .bearer_auth(bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let as_alice = http
        .get(format!("{}/v1/sessions/{id}", s.url))
        .bearer_auth(alice)
        .send()
        .await
        .unwrap();
    assert_eq!(as_alice.status(), StatusCode::OK);
    // WebSocket auth by query parameter (browsers cannot set headers there).
    let ws = format!("{}/v1/sessions/{id}/ws", s.url.replace("http://", "ws://"));
    assert!(tokio_tungstenite::connect_async(&ws).await.is_err());
    assert!(
        tokio_tungstenite::connect_async(format!("{ws}?access_token={alice}"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn retention_deletes_old_and_excess_sessions() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("ok"));
    let dir = plugins();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let s = start(&dir, data.path(), &mock, &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = create(&http, &s, &format!("s{i}")).await;
        post(&http, &s, &id, "hello").await;
        ids.push(id);
    }
    s.terminate();

    // At most two sessions: the least recently active goes, with its messages.
    let config = data.path().join("launch.toml");
    std::fs::write(&config, "[memory]\nmax_sessions = 2\n").unwrap();
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[("LAUNCH_CONFIG", config.to_str().unwrap())],
    );
    let (_, list) = get(&http, format!("{}/v1/sessions", s.url)).await;
    let left: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [ids[2].as_str(), ids[1].as_str()]);
    s.terminate();

    // Idle longer than the TTL (here 0.5 s): everything goes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    std::fs::write(
        &config,
        format!("[memory]\nsession_ttl_days = {}\n", 0.5 / 86_400.0),
    )
    .unwrap();
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[("LAUNCH_CONFIG", config.to_str().unwrap())],
    );
    let (_, list) = get(&http, format!("{}/v1/sessions", s.url)).await;
    assert_eq!(list["data"], json!([]));
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

// ---- Bounded reads and bounded sessions (issue 15) ----

async fn detail(http: &reqwest::Client, s: &Server, id: &str, query: &str) -> Value {
    let r = http
        .get(format!("{}/v1/sessions/{id}{query}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn turn_ids(page: &Value) -> Vec<i64> {
    page["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_is_read_a_page_of_turns_at_a_time_with_a_cursor_and_a_byte_bound() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("noted"));
    let data = tempfile::tempdir().unwrap();
    let dir = plugins();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "long").await;
    let mut answered = Vec::new();
    for i in 0..25 {
        answered.push(
            post(&http, &s, &id, &format!("message {i}")).await["turn_id"]
                .as_i64()
                .unwrap(),
        );
    }
    // The newest 20 turns, oldest first, with exactly their messages.
    let first = detail(&http, &s, &id, "").await;
    assert_eq!(turn_ids(&first), answered[5..]);
    assert_eq!(first["has_more"], true);
    assert_eq!(
        first["message_count"], 50,
        "the session still reports its size"
    );
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 40);
    assert_eq!(messages[0]["content"], "message 5");
    assert!(
        messages
            .iter()
            .all(|m| answered[5..].contains(&m["turn_id"].as_i64().unwrap()))
    );
    // The cursor pages backwards to the start.
    let before = first["turns"][0]["id"].as_i64().unwrap();
    let older = detail(&http, &s, &id, &format!("?before={before}")).await;
    assert_eq!(turn_ids(&older), answered[..5]);
    assert_eq!(older["has_more"], false);
    assert_eq!(older["messages"][0]["content"], "message 0");
    let three = detail(&http, &s, &id, "?limit=3").await;
    assert_eq!(turn_ids(&three), answered[22..]);
    for bad in ["?limit=many", "?before=x", "?page=2"] {
        let r = http
            .get(format!("{}/v1/sessions/{id}{bad}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    // Big turns: a page stops at about 2 MiB (but holds at least one turn).
    let big = create(&http, &s, "big").await;
    let text = "x".repeat(200 * 1024);
    for _ in 0..15 {
        post(&http, &s, &big, &text).await;
    }
    let page = detail(&http, &s, &big, "").await;
    let n = page["turns"].as_array().unwrap().len();
    assert!((8..=11).contains(&n), "about 2 MiB of 200 KiB turns: {n}");
    assert_eq!(page["has_more"], true);
    let one = detail(&http, &s, &big, "?limit=1").await;
    assert_eq!(one["turns"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn parallel_reads_of_a_large_session_stay_bounded_in_memory() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("ok"));
    let data = tempfile::tempdir().unwrap();
    let dir = plugins();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "26 MB").await;
    let text = "y".repeat(256 * 1024 - 64);
    for _ in 0..100 {
        post(&http, &s, &id, &text).await;
    }
    let before = launch_tests::peak_rss(s.pid());
    let reads = (0..16).map(|_| detail(&http, &s, &id, ""));
    let pages = futures::future::join_all(reads).await;
    assert!(pages.iter().all(|p| p["has_more"] == true));
    let grown = launch_tests::peak_rss(s.pid()).saturating_sub(before);
    // Whole-session reads took this from ~0.8 GB to ~1.6 GB at twice the size.
    assert!(
        grown < 150 << 20,
        "16 parallel reads grew the peak RSS by {} MiB",
        grown >> 20
    );
}

#[tokio::test]
async fn a_full_session_refuses_new_turns_with_409_and_keeps_its_history() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("fine"));
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("launch.toml");
    std::fs::write(
        &config,
        "[server]\nmax_session_messages = 6\nmax_session_bytes = 1000\n",
    )
    .unwrap();
    let dir = plugins();
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[("LAUNCH_CONFIG", config.to_str().unwrap())],
    );
    let http = reqwest::Client::new();
    let refused = async |id: &str, text: &str| -> Value {
        let r = http
            .post(format!("{}/v1/sessions/{id}/messages", s.url))
            .json(&json!({"content": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        r.json().await.unwrap()
    };
    // By messages: three turns of two messages fill it.
    let id = create(&http, &s, "few").await;
    for text in ["one", "two", "three"] {
        post(&http, &s, &id, text).await;
    }
    let e = refused(&id, "four").await;
    assert_eq!(e["error"]["code"], "session_full");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_session_messages") && message.contains("POST /v1/sessions"),
        "{message}"
    );
    // By bytes.
    let id2 = create(&http, &s, "big").await;
    post(&http, &s, &id2, &"z".repeat(600)).await;
    post(&http, &s, &id2, &"z".repeat(600)).await;
    let e = refused(&id2, "more").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_session_bytes")
    );
    // Streams say the same; nothing was lost or added.
    let r = http
        .post(format!("{}/v1/sessions/{id}/messages", s.url))
        .json(&json!({"content": "streamed", "stream": true}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("event: error") && text.contains("session_full"),
        "{text}"
    );
    let kept = detail(&http, &s, &id, "").await;
    assert_eq!(kept["message_count"], 6);
    assert_eq!(kept["messages"].as_array().unwrap().len(), 6);
    assert_eq!(
        mock.chat_requests().len(),
        5,
        "refused turns never reached the model"
    );
}

#[tokio::test]
async fn a_store_from_before_session_sizes_is_migrated_with_sizes_filled_in() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("answer"));
    let data = tempfile::tempdir().unwrap();
    let dir = plugins();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = create(&http, &s, "old").await;
    post(&http, &s, &id, "a question").await;
    let size = detail(&http, &s, &id, "").await["bytes"].as_i64().unwrap();
    assert_eq!(size, ("a question".len() + "answer".len()) as i64);
    assert!(s.terminate().success());
    // Back to schema version 1, as an older Launch left it.
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    db.execute_batch(
        "DROP INDEX messages_by_turn; ALTER TABLE sessions DROP COLUMN bytes; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(db);
    let s = start(&dir, data.path(), &mock, &[]);
    let migrated = detail(&http, &s, &id, "").await;
    assert_eq!(migrated["bytes"], size);
    assert_eq!(migrated["messages"].as_array().unwrap().len(), 2);
}
