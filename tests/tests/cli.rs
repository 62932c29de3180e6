//! The `launch` CLI: `tools list`, `tools call`, exit codes and messages.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use launch_tests::{PluginDir, launch_bin};
use serde_json::Value;

fn launch(dir: &PluginDir, args: &[&str]) -> Output {
    Command::new(launch_bin())
        .args(args)
        .env("LAUNCH_PLUGINS_DIR", dir.path())
        .env("LAUNCH_DATA_DIR", dir.path().join(".data"))
        .env_remove("LAUNCH_LOG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tools_call_prints_the_json_result() {
    let dir = PluginDir::new().fixture("kitchen-sink");
    let out = launch(
        &dir,
        &[
            "tools",
            "call",
            "kitchen_sink_echo_tuple",
            r#"{"value": [1, "a", false]}"#,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result, serde_json::json!([1, "a", false]));
}

#[test]
fn tools_call_failures_are_one_clear_line_and_nonzero() {
    let dir = PluginDir::new().fixture("kitchen-sink");
    for (args, expected) in [
        (
            vec![
                "tools",
                "call",
                "kitchen_sink_fail",
                r#"{"message": "nope"}"#,
            ],
            "error: nope (tool_error)",
        ),
        (
            vec!["tools", "call", "kitchen_sink_echo_u8", r#"{"value": -1}"#],
            "error: invalid argument at `$.value`: expected an integer from 0 to 255, got integer -1 (invalid_arguments)",
        ),
        (
            vec!["tools", "call", "no_such_tool"],
            "error: unknown tool `no_such_tool`",
        ),
        (
            vec!["tools", "call", "kitchen_sink_echo_u8", "{not json"],
            "error: the arguments are not valid JSON",
        ),
    ] {
        let out = launch(&dir, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.lines().any(|l| l.starts_with(expected)),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn tools_list_json_has_schemas_policy_and_failures() {
    let dir = PluginDir::new()
        .fixture("kitchen-sink")
        .manifest(
            "kitchen-sink",
            "[limits]\ntimeout_ms = 1234\n[grants]\nenv = [\"HOME\"]\n",
        )
        .file("broken.wasm", b"nope");
    let out = launch(&dir, &["tools", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let tool = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "kitchen_sink_greet")
        .unwrap();
    assert_eq!(tool["plugin"], "kitchen-sink");
    assert_eq!(tool["parameters"]["required"], serde_json::json!(["name"]));
    let plugin = &list["plugins"][0];
    assert_eq!(plugin["policy"]["limits"]["timeout_ms"], 1234);
    assert_eq!(
        plugin["policy"]["grants"]["env"],
        serde_json::json!(["HOME"])
    );
    assert!(
        list["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file")
    );
}

#[test]
fn tools_list_is_readable_for_people() {
    let dir = PluginDir::new().fixture("kitchen-sink");
    let out = launch(&dir, &["tools", "list"]);
    let text = stdout(&out);
    assert!(
        text.contains("kitchen_sink_greet  (kitchen-sink)"),
        "{text}"
    );
    assert!(text.contains("- title (string, optional)"), "{text}");
}

#[test]
fn every_command_has_help() {
    let dir = PluginDir::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["tools", "--help"],
        vec!["tools", "list", "--help"],
        vec!["tools", "call", "--help"],
        vec!["plugin", "pack", "--help"],
    ] {
        let out = launch(&dir, &args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage: launch"), "{args:?}");
    }
}
