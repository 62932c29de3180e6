//! The MCP server, driven by the official MCP Python SDK (`mcp`) as the client:
//! runs `tests/python/test_mcp_client.py` against `launch serve` (Streamable
//! HTTP at `/mcp`, auth on and off) and against `launch mcp --stdio` spawned
//! by the SDK. The script initializes, lists the tools, calls calculator,
//! clock, text, files and http-fetch tools, and checks tool errors (`isError`
//! with the message), an unknown tool (a protocol error) and a capability
//! error. This file then checks what only the server shows: the `/mcp` route
//! sits behind the API's auth, rate limit and metrics.
//!
//! Needs `python3` with the packages in `tests/python/requirements.txt`
//! (`make pydeps`; `make test` installs them).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use launch_tests::{PluginDir, Server, launch_bin, repo_root, run_client_script};

/// The key clients must present when auth is on.
const CLIENT_KEY: &str = "mcp-client-key-0123456789";

/// Fails (never skips) when the SDK is missing, saying how to install it.
fn require_mcp_sdk() {
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m, mcp; print(m.version('mcp'))",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {
            eprintln!("mcp SDK {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        Ok(out) => panic!(
            "the Python `mcp` package is not importable; run `make pydeps` (pip install -r tests/python/requirements.txt)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("python3 is not runnable ({e}); install Python 3, then run `make pydeps`"),
    }
}

/// Every first-party plugin; `files` granted `workspace` read-write.
fn all_plugins(workspace: &Path) -> PluginDir {
    PluginDir::new()
        .plugin("calculator")
        .plugin("clock")
        .plugin("text")
        .plugin("http-fetch")
        .plugin("files")
        .manifest(
            "files",
            &format!(
                "[grants]\ndirs = [{{ host = {:?}, guest = \"/workspace\", mode = \"read-write\" }}]\n",
                workspace.display().to_string()
            ),
        )
}

/// Runs the Python script with `args` and `env`; returns its stdout.
async fn python(args: &[&str], env: &[(&str, &str)]) -> String {
    let script = repo_root().join("tests/python/test_mcp_client.py");
    let mut client = tokio::process::Command::new("python3");
    client
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .env("PYTHONUNBUFFERED", "1");
    run_client_script(
        client,
        Duration::from_secs(180),
        &format!("the Python client {} {args:?}", script.display()),
    )
    .await
}

const FULL_TOOLS: &str = "calculator_evaluate,clock_now,clock_convert,text_slugify,text_stats,text_split,files_read_file,files_write_file,http_fetch_fetch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http_with_auth() {
    require_mcp_sdk();
    let workspace = tempfile::tempdir().unwrap();
    let dir = all_plugins(workspace.path());
    let s = Server::start(dir.path(), &[("LAUNCH_API_KEYS", CLIENT_KEY)]);
    let workspace_path = workspace.path().display().to_string();
    let out = python(
        &["http", &s.url],
        &[
            ("LAUNCH_TEST_API_KEY", CLIENT_KEY),
            ("LAUNCH_TEST_WORKSPACE", &workspace_path),
            ("LAUNCH_TEST_TOOLS", FULL_TOOLS),
        ],
    )
    .await;
    assert!(out.contains("http ok"), "{out}");
    assert!(out.contains("auth: refused"), "{out}");

    // MCP requests and the tool calls they made are in the metrics.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", s.url))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |needle: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in /metrics:\n{metrics}"))
            .to_owned()
    };
    line(r#"launch_mcp_requests_total{method="tools/call",transport="http"}"#);
    line(r#"launch_mcp_requests_total{method="tools/list",transport="http"}"#);
    line(r#"launch_mcp_requests_total{method="initialize",transport="http"}"#);
    line(r#"launch_tool_calls_total{tool="calculator_evaluate",outcome="ok"}"#);
    line(r#"launch_tool_calls_total{tool="calculator_evaluate",outcome="invalid_arguments"}"#);
    line(r#"launch_http_requests_total{method="POST",route="/mcp",status="200"}"#);
    line(r#"launch_http_requests_total{method="POST",route="/mcp",status="401"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http_without_auth() {
    require_mcp_sdk();
    let dir = PluginDir::new()
        .plugin("calculator")
        .plugin("clock")
        .plugin("text");
    let s = Server::start(dir.path(), &[]);
    let out = python(&["http", &s.url], &[]).await;
    assert!(out.contains("http ok"), "{out}");
    assert!(!out.contains("auth: refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spawns_launch_mcp_stdio() {
    require_mcp_sdk();
    let workspace = tempfile::tempdir().unwrap();
    let dir = all_plugins(workspace.path());
    let data = tempfile::tempdir().unwrap();
    let launch = launch_bin().display().to_string();
    let plugins = dir.path().display().to_string();
    let data_dir = data.path().display().to_string();
    let workspace_path = workspace.path().display().to_string();
    let out = python(
        &["stdio", &launch, &plugins, &data_dir],
        &[
            ("LAUNCH_TEST_WORKSPACE", &workspace_path),
            ("LAUNCH_TEST_TOOLS", FULL_TOOLS),
        ],
    )
    .await;
    assert!(out.contains("stdio ok"), "{out}");
}

/// `/mcp` shares the API's per-caller rate limit and refuses other hosts
/// (DNS rebinding) when auth is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_is_rate_limited_and_checks_the_host() {
    let dir = PluginDir::new().plugin("calculator");
    let s = Server::start(
        dir.path(),
        &[
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "2"),
            ("LAUNCH_RATE_LIMIT_BURST", "2"),
        ],
    );
    let client = reqwest::Client::new();
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let post = |host: Option<&'static str>| {
        let mut req = client
            .post(format!("{}/mcp", s.url))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&body);
        if let Some(host) = host {
            req = req.header("Host", host);
        }
        req.send()
    };
    let first = post(None).await.unwrap();
    assert_eq!(first.status(), 200);
    let listed: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        listed["result"]["tools"][0]["name"], "calculator_evaluate",
        "{listed}"
    );
    let rebinding = post(Some("attacker.example")).await.unwrap();
    assert_eq!(rebinding.status(), 403, "a foreign Host is refused");
    // Refused before the rate limit: it cost the caller nothing.
    assert_eq!(post(None).await.unwrap().status(), 200);
    let limited = post(None).await.unwrap();
    assert_eq!(
        limited.status(),
        429,
        "the third request in a minute is limited"
    );
    assert!(limited.headers().contains_key("retry-after"));
}
