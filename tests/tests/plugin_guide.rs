//! The plugin author guide, docs/plugins.md, run as written: every `sh` block,
//! in order, from a folder laid out like a Launch installation. This scaffolds
//! a plugin in Rust, Python and JavaScript, builds each with its toolchain
//! (offline, from the caches `make` fills), checks it, calls its tool through
//! `launch tools call` and through the agent loop (`launch chat` and then the
//! HTTP server, with the mock LLM), so the guide cannot rot.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{Server, launch_bin, repo_root};
use serde_json::{Value, json};

/// A fenced code block of the guide and the `## ` section it is in.
struct Block {
    section: String,
    lang: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        if let Some(block) = open.as_mut() {
            if line.starts_with("```") {
                blocks.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
        } else if let Some(lang) = line.strip_prefix("```") {
            open = Some(Block {
                section: section.clone(),
                lang: lang.trim().to_owned(),
                text: String::new(),
            });
        } else if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_owned();
        }
    }
    assert!(open.is_none(), "unclosed code block in the guide");
    blocks
}

/// The `sh` blocks of each section, joined, in the guide's order.
fn scripts(blocks: &[Block]) -> Vec<(String, String)> {
    let mut scripts: Vec<(String, String)> = Vec::new();
    for block in blocks.iter().filter(|b| b.lang == "sh") {
        match scripts.last_mut() {
            Some((section, script)) if *section == block.section => script.push_str(&block.text),
            _ => scripts.push((block.section.clone(), block.text.clone())),
        }
    }
    scripts
}

/// The mock model: asked to "Use TOOL to greet Ada twice", it calls TOOL;
/// given the tool's result, it answers with it.
fn greeting_model(request: &Value) -> Reply {
    let messages = request["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    if last["role"] == "tool" {
        return Reply::text(format!("Done: {}", last["content"].as_str().unwrap()));
    }
    let asked = last["content"].as_str().unwrap_or_default();
    match asked.split_whitespace().find(|w| w.ends_with("_greet")) {
        Some(tool) => Reply::tool(tool, json!({"name": "Ada", "times": 2})),
        None => Reply::text("I was not asked to use a tool."),
    }
}

fn python_scripts_dir() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run_section(work: &Path, section: &str, script: &str, mock: &MockLlm) -> String {
    let bin_dir = launch_bin().parent().unwrap().to_owned();
    // pip's script folder too, where `make toolchains` put componentize-py.
    let path = std::env::join_paths(
        [bin_dir, python_scripts_dir()]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    // Rust scaffolds share the guest build folder of `make plugins`, so they
    // reuse its compiled wit-bindgen.
    let cargo_target = std::env::var_os("WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("launch-guide-wasm-target"));
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(work)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", cargo_target)
        // No network: every toolchain must work from what `make` installed.
        .env("CARGO_NET_OFFLINE", "true")
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .env("LAUNCH_LLM_BASE_URL", mock.base_url())
        .env("LAUNCH_LLM_API_KEY", "guide-test-key")
        .env("LAUNCH_LLM_MODEL", "mock-model")
        .env("NO_COLOR", "1")
        .env_remove("LAUNCH_PLUGINS_DIR")
        .env_remove("LAUNCH_DATA_DIR")
        .env_remove("LAUNCH_CONFIG")
        .env_remove("LAUNCH_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "== {section} ({:.1} s)\n{script}-- stdout\n{stdout}-- stderr\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the guide's section `{section}` failed ({}); its commands, stdout and stderr are above",
        out.status
    );
    stdout
}

fn contains(haystack: &str, needle: &str, what: &str) {
    assert!(
        haystack.contains(needle),
        "{what}: expected {needle:?} in:\n{haystack}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_guide_runs_as_written() {
    let guide = std::fs::read_to_string(repo_root().join("docs/plugins.md")).unwrap();
    let blocks = blocks(&guide);
    let scripts = scripts(&blocks);
    let sections: Vec<&str> = scripts.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        sections,
        [
            "Quick start (Rust)",
            "Walk-through: Python",
            "Walk-through: JavaScript",
            "Testing a plugin locally"
        ],
        "the guide's runnable sections changed; update the expectations below"
    );

    let mock = MockLlm::start().await;
    mock.respond_with(greeting_model);
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("plugins")).unwrap();

    let mut outputs = Vec::new();
    for (section, script) in &scripts {
        let (work, section, script, mock_ref) = (
            work.path().to_owned(),
            section.clone(),
            script.clone(),
            &mock,
        );
        // The commands block; the mock LLM keeps running on the runtime.
        let stdout =
            tokio::task::block_in_place(|| run_section(&work, &section, &script, mock_ref));
        outputs.push(stdout);
    }

    // Each walk-through: a strict check, `tools call`, and a chat whose tool
    // result came back from the plugin.
    for (stdout, section) in outputs.iter().zip(&sections).take(3) {
        contains(stdout, "OK: 1 tool(s), 0 warning(s)", section);
        contains(stdout, "\"Hello, Ada! Hello, Ada!\"", section);
        contains(stdout, "Done: \"Hello, Ada! Hello, Ada!\"", section);
    }
    let testing = &outputs[3];
    contains(testing, "\"Hello, Grace!\"", "Testing a plugin locally");
    for tool in ["greeter_greet", "py_greeter_greet", "js_greeter_greet"] {
        contains(testing, tool, "tools list");
    }
    let check: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("check.json")).unwrap()).unwrap();
    assert_eq!(check["ok"], true, "{check:#}");
    assert_eq!(check["tools"][0]["name"], "py_greeter_greet");
    assert_eq!(check["plugin"]["ignored_exports"], json!(["exports#init"]));

    // The model saw each tool with the descriptions from the WIT docs, in all
    // three languages, and got each tool's result.
    let requests = mock.chat_requests();
    for tool in ["greeter_greet", "py_greeter_greet", "js_greeter_greet"] {
        let offered = requests
            .iter()
            .flat_map(|r| r.body["tools"].as_array().cloned().unwrap_or_default())
            .find(|t| t["function"]["name"] == tool)
            .unwrap_or_else(|| panic!("{tool} was never offered to the model"));
        contains(
            offered["function"]["description"].as_str().unwrap(),
            "Greet someone by name.",
            tool,
        );
        assert_eq!(
            offered["function"]["parameters"]["properties"]["name"]["description"],
            "Who to greet, e.g. `Ada`.",
            "{tool}"
        );
    }
    let tool_results = requests
        .iter()
        .filter(|r| r.messages().last().is_some_and(|m| m["role"] == "tool"))
        .count();
    assert_eq!(tool_results, 3, "one tool result per `launch chat`");

    // The code shown in the guide is the code the scaffolds contain.
    let shown = |lang: &str| -> Vec<&str> {
        blocks
            .iter()
            .filter(|b| b.lang == lang)
            .map(|b| b.text.as_str())
            .collect()
    };
    for (lang, file) in [
        ("rust", "greeter/src/lib.rs"),
        ("python", "py-greeter/app.py"),
        ("js", "js-greeter/js-greeter.js"),
    ] {
        let source = std::fs::read_to_string(work.path().join(file)).unwrap();
        for block in shown(lang) {
            contains(
                &source,
                block,
                &format!("the guide's {lang} code vs {file}"),
            );
        }
    }
    let world = std::fs::read_to_string(work.path().join("greeter/wit/world.wit")).unwrap();
    contains(
        &world,
        shown("wit")[0],
        "the guide's first WIT block vs the scaffold",
    );

    // The three plugins in the server's agent loop, over HTTP: results and
    // tool errors from every language reach the model.
    let base = mock.base_url();
    let server = Server::start_in(
        &work.path().join("plugins"),
        &work.path().join("data"),
        &[
            ("LAUNCH_LLM_BASE_URL", base.as_str()),
            ("LAUNCH_LLM_API_KEY", "guide-test-key"),
            ("LAUNCH_LLM_MODEL", "mock-model"),
        ],
        false,
    );
    let tools = ["greeter_greet", "py_greeter_greet", "js_greeter_greet"];
    for tool in tools {
        mock.push(Reply::tool(tool, json!({"name": "Grace"})));
        mock.push(Reply::tool(tool, json!({"name": " ", "times": 3})));
    }
    mock.push(Reply::text("All greeted."));
    let response: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"model": "any", "messages": [{"role": "user", "content": "Greet Grace in every language."}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        response["choices"][0]["message"]["content"], "All greeted.",
        "{response:#}"
    );
    let steps = response["launch"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6, "{response:#}");
    for (pair, tool) in steps.chunks(2).zip(tools) {
        assert_eq!(pair[0]["name"], tool);
        assert_eq!(pair[0]["result"], "Hello, Grace!", "{tool}: {:#}", pair[0]);
        assert_eq!(
            pair[1]["error"]["code"], "tool_error",
            "{tool}: {:#}",
            pair[1]
        );
        contains(
            pair[1]["error"]["message"].as_str().unwrap(),
            "name is empty; pass the name of the person to greet",
            tool,
        );
    }
}
