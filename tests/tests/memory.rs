//! Semantic memory through the whole server: the local all-MiniLM-L6-v2
//! embedder, a real faiss index and a real SQLite store. A fact stated many
//! turns earlier is recalled into the prompt; the index persists, is rebuilt
//! when deleted, corrupt or made by another embedder, catches up after
//! `kill -9`, and loses a deleted session's vectors.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, Server, model_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn start(dir: &PluginDir, data: &Path, mock: &MockLlm, extra: &[(&str, &str)]) -> Server {
    let base = mock.base_url();
    let model = model_dir();
    let config = data.join("launch.toml");
    if !config.exists() {
        // A small window, so early facts can only come back through recall.
        std::fs::write(&config, "[memory]\ncontext_tokens = 300\nrecall_k = 2\n").unwrap();
    }
    let mut env = vec![
        ("LAUNCH_LLM_BASE_URL", base.as_str()),
        ("LAUNCH_LLM_MODEL", "mock-model"),
        ("LAUNCH_LLM_API_KEY", "k"),
        ("LAUNCH_EMBEDDER", "local"),
        ("LAUNCH_EMBEDDING_MODEL_DIR", model.to_str().unwrap()),
        ("LAUNCH_CONFIG", config.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    Server::start_in(dir.path(), data, &env, false)
}

async fn json_of(r: reqwest::RequestBuilder) -> Value {
    let r = r.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn session(http: &reqwest::Client, s: &Server) -> String {
    json_of(http.post(format!("{}/v1/sessions", s.url))).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn say(http: &reqwest::Client, s: &Server, id: &str, text: &str) -> Value {
    json_of(
        http.post(format!("{}/v1/sessions/{id}/messages", s.url))
            .json(&json!({"content": text})),
    )
    .await
}

/// Filler turns about other things, long enough to push earlier messages
/// out of the 300-token window.
/// The model's answer to everything: long enough (~100 tokens) that a few
/// turns fill the 300-token window.
const ANSWER: &str = "Noted. Here is a careful summary of the points so far, each one in turn, \
    with the reasoning behind it and what it means for the next steps, so that nothing we \
    discussed is lost and every decision can be traced back to where it was made and why.";

const FILLER: &[&str] = &[
    "Let us plan the quarterly budget review: revenue projections, hiring costs, cloud spend, travel and the contingency reserve for the next fiscal year.",
    "Summarise the history of the printing press, from Gutenberg's movable type through the spread of presses across Europe in the fifteenth century.",
    "Explain how a diesel engine differs from a petrol engine in ignition, compression ratio, fuel efficiency and typical maintenance intervals.",
    "Draft an agenda for a two-day offsite covering the product roadmap, customer feedback, hiring plans and an afternoon of team activities.",
];

async fn fill(http: &reqwest::Client, s: &Server, id: &str) {
    for text in FILLER {
        say(http, s, id, text).await;
    }
}

/// The recall note the model was sent in the last chat request, if any.
fn recall_note(mock: &MockLlm) -> Option<String> {
    let last = mock.chat_requests().pop()?;
    last.messages()
        .iter()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str())
        .find(|c| c.starts_with("Recalled memory"))
        .map(str::to_owned)
}

async fn readyz(http: &reqwest::Client, s: &Server) -> Value {
    json_of(http.get(format!("{}/readyz", s.url))).await
}

/// Waits until the index holds `n` vectors: turns are embedded in the
/// background after their answer, and a restart embeds what a crash missed.
async fn wait_vectors(http: &reqwest::Client, s: &Server, n: u64) {
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = readyz(http, s).await["memory"]["vectors"].clone();
        if seen == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the index holds {seen} vectors, expected {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fact_from_many_turns_ago_is_recalled_into_the_prompt() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text(ANSWER));
    let dir = PluginDir::new();
    let data = tempfile::tempdir().unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let id = session(&http, &s).await;
    say(&http, &s, &id, "I have a dog named Rex.").await;
    fill(&http, &s, &id).await;
    wait_vectors(&http, &s, 10).await;
    // The fact is out of the window now...
    let sent_before: Vec<String> = mock
        .chat_requests()
        .last()
        .unwrap()
        .messages()
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert!(!sent_before.iter().any(|c| c == "I have a dog named Rex."));

    // ...and comes back by meaning, not by words ("pet", not "dog").
    let turn = say(&http, &s, &id, "What is my pet called?").await;
    let note = recall_note(&mock).expect("a recall note was sent");
    assert!(note.contains("[user] I have a dog named Rex."), "{note}");
    assert!(
        !note.contains("diesel"),
        "unrelated messages are not recalled: {note}"
    );
    assert_eq!(turn["recalled"][0]["content"], "I have a dog named Rex.");
    // The note sits just before the new user message.
    let last = mock.chat_requests().pop().unwrap();
    let messages = last.messages();
    assert_eq!(
        messages[messages.len() - 1]["content"],
        "What is my pet called?"
    );
    assert!(
        messages[messages.len() - 2]["content"]
            .as_str()
            .unwrap()
            .starts_with("Recalled memory")
    );
    wait_vectors(&http, &s, 12).await; // 6 user and 6 assistant messages
    let ready = readyz(&http, &s).await;
    assert_eq!(ready["memory"]["semantic_recall"], true);
    assert_eq!(ready["memory"]["dimension"], 384);

    // Other sessions are not recalled from (cross-session recall is off).
    let other = session(&http, &s).await;
    fill(&http, &s, &other).await;
    say(&http, &s, &other, "What is my pet called?").await;
    let note = recall_note(&mock).unwrap_or_default();
    assert!(!note.contains("Rex"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_session_recall_when_enabled() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text(ANSWER));
    let dir = PluginDir::new();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("launch.toml"),
        "[memory]\ncontext_tokens = 300\ncross_session_recall = true\n",
    )
    .unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    let http = reqwest::Client::new();
    let first = session(&http, &s).await;
    say(&http, &s, &first, "My sister lives in Lisbon.").await;
    wait_vectors(&http, &s, 2).await;
    let second = session(&http, &s).await;
    say(&http, &s, &second, "Which city does my sister live in?").await;
    let note = recall_note(&mock).expect("recalled from the other session");
    assert!(note.contains("Lisbon"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_persists_and_is_rebuilt_when_lost_corrupt_or_stale() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text(ANSWER));
    let dir = PluginDir::new();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let s = start(&dir, data.path(), &mock, &[]);
    let id = session(&http, &s).await;
    say(&http, &s, &id, "I have a dog named Rex.").await;
    fill(&http, &s, &id).await;
    assert!(s.terminate().success());
    let index = data.path().join("vectors/index.faiss");
    assert!(index.is_file(), "saved at shutdown");

    let recalls = |s: &Server, log_needle: &'static str| {
        let (http, url, id, lines) = (http.clone(), s.url.clone(), id.clone(), s.log());
        let mock = &mock;
        async move {
            assert!(
                lines.iter().any(|l| l.contains(log_needle)),
                "expected a log line with {log_needle:?}"
            );
            let r = http
                .post(format!("{url}/v1/sessions/{id}/messages"))
                .json(&json!({"content": "What is my pet called?"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let note = recall_note(mock).unwrap_or_default();
            assert!(note.contains("Rex"), "{note}");
        }
    };

    // Loaded as saved.
    let s = start(&dir, data.path(), &mock, &[]);
    recalls(&s, "vector index ready").await;
    assert!(!s.log().iter().any(|l| l.contains("rebuilding")));
    assert!(s.terminate().success());

    // Deleted: rebuilt from the vectors in the store.
    std::fs::remove_file(&index).unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    recalls(&s, "rebuilding the vector index").await;
    assert!(s.terminate().success());

    // Corrupt: rebuilt, never a crash.
    std::fs::write(&index, b"not a faiss index").unwrap();
    let s = start(&dir, data.path(), &mock, &[]);
    recalls(&s, "index.faiss is unreadable").await;

    // Killed before saving: the index catches up from the store.
    say(&http, &s, &id, "My cat is called Tom.").await;
    s.signal("KILL");
    let mut s = s;
    s.wait();
    let s = start(&dir, data.path(), &mock, &[]);
    // 5 turns before, 3 recall checks and the cat: 9 turns of 2 messages.
    wait_vectors(&http, &s, 18).await;
    assert!(s.terminate().success());

    // Another embedder: the old vectors are dropped and every message is
    // embedded again, in the background. (The server probes the mock's
    // embeddings while starting, so this test runs on a multi-threaded
    // runtime: the mock must answer while the test waits for the start.)
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[
            ("LAUNCH_EMBEDDER", "remote"),
            ("LAUNCH_LLM_EMBEDDING_MODEL", "mock-embedding"),
        ],
    );
    for _ in 0..100 {
        if s.log()
            .iter()
            .any(|l| l.contains("embedded messages that had no vector"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        s.log().iter().any(|l| l.contains("made by local:")),
        "{:?}",
        s.log()
    );
    wait_vectors(&http, &s, 18).await;
    let ready = readyz(&http, &s).await;
    assert!(
        ready["memory"]["embedder"]
            .as_str()
            .unwrap()
            .starts_with("remote:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_removes_its_vectors() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text(ANSWER));
    let dir = PluginDir::new();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let s = start(&dir, data.path(), &mock, &[]);
    let keep = session(&http, &s).await;
    say(&http, &s, &keep, "Keep this one.").await;
    let gone = session(&http, &s).await;
    say(&http, &s, &gone, "My dog is called Rex.").await;
    wait_vectors(&http, &s, 4).await;
    let r = http
        .delete(format!("{}/v1/sessions/{gone}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(readyz(&http, &s).await["memory"]["vectors"], 2);
    assert!(s.terminate().success());
    let db = rusqlite::Connection::open(data.path().join("launch.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM embeddings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 2);
    let s = start(&dir, data.path(), &mock, &[]);
    wait_vectors(&http, &s, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_or_provider_memory_works_without_recall() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text(ANSWER));
    let dir = PluginDir::new();
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("no-model-here");
    let s = start(
        &dir,
        data.path(),
        &mock,
        &[
            ("LAUNCH_EMBEDDER", "auto"),
            ("LAUNCH_EMBEDDING_MODEL_DIR", missing.to_str().unwrap()),
        ],
    );
    let http = reqwest::Client::new();
    let ready = readyz(&http, &s).await;
    assert_eq!(ready["memory"]["semantic_recall"], false);
    let reason = ready["memory"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("make model") && reason.contains("LAUNCH_LLM_EMBEDDING_MODEL"),
        "{reason}"
    );
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("memory without semantic recall"))
    );
    let id = session(&http, &s).await;
    say(&http, &s, &id, "I have a dog named Rex.").await;
    fill(&http, &s, &id).await;
    say(&http, &s, &id, "What is my pet called?").await;
    assert_eq!(recall_note(&mock), None);

    // An explicit local embedder without its model is a startup error that says what to do.
    let out = std::process::Command::new(launch_tests::launch_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LAUNCH_PLUGINS_DIR", dir.path())
        .env("LAUNCH_DATA_DIR", data.path())
        .env("LAUNCH_EMBEDDER", "local")
        .env("LAUNCH_EMBEDDING_MODEL_DIR", &missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-model-here"), "{err}");
}
