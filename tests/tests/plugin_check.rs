//! `launch plugin check`: tools, imports and grants, warnings, `--strict`, rejections (not a component, missing imports, an incompatible SDK, name collisions), and agreement with the server's own loading.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use launch_tests::{fixture_wasm, launch_bin, plugin_wasm, repo_root};
use serde_json::Value;

/// The calculator's tool description and parameter doc, as written in
/// plugins/calculator/wit/world.wit.
const CALC_SUMMARY: &str = "Evaluate an arithmetic expression and return its numeric value.";
const CALC_PARAM: &str =
    "The arithmetic expression to evaluate, for example `2 * (3 + 4)` or `sqrt(2) / 2`.";

/// A data folder shared by every test here whose compile cache
/// (`DATA/cache/components`) is the one `PluginDir::new()` shares, so the
/// binary reuses what the other tests compiled (entries are content-addressed
/// and written atomically).
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shared = std::env::temp_dir().join("launch-test-compile-cache");
        std::fs::create_dir_all(&shared).unwrap();
        let data = std::env::temp_dir().join("launch-test-check-data");
        std::fs::create_dir_all(data.join("cache")).unwrap();
        let link = data.join("cache/components");
        // Another test process may have made it already; a real folder there
        // (not a link) works too, just without sharing.
        if let Err(e) = std::os::unix::fs::symlink(&shared, &link) {
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        }
        assert!(link.is_dir(), "{} is not a folder", link.display());
        data
    })
}

/// Runs `launch ARGS` in an empty working folder (no launch.toml, no
/// ./plugins) with no LAUNCH_* variables.
fn launch(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(launch_bin())
        .args(args)
        .current_dir(cwd.path())
        .env_remove("LAUNCH_PLUGINS_DIR")
        .env_remove("LAUNCH_DATA_DIR")
        .env_remove("LAUNCH_CONFIG")
        .env_remove("LAUNCH_LOG")
        .output()
        .unwrap()
}

/// `launch plugin check FILE ARGS... --data-dir DATA`.
fn check(file: &Path, args: &[&str]) -> Output {
    let mut all = vec!["plugin", "check", file.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend(["--data-dir", data_dir().to_str().unwrap()]);
    launch(&all)
}

/// `launch plugin check FILE --json ARGS...`, parsed.
fn check_json(file: &Path, args: &[&str]) -> (Output, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = check(file, &all);
    let value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&out), stderr(&out)));
    (out, value)
}

/// `launch tools list --json --plugins DIR --data-dir DATA`, parsed.
fn tools_list(dir: &Path) -> Value {
    let out = launch(&[
        "tools",
        "list",
        "--json",
        "--plugins",
        dir.to_str().unwrap(),
        "--data-dir",
        data_dir().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code, with the output in the message when it is not `expected`.
fn assert_exit(out: &Output, expected: i32) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Copies `wasm` into `dir` as `NAME.wasm` (and `manifest`, when given, as `NAME.toml`).
fn put(dir: &Path, name: &str, wasm: &Path, manifest: Option<&str>) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(wasm, &path).unwrap();
    if let Some(text) = manifest {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    path
}

fn calculator_manifest() -> String {
    std::fs::read_to_string(repo_root().join("plugins/calculator/calculator.toml")).unwrap()
}

/// A folder that does not exist: no plugins to collide with.
fn no_plugins(tmp: &tempfile::TempDir) -> String {
    tmp.path().join("no-plugins").to_str().unwrap().to_owned()
}

/// The SDK's WIT with its package version changed to `version`.
fn sdk_wit(version: &str) -> String {
    let wit = std::fs::read_to_string(repo_root().join("wit/plugin.wit")).unwrap();
    let from = "package launch:plugin@0.1.0;";
    assert!(
        wit.contains(from),
        "wit/plugin.wit no longer declares 0.1.0"
    );
    wit.replace(from, &format!("package launch:plugin@{version};"))
}

#[test]
fn a_good_plugin_prints_its_tools_imports_and_ok() {
    let wit =
        std::fs::read_to_string(repo_root().join("plugins/calculator/wit/world.wit")).unwrap();
    assert!(
        wit.contains(&format!("/// {CALC_SUMMARY}")),
        "the WIT changed"
    );
    assert!(wit.contains(CALC_PARAM), "the WIT changed");

    let tmp = tempfile::tempdir().unwrap();
    let file = put(
        tmp.path(),
        "calculator",
        &plugin_wasm("calculator"),
        Some(&calculator_manifest()),
    );
    let out = check(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let manifest = tmp.path().join("calculator.toml");
    for expected in [
        format!(
            "{}: plugin `calculator`, built against launch:plugin@0.1.0, manifest {}",
            file.display(),
            manifest.display()
        ),
        "\ntools (1):\n  calculator_evaluate  (export `evaluate`)\n".to_owned(),
        format!("\n    {CALC_SUMMARY}\n"),
        format!("\"description\": \"{CALC_PARAM}\""),
        "\"required\": [\n          \"expression\"\n        ]".to_owned(),
        "    result:\n      {\n        \"type\": \"number\"\n      }".to_owned(),
        "\nimports (".to_owned(),
        "wasi:cli/environment@".to_owned(),
        "closed: no environment variables, grant them with `[grants] env` in the manifest"
            .to_owned(),
        "grants it imports but is not given (uses fail until the manifest grants them; grant only what a tool needs): [grants] env\n".to_owned(),
        "\nOK: 1 tool(s), 0 warning(s)\n".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    // `@param` lines become the parameter's description, not the tool's.
    assert!(!text.contains("@param"), "{text}");
    assert!(!text.contains("warnings ("), "{text}");
    assert!(!text.contains("REJECTED"), "{text}");
}

#[test]
fn json_output_has_the_schema_tools_list_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let file = put(
        tmp.path(),
        "calculator",
        &plugin_wasm("calculator"),
        Some(&calculator_manifest()),
    );
    let (out, json) = check_json(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    assert_eq!(json["ok"], true, "{json:#}");
    assert_eq!(json["error"], Value::Null, "{json:#}");
    assert_eq!(json["path"], file.to_str().unwrap());
    let plugin = &json["plugin"];
    assert_eq!(plugin["name"], "calculator");
    assert_eq!(plugin["sdk"], "0.1.0");
    assert_eq!(plugin["tools"], serde_json::json!(["calculator_evaluate"]));
    assert_eq!(plugin["warnings"], serde_json::json!([]));
    assert_eq!(
        plugin["manifest"],
        tmp.path().join("calculator.toml").to_str().unwrap()
    );

    let tools = json["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{json:#}");
    let tool = &tools[0];
    assert_eq!(tool["name"], "calculator_evaluate");
    assert_eq!(tool["export"], "evaluate");
    assert!(
        tool["description"]
            .as_str()
            .unwrap()
            .starts_with(CALC_SUMMARY),
        "{tool:#}"
    );
    assert_eq!(
        tool["parameters"]["properties"]["expression"]["description"],
        CALC_PARAM
    );

    let imports = json["imports"].as_array().unwrap();
    assert!(!imports.is_empty());
    for import in imports {
        let name = import["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{import}"));
        let capability = import["capability"]
            .as_str()
            .unwrap_or_else(|| panic!("{import}"));
        assert!(name.contains(':') && name.contains('@'), "{import}");
        assert!(!capability.is_empty(), "{import}");
    }
    let environment = imports
        .iter()
        .find(|i| {
            i["name"]
                .as_str()
                .unwrap()
                .starts_with("wasi:cli/environment@")
        })
        .unwrap_or_else(|| panic!("{imports:#?}"));
    assert_eq!(
        environment["capability"],
        "closed: no environment variables, grant them with `[grants] env` in the manifest"
    );

    // The very same tool as the server lists it.
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "calculator",
        &plugin_wasm("calculator"),
        Some(&calculator_manifest()),
    );
    let list = tools_list(dir.path());
    let listed = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "calculator_evaluate")
        .unwrap_or_else(|| panic!("{list:#}"));
    assert_eq!(tool["parameters"], listed["parameters"]);
    assert_eq!(tool["description"], listed["description"]);
    assert_eq!(tool["output_schema"], listed["output_schema"]);
}

#[test]
fn toolchain_exports_are_not_tools_and_strict_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(repo_root().join("plugins/stats/stats.toml")).unwrap();
    let file = put(tmp.path(), "stats", &plugin_wasm("stats"), Some(&manifest));
    let (out, json) = check_json(&file, &["--strict", "--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    assert_eq!(json["ok"], true, "{json:#}");
    let plugin = &json["plugin"];
    assert_eq!(plugin["warnings"], serde_json::json!([]), "{plugin:#}");
    let ignored = plugin["ignored_exports"].as_array().unwrap();
    assert!(
        ignored.contains(&Value::from("exports#init")),
        "{ignored:?}"
    );
    let names: Vec<&str> = json["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"stats_describe"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("init")), "{names:?}");
    assert_eq!(plugin["tools"], serde_json::json!(names));

    let out = check(&file, &["--strict", "--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(
            "exports that are not tools (not declared by the plugin's WIT world): exports#init\n"
        ),
        "{text}"
    );
    assert!(text.contains("\nOK: 4 tool(s), 0 warning(s)\n"), "{text}");
    assert!(!text.contains("stats_init"), "{text}");
}

#[test]
fn filesystem_imports_say_whether_directories_are_granted() {
    let tmp = tempfile::tempdir().unwrap();
    let capability = |json: &Value, interface: &str| -> String {
        json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| {
                i["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{interface}@"))
            })
            .unwrap_or_else(|| panic!("no {interface} import: {json:#}"))["capability"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Without a manifest, nothing is granted.
    let bare = tempfile::tempdir().unwrap();
    let file = put(bare.path(), "files", &plugin_wasm("files"), None);
    let (out, json) = check_json(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    assert_eq!(json["plugin"]["manifest"], Value::Null);
    let closed = "closed: no directories, grant them with `[grants] dirs` in the manifest";
    assert_eq!(capability(&json, "wasi:filesystem/preopens"), closed);
    assert_eq!(capability(&json, "wasi:filesystem/types"), closed);
    let missing_grants = |json: &Value| -> Vec<String> {
        json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["name"].as_str().unwrap().starts_with("wasi:filesystem/"))
            .map(|i| i["missing_grant"].as_str().unwrap_or("(none)").to_owned())
            .collect()
    };
    assert_eq!(missing_grants(&json), ["[grants] dirs", "[grants] dirs"]);
    let out = check(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("manifest none (nothing granted)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("grants it imports but is not given")
                && l.contains("[grants] dirs")),
        "{text}"
    );

    // With one directory granted (the files plugin's manifest shape).
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let granted = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = {:?}, guest = \"/workspace\", mode = \"read-only\" }}]\n",
        work.to_str().unwrap()
    );
    let file = put(
        granted.path(),
        "files",
        &plugin_wasm("files"),
        Some(&manifest),
    );
    let (out, json) = check_json(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let open = format!(
        "directories: 1 granted by `[grants] dirs`; {} at /workspace read-only",
        work.canonicalize().unwrap().display()
    );
    assert_eq!(capability(&json, "wasi:filesystem/preopens"), open);
    assert_eq!(capability(&json, "wasi:filesystem/types"), open);
    assert_eq!(missing_grants(&json), ["(none)", "(none)"]);
    let dirs = &json["plugin"]["policy"]["grants"]["dirs"];
    assert_eq!(dirs.as_array().map(Vec::len), Some(1), "{dirs}");
    let out = check(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("wasi:filesystem/preopens@") && l.ends_with(&open)),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("grants it imports but is not given")
                && l.contains("[grants] dirs")),
        "{text}"
    );
}

#[test]
fn an_undocumented_plugin_loads_with_a_warning_and_fails_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let file = fixture_wasm("undocumented");
    let warning = "plugin `undocumented` carries no WIT docs, so its tools have no descriptions and the model must guess how to use them; build it with `launch plugin pack --wit WIT_DIR";

    let out = check(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("\nwarnings (1):\n"), "{text}");
    assert!(text.contains(&format!("  ! {warning}")), "{text}");
    assert!(text.contains("\nOK: 1 tool(s), 1 warning(s)\n"), "{text}");
    assert!(
        text.contains("Function `mystery` of plugin `undocumented` (undocumented)."),
        "{text}"
    );

    let (out, json) = check_json(&file, &["--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 0);
    assert_eq!(json["ok"], true);
    assert_eq!(json["error"], Value::Null);
    let warnings = json["plugin"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().starts_with(warning),
        "{warnings:?}"
    );

    let out = check(&file, &["--strict", "--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("\nFAILED (--strict): 1 warning(s); fix them or drop --strict\n"),
        "{text}"
    );
    assert!(!text.contains("\nOK:"), "{text}");

    let (out, json) = check_json(&file, &["--strict", "--plugins", &no_plugins(&tmp)]);
    assert_exit(&out, 1);
    assert_eq!(json["ok"], false);
    // Not rejected by the server: only --strict fails it.
    assert_eq!(json["error"], Value::Null);
}

#[test]
fn files_that_are_not_components_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0u32..512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(!garbage.starts_with(b"\0asm"));
    for (name, bytes, expected) in [
        (
            "garbage",
            &garbage[..],
            "not a WebAssembly file (bad magic bytes); expected a component built for wasm32-wasip2",
        ),
        (
            "core",
            &b"\0asm\x01\0\0\0"[..],
            "this is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target",
        ),
    ] {
        let file = tmp.path().join(format!("{name}.wasm"));
        std::fs::write(&file, bytes).unwrap();
        let out = check(&file, &["--plugins", &no_plugins(&tmp)]);
        assert_exit(&out, 1);
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!(
                "{}: REJECTED; the server would skip it:\n  {expected}",
                file.display()
            )),
            "{name}: {text}"
        );
        let (out, json) = check_json(&file, &["--plugins", &no_plugins(&tmp)]);
        assert_exit(&out, 1);
        assert_eq!(json["ok"], false);
        assert_eq!(json["plugin"], Value::Null);
        assert_eq!(json["tools"], serde_json::json!([]));
        assert!(
            json["error"].as_str().unwrap().starts_with(expected),
            "{name}: {json:#}"
        );
    }
}

#[test]
fn a_missing_import_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check(
        &fixture_wasm("bad-import"),
        &["--plugins", &no_plugins(&tmp)],
    );
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("REJECTED; the server would skip it:"),
        "{text}"
    );
    assert!(
        text.contains("component imports instance `fixture:bad-import/missing@0.1.0`"),
        "{text}"
    );
    assert!(text.contains("`frobnicate`"), "{text}");
    assert!(
        text.contains("The host provides WASI 0.2 (cli, io, clocks, random, filesystem, sockets, http) and launch:plugin@0.1.x (log, config)"),
        "{text}"
    );
}

/// `launch plugin pack --wit WIT IN -o OUT`.
fn pack(wit: &Path, input: &Path, output: &Path) {
    let out = launch(&[
        "plugin",
        "pack",
        "--wit",
        wit.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
}

#[test]
fn a_future_sdk_is_rejected_as_the_server_rejects_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();

    // Imports launch:plugin/log@0.2.0.
    let imported = put(&plugins, "sdk-next", &fixture_wasm("sdk-next"), None);
    // No launch:plugin import, but packed with a WIT world that includes
    // launch:plugin/host@0.2.0.
    let wit = tmp.path().join("wit");
    std::fs::create_dir_all(wit.join("deps/launch-plugin-next")).unwrap();
    std::fs::write(
        wit.join("deps/launch-plugin-next/plugin.wit"),
        sdk_wit("0.2.0"),
    )
    .unwrap();
    std::fs::write(
        wit.join("world.wit"),
        "package fixture:undocumented@0.1.0;\n\nworld undocumented {\n    include launch:plugin/host@0.2.0;\n\n    /// Twice `x` plus one.\n    ///\n    /// @param x A number.\n    export mystery: func(x: u32) -> u32;\n}\n",
    )
    .unwrap();
    let packed = plugins.join("packed-next.wasm");
    pack(&wit, &fixture_wasm("undocumented"), &packed);

    let message = |source: &str| {
        format!(
            "built against an incompatible plugin SDK: its {source} launch:plugin@0.2.0, but this host implements launch:plugin@0.1.0 and accepts 0.1.x; upgrade Launch, or rebuild the plugin with the SDK in this Launch's wit/ folder (`launch plugin new` copies it)"
        )
    };
    let cases = [
        (&imported, message("imports")),
        (&packed, message("packed WIT includes")),
    ];
    let empty = no_plugins(&tmp);
    for (file, expected) in &cases {
        let out = check(file, &["--plugins", &empty]);
        assert_exit(&out, 1);
        let text = stdout(&out);
        assert_eq!(
            text,
            format!(
                "{}: REJECTED; the server would skip it:\n  {expected}\n",
                file.display()
            )
        );
        let (out, json) = check_json(file, &["--plugins", &empty]);
        assert_exit(&out, 1);
        assert_eq!(json["ok"], false);
        assert_eq!(json["plugin"], Value::Null);
        assert_eq!(json["error"], expected.as_str(), "{json:#}");
    }

    // The server skips both, with the very same messages.
    let list = tools_list(&plugins);
    assert_eq!(list["tools"], serde_json::json!([]), "{list:#}");
    let failed = list["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{list:#}");
    for (file, expected) in &cases {
        let entry = failed
            .iter()
            .find(|f| f["path"] == file.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in failed: {list:#}", file.display()));
        assert_eq!(entry["error"], expected.as_str());
        // And check says the same when it runs on the server's own folder.
        let (_, json) = check_json(file, &["--plugins", plugins.to_str().unwrap()]);
        assert_eq!(json["error"], entry["error"]);
    }
}

#[test]
fn tool_name_collisions_with_the_plugins_folder() {
    let calculator = plugin_wasm("calculator");
    let manifest = calculator_manifest();
    let installed = tempfile::tempdir().unwrap();
    put(installed.path(), "my-calc", &calculator, Some(&manifest));
    let dir = installed.path().to_str().unwrap();

    // The same file name replaces the installed plugin: no collision.
    let candidate = tempfile::tempdir().unwrap();
    let same = put(candidate.path(), "my-calc", &calculator, Some(&manifest));
    let out = check(&same, &["--plugins", dir]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("\nOK: 1 tool(s), 0 warning(s)\n"),
        "{}",
        stdout(&out)
    );

    // `my_calc` is another plugin whose tool is also `my_calc_evaluate`.
    let other = put(candidate.path(), "my_calc", &calculator, Some(&manifest));
    let expected = format!(
        "tool name `my_calc_evaluate` is already provided by plugin `my-calc`, which loaded first (plugins already in use keep their tools; a newcomer is refused); rename this file or remove `my-calc` (tool names are PLUGIN_FUNCTION) (in {dir})"
    );
    let out = check(&other, &["--plugins", dir]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    // The plugin is still described, then rejected.
    assert!(
        text.contains("  my_calc_evaluate  (export `evaluate`)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\nREJECTED; the server would skip it: {expected}\n"
        )),
        "{text}"
    );
    let (out, json) = check_json(&other, &["--plugins", dir]);
    assert_exit(&out, 1);
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"], expected.as_str());
    assert_eq!(json["plugin"]["name"], "my_calc");

    // Without the folder there is nothing to collide with.
    let out = check(&other, &["--plugins", &no_plugins(&candidate)]);
    assert_exit(&out, 0);

    // The server, given both (neither established), skips `my_calc`, the
    // newer file, for the same reason.
    put(installed.path(), "my_calc", &calculator, Some(&manifest));
    let list = tools_list(installed.path());
    let failed = list["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{list:#}");
    assert_eq!(
        failed[0]["path"],
        installed.path().join("my_calc.wasm").to_str().unwrap()
    );
    assert_eq!(
        format!("{} (in {dir})", failed[0]["error"].as_str().unwrap()),
        expected
    );

    // The other way round: checking `my-calc` against a folder holding only
    // `my_calc` fails too: once installed, the newcomer is the one skipped,
    // whatever the names' order.
    let only_other = tempfile::tempdir().unwrap();
    put(only_other.path(), "my_calc", &calculator, Some(&manifest));
    let (out, json) = check_json(&same, &["--plugins", only_other.path().to_str().unwrap()]);
    assert_exit(&out, 1);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("is already provided by plugin `my_calc`"),
        "{json:#}"
    );
}
