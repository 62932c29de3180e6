//! The official `openai` Python SDK as a real client: runs
//! `tests/python/test_openai_client.py` against a `launch serve` child process
//! (auth on, calculator plugin) backed by the mock LLM, then checks what the
//! model was sent: the tool round trip, session history, and that failed
//! requests (wrong key, unknown session, bad bodies) never reached it.
//!
//! Needs `python3` with the packages in `tests/python/requirements.txt`
//! (`pip install -r tests/python/requirements.txt`; CI installs them).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use launch_tests::mock_llm::{MockLlm, Recorded, Reply};
use launch_tests::{PluginDir, Server, repo_root, run_client_script};
use serde_json::{Value, json};

/// The key clients must present (the server runs with auth on).
const CLIENT_KEY: &str = "python-client-key-0123456789";
/// The key the server sends to the provider.
const PROVIDER_KEY: &str = "provider-key-for-the-mock";

/// Answers from the request alone, as documented in the Python script.
fn script(body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(last) = messages.last() else {
        return Reply::error(400, "mock LLM: no messages");
    };
    let text = last["content"].as_str().unwrap_or("");
    if last["role"] == "tool" {
        return Reply::text(format!("The answer is {text}."));
    }
    if let Some(expression) = text.strip_prefix("compute ") {
        return Reply::tool("calculator_evaluate", json!({"expression": expression}));
    }
    match text {
        "recall" => {
            let earlier: Vec<&str> = messages[..messages.len() - 1]
                .iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str())
                .collect();
            if earlier.is_empty() {
                Reply::text("You said: nothing")
            } else {
                Reply::text(format!("You said: {}", earlier.join(" | ")))
            }
        }
        "provider-fail" => Reply::error(400, "mock LLM refuses"),
        _ => Reply::text(format!("ok: {text}")),
    }
}

/// `role: content` of each non-system message of a request.
fn transcript(r: &Recorded) -> Vec<String> {
    r.messages()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            format!(
                "{}: {}",
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Fails (never skips) when the SDK is missing, saying how to install it.
fn require_openai_sdk() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import openai, httpx; print(openai.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {
            eprintln!("openai SDK {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        Ok(out) => panic!(
            "the Python `openai` package is not importable; run `pip install -r tests/python/requirements.txt`\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "python3 is not runnable ({e}); install Python 3, then run `pip install -r tests/python/requirements.txt`"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_sdk_against_a_real_server() {
    require_openai_sdk();
    let mock = MockLlm::start().await;
    mock.respond_with(script);
    let dir = PluginDir::new().plugin("calculator");
    let base = mock.base_url();
    let s = Server::start_with(
        dir.path(),
        &[
            ("LAUNCH_LLM_BASE_URL", base.as_str()),
            ("LAUNCH_LLM_MODEL", "mock-model"),
            ("LAUNCH_LLM_API_KEY", PROVIDER_KEY),
            ("LAUNCH_API_KEYS", CLIENT_KEY),
        ],
        false,
    );

    let script_path = repo_root().join("tests/python/test_openai_client.py");
    let mut client = tokio::process::Command::new("python3");
    client
        .arg(&script_path)
        .arg(&s.url)
        .env("LAUNCH_TEST_API_KEY", CLIENT_KEY)
        .env("LAUNCH_TEST_MODEL", "mock-model")
        // The SDK must not pick up a real key or endpoint from the machine.
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("PYTHONUNBUFFERED", "1");
    run_client_script(
        client,
        Duration::from_secs(120),
        &format!("the Python client {}", script_path.display()),
    )
    .await;

    let chats = mock.chat_requests();
    // 4 tool turns x 2 model calls, 4 session/recall turns, 2 provider failures
    // (a 400 is not retried); 401s, 404s, 400s and 422s never reach the model.
    assert_eq!(chats.len(), 14, "model calls: {chats:#?}");
    for r in &chats {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {PROVIDER_KEY}").as_str()),
            "the client's key must never be forwarded to the provider"
        );
    }

    // Streamed client requests are streamed from the model too (three tool
    // turns of two calls, one provider failure, one streamed session turn);
    // plain ones are not.
    let streamed = chats.iter().filter(|r| r.body["stream"] == true).count();
    assert_eq!(streamed, 8, "streamed model calls");

    // The tool round trip: the model's call, then its result, went back.
    let follow_up = chats
        .iter()
        .find(|r| r.messages().last().is_some_and(|m| m["content"] == "14.0"))
        .expect("no request carried the calculator's result");
    let messages = follow_up.messages();
    let last = &messages[messages.len() - 1];
    let call = &messages[messages.len() - 2];
    assert_eq!(last["role"], "tool");
    assert_eq!(call["role"], "assistant");
    assert_eq!(
        call["tool_calls"][0]["function"]["name"],
        "calculator_evaluate"
    );
    assert_eq!(call["tool_calls"][0]["id"], last["tool_call_id"]);
    let args: Value = serde_json::from_str(
        call["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args, json!({"expression": "2 * (3 + 4)"}));

    // Session history: the recalls saw the earlier turns, in order.
    let recalls: Vec<Vec<String>> = chats
        .iter()
        .filter(|r| {
            r.messages()
                .last()
                .is_some_and(|m| m["content"] == "recall")
        })
        .map(transcript)
        .collect();
    assert_eq!(
        recalls,
        [
            vec![
                "user: My name is Ada.",
                "assistant: ok: My name is Ada.",
                "user: recall"
            ],
            vec![
                "user: My name is Ada.",
                "assistant: ok: My name is Ada.",
                "user: recall",
                "assistant: You said: My name is Ada.",
                "user: recall"
            ],
            vec!["user: recall"],
        ]
    );
}
