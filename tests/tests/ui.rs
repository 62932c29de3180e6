//! The web chat UI in a real browser: starts `launch serve` three times (plain,
//! with API keys, without an LLM key) behind a scripted mock LLM, with the
//! `calculator` and `text` plugins, and runs `tests/ui/chat.test.mjs`, which
//! drives the system Chromium through playwright-core: streamed answers, tool
//! steps, the session list and history, Markdown rendering, XSS payloads from
//! the model and from a tool, provider errors, a dropped stream, the API-key
//! prompt and the missing-LLM-key banner. Screenshots go to
//! `tests/artifacts/ui/`.
//!
//! Needs Node.js 20+, `tests/ui/node_modules` and `/usr/bin/chromium`
//! (`make uideps`); fails, never skips, without them. The servers serve the UI
//! files embedded in the binary unless `LAUNCH_UI_DIR` is set in the
//! environment (handy while editing the UI).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use launch_tests::mock_llm::{MockLlm, Recorded, Reply};
use launch_tests::{PluginDir, Server, repo_root, run_client_script};
use serde_json::{Value, json};

/// The key of the server with auth on (at least 16 characters).
const CLIENT_KEY: &str = "ui-test-key-0123456789abcdef";

/// The text the `Hello` message gets: every Markdown feature the UI renders.
const HELLO: &str = "## Hello from the mock model\n\n\
I can **stream** answers, use *tools* and format `code`:\n\n\
- a list item\n\
- another one with a [link](https://example.com)\n\n\
1. first\n\
2. second\n\n\
```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n\n\
| tool | plugin |\n|---|---|\n| calculator_evaluate | calculator |\n| text_transform | text |\n\n\
> Quotes work too.";

/// Markup and a `javascript:` link the UI must show as text.
const XSS_ANSWER: &str = "Payload: <img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script> \
                          and [x](javascript:window.__xss=3)";

/// Markup a tool returns (`text_transform` with no steps echoes its text).
const XSS_TOOL_TEXT: &str = "<img src=x onerror=\"window.__xss=4\">";

/// Answers by the last user message, and by whether the model is being sent
/// a tool result (the second model call of a tool turn).
fn script(body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(last) = messages.last() else {
        return Reply::error(400, "mock LLM: no messages");
    };
    let user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let tool_result = (last["role"] == "tool").then(|| last["content"].as_str().unwrap_or(""));
    // The calculator answers floats ("42.0"); show them as people write them.
    let number = |text: &str| {
        text.parse::<f64>()
            .map_or_else(|_| text.to_owned(), |n| n.to_string())
    };
    if user.contains("drop the line") {
        // Slow enough that the UI's stream is cut while the turn still runs.
        return match tool_result {
            None => Reply::tool("calculator_evaluate", json!({"expression": "2^10"})),
            Some(r) => Reply::text(format!("Recovered answer: 2^10 is **{}**.", number(r)))
                .delayed_by(Duration::from_secs(2)),
        };
    }
    if user.contains("6 times 7") {
        return match tool_result {
            None => Reply::tool("calculator_evaluate", json!({"expression": "6 * 7"})),
            Some(r) => Reply::text(format!(
                "6 × 7 = **{}**. I used the calculator tool so the arithmetic is exact, \
                 and this sentence streams in word by word.",
                number(r)
            )),
        };
    }
    if user.contains("xss-tool") {
        return match tool_result {
            None => Reply::tool("text_transform", json!({"text": XSS_TOOL_TEXT, "ops": []})),
            Some(_) => {
                Reply::text("The tool returned the text above; it is shown as text, not markup.")
            }
        };
    }
    if user.contains("xss-answer") {
        return Reply::text(XSS_ANSWER);
    }
    if user.contains("Please fail") {
        return Reply::error(500, "mock provider is down for maintenance");
    }
    Reply::text(HELLO)
}

/// Fails (never skips) when the browser or the Node packages are missing.
fn require_ui_deps(ui_dir: &Path) -> PathBuf {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "{} is missing; run `make uideps` (installs Debian's chromium and tests/ui/node_modules)",
        chromium.display()
    );
    assert!(
        ui_dir
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "{} has no node_modules/playwright-core; run `make uideps`",
        ui_dir.display()
    );
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            eprintln!("node {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        _ => panic!("`node` is not runnable; install Node.js 20 or newer, then run `make uideps`"),
    }
    chromium
}

/// Whether request `r` carried a tool result containing `text`.
fn sent_tool_result(r: &Recorded, text: &str) -> bool {
    r.messages()
        .iter()
        .any(|m| m["role"] == "tool" && m["content"].as_str().is_some_and(|c| c.contains(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_ui_in_a_real_browser() {
    let ui_dir = repo_root().join("tests/ui");
    let chromium = require_ui_deps(&ui_dir);
    let artifacts = repo_root().join("tests/artifacts/ui");
    std::fs::create_dir_all(&artifacts).unwrap();

    let mock = MockLlm::start().await;
    mock.respond_with(script);
    let dir = PluginDir::new().plugin("calculator").plugin("text");
    let base = mock.base_url();
    let llm = [
        ("LAUNCH_LLM_BASE_URL", base.as_str()),
        ("LAUNCH_LLM_MODEL", "mock-model"),
    ];
    let with_key = [llm[0], llm[1], ("LAUNCH_LLM_API_KEY", "provider-key")];
    let plain = Server::start(dir.path(), &with_key);
    let mut keyed_env = with_key.to_vec();
    keyed_env.push(("LAUNCH_API_KEYS", CLIENT_KEY));
    let keyed = Server::start(dir.path(), &keyed_env);
    let no_key = Server::start_with(dir.path(), &llm, true);

    let script_path = ui_dir.join("chat.test.mjs");
    let mut browser_test = tokio::process::Command::new("node");
    browser_test
        .arg(&script_path)
        .current_dir(&ui_dir)
        .env("LAUNCH_UI_URL", &plain.url)
        .env("LAUNCH_UI_AUTH_URL", &keyed.url)
        .env("LAUNCH_UI_API_KEY", CLIENT_KEY)
        .env("LAUNCH_UI_NOKEY_URL", &no_key.url)
        .env("LAUNCH_UI_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium);
    run_client_script(
        browser_test,
        Duration::from_secs(300),
        &format!("the browser test {}", script_path.display()),
    )
    .await;

    // The tools really ran: their results went back to the model.
    let chats = mock.chat_requests();
    assert!(
        chats.iter().any(|r| sent_tool_result(r, "42")),
        "no request carried the calculator's result"
    );
    assert!(
        // Tool results reach the model as JSON: a string result is quoted.
        chats
            .iter()
            .any(|r| sent_tool_result(r, &json!(XSS_TOOL_TEXT).to_string())),
        "no request carried text_transform's result"
    );
    assert!(
        chats.iter().any(|r| sent_tool_result(r, "1024")),
        "the turn whose stream was dropped did not run to its end"
    );
}
