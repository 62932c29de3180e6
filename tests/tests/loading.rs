//! Discovery: bad files are reported and skipped, good ones load, and the
//! compile cache makes the second start skip compilation.

#![allow(clippy::unwrap_used)]

use launch::plugins::engine::CacheOutcome;
use launch::plugins::{LoadReport, Registry};
use launch_tests::{PluginDir, fixture_wasm};
use serde_json::json;

fn failure<'a>(report: &'a LoadReport, file: &str) -> &'a str {
    report
        .failed
        .iter()
        .find(|f| f.path.file_name().unwrap() == file)
        .map(|f| f.error.as_str())
        .unwrap_or_else(|| panic!("{file} should have failed; report: {report:#?}"))
}

#[tokio::test]
async fn bad_plugins_are_reported_and_good_ones_load() {
    let dir = PluginDir::new()
        .fixture("kitchen-sink")
        .file(
            "corrupt.wasm",
            b"\0asm\x0d\0\x01\0garbage that is not a component",
        )
        .file("text-file.wasm", b"hello, I am not wasm")
        .fixture("bad-import")
        .fixture("collide")
        .fixture_as("trap", "badmanifest")
        .manifest("badmanifest", "[limits]\ntimeout = 5\n")
        // Two file names that normalise to the same tool names.
        .fixture_as("trap", "dup-name")
        .fixture_as("trap", "dup_name");
    let registry = dir.load();
    let report = registry.report();

    let loaded: Vec<&str> = report.loaded.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(loaded, ["dup-name", "kitchen-sink"]);
    assert_eq!(
        registry
            .call("kitchen_sink_echo_u8", &json!({"value": 1}))
            .await
            .unwrap(),
        json!(1)
    );

    let corrupt = failure(report, "corrupt.wasm");
    assert!(corrupt.contains("cannot compile"), "{corrupt}");
    let text = failure(report, "text-file.wasm");
    assert!(text.contains("not a WebAssembly file"), "{text}");
    let import = failure(report, "bad-import.wasm");
    assert!(import.contains("fixture:bad-import/missing"), "{import}");
    assert!(import.contains("The host provides WASI 0.2"), "{import}");
    let collide = failure(report, "collide.wasm");
    assert!(
        collide.contains("both become tool `collide_run`"),
        "{collide}"
    );
    let manifest = failure(report, "badmanifest.wasm");
    assert!(
        manifest.contains("badmanifest.toml") && manifest.contains("unknown field `timeout`"),
        "{manifest}"
    );
    let dup = failure(report, "dup_name.wasm");
    assert!(
        dup.contains("already provided by plugin `dup-name`"),
        "{dup}"
    );
    assert_eq!(report.failed.len(), 6, "{:#?}", report.failed);
}

#[tokio::test]
async fn core_modules_are_rejected_with_advice() {
    // The smallest valid core module: magic + version 1.
    let dir = PluginDir::new().file("core.wasm", b"\0asm\x01\0\0\0");
    let registry = dir.load();
    let err = failure(registry.report(), "core.wasm");
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
}

#[tokio::test]
async fn undocumented_plugins_load_with_a_loud_warning() {
    let dir = PluginDir::new().fixture("undocumented");
    let registry = dir.load();
    let plugin = &registry.report().loaded[0];
    assert!(
        plugin
            .warnings
            .iter()
            .any(|w| w.contains("carries no WIT docs")),
        "{:?}",
        plugin.warnings
    );
    let tool = registry.get("undocumented_mystery").unwrap();
    assert!(
        tool.description.contains("undocumented"),
        "{}",
        tool.description
    );
    let result = registry
        .call("undocumented_mystery", &json!({"x": 2}))
        .await;
    assert!(result.unwrap().is_number());
}

#[test]
fn missing_plugins_directory_is_a_clear_error() {
    let dir = PluginDir::new();
    let mut options = dir.options();
    options.dir = dir.path().join("nope");
    let err = Registry::load(&options).err().unwrap().to_string();
    assert!(
        err.contains("cannot read the plugins directory") && err.contains("LAUNCH_PLUGINS_DIR"),
        "{err}"
    );
}

#[test]
fn second_start_loads_from_the_compile_cache() {
    let dir = PluginDir::with_private_cache()
        .fixture("kitchen-sink")
        .fixture("trap");
    let first = dir.load();
    assert!(
        first
            .report()
            .loaded
            .iter()
            .all(|p| p.cache == CacheOutcome::Miss)
    );
    drop(first);
    let second = dir.load();
    assert!(
        second
            .report()
            .loaded
            .iter()
            .all(|p| p.cache == CacheOutcome::Hit),
        "{:#?}",
        second.report().loaded
    );

    // A corrupted cache entry is ignored and recompiled, never trusted.
    let cache = dir.data.path().join("cache/components");
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), b"junk").unwrap();
    }
    let third = dir.load();
    assert!(
        third.report().failed.is_empty(),
        "{:#?}",
        third.report().failed
    );
    assert!(
        third
            .report()
            .loaded
            .iter()
            .all(|p| p.cache == CacheOutcome::Miss)
    );

    // The cache is tamper-evident: an entry moved over another plugin's
    // name, or one whose tag does not match, is compiled again, not loaded.
    let mut entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "{entries:?}");
    std::fs::copy(&entries[0], &entries[1]).unwrap();
    let mut forged = std::fs::read(&entries[0]).unwrap();
    forged[0] ^= 1;
    std::fs::write(&entries[0], forged).unwrap();
    let swapped = dir.load();
    assert!(swapped.report().failed.is_empty());
    assert!(
        swapped
            .report()
            .loaded
            .iter()
            .all(|p| p.cache == CacheOutcome::Miss),
        "{:#?}",
        swapped.report().loaded
    );

    // Changed bytes are a different cache key.
    let bytes = std::fs::read(fixture_wasm("trap")).unwrap();
    let mut changed = bytes.clone();
    // Append an empty custom section named "x": same code, different content hash.
    changed.extend_from_slice(&[0, 2, 1, b'x']);
    std::fs::write(dir.path().join("trap.wasm"), changed).unwrap();
    let fourth = dir.load();
    let trap = fourth
        .report()
        .loaded
        .iter()
        .find(|p| p.name == "trap")
        .unwrap();
    assert_eq!(trap.cache, CacheOutcome::Miss);
}
