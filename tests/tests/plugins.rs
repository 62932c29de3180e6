//! The five first-party plugins, through the real runtime, with their error cases.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use launch_tests::{PluginDir, call_ok as ok, tool_error as tool_err};
use serde_json::json;

#[tokio::test]
async fn calculator_evaluates_and_explains_errors() {
    let dir = PluginDir::new().plugin("calculator");
    let r = dir.load();
    for (expr, value) in [
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("-2 ^ 2", -4.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("sqrt(16) + pow(2, 10)", 1028.0),
        ("max(1, 7, 3) - min(4, 2)", 5.0),
        ("1.5e3 / 3", 500.0),
    ] {
        assert_eq!(
            ok(&r, "calculator_evaluate", json!({"expression": expr})).await,
            json!(value),
            "{expr}"
        );
    }
    assert!(
        tool_err(&r, "calculator_evaluate", json!({"expression": "1 / 0"}))
            .await
            .contains("division by zero")
    );
    assert!(
        tool_err(&r, "calculator_evaluate", json!({"expression": "(1 + 2"}))
            .await
            .to_lowercase()
            .contains("parenthes")
    );
    assert!(
        tool_err(&r, "calculator_evaluate", json!({"expression": "foo(2)"}))
            .await
            .contains("foo")
    );
    assert!(
        tool_err(&r, "calculator_evaluate", json!({"expression": "sqrt(-1)"}))
            .await
            .contains("sqrt")
    );
    assert!(
        tool_err(&r, "calculator_evaluate", json!({"expression": ""}))
            .await
            .contains("empty")
    );
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(
        r.call("calculator_evaluate", &json!({"expression": deep}))
            .await
            .is_err()
    );
    let tool = r.get("calculator_evaluate").unwrap();
    assert!(
        tool.parameters["properties"]["expression"]["description"]
            .as_str()
            .unwrap()
            .contains("2 * (3 + 4)")
    );
}

#[tokio::test]
async fn clock_knows_zones_and_does_date_arithmetic() {
    let dir = PluginDir::new().plugin("clock");
    let r = dir.load();
    let now = ok(&r, "clock_now", json!({})).await;
    assert_eq!(now["time-zone"], "UTC");
    let unix = now["unix-seconds"].as_i64().unwrap();
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (unix - host_now).abs() < 60,
        "guest clock {unix} vs host {host_now}"
    );
    let paris = ok(&r, "clock_now", json!({"time-zone": "Europe/Paris"})).await;
    assert_eq!(paris["time-zone"], "Europe/Paris");
    let converted = ok(
        &r,
        "clock_convert",
        json!({"timestamp": "2024-07-01T12:00:00Z", "to-zone": "America/New_York"}),
    )
    .await;
    assert_eq!(converted["utc-offset"], "-04:00");
    assert_eq!(converted["is-dst"], true);
    let added = ok(
        &r,
        "clock_add",
        json!({"timestamp": "2024-01-31", "duration": {"months": 1}}),
    )
    .await;
    assert!(
        added["date"].as_str().unwrap().starts_with("2024-02-29"),
        "{added}"
    );
    let diff = ok(
        &r,
        "clock_difference",
        json!({"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T12:00:00Z", "unit": "hours"}),
    )
    .await;
    assert_eq!(diff["amount"], json!(36.0));
    assert!(
        tool_err(&r, "clock_now", json!({"time-zone": "Mars/Olympus"}))
            .await
            .contains("Mars/Olympus")
    );
    assert!(
        tool_err(
            &r,
            "clock_convert",
            json!({"timestamp": "yesterday-ish", "to-zone": "UTC"})
        )
        .await
        .contains("yesterday-ish")
    );
}

#[tokio::test]
async fn text_exercises_records_variants_flags_and_options() {
    let dir = PluginDir::new().plugin("text");
    let r = dir.load();
    let stats = ok(
        &r,
        "text_stats",
        json!({"text": "Hello world. Hello again!"}),
    )
    .await;
    assert_eq!(stats["words"], 4);
    assert_eq!(stats["sentences"], 2);
    let out = ok(&r, "text_transform", json!({"text": "  Hello World  ", "ops": ["trim", {"to-case": "snake"}, {"replace": {"pattern": "hello", "replacement": "bye"}}]})).await;
    assert_eq!(out, json!("bye_world"));
    let parts = ok(
        &r,
        "text_split",
        json!({"text": "a,b,c", "by": {"custom": ","}, "limit": 2}),
    )
    .await;
    assert_eq!(parts.as_array().unwrap().len(), 2);
    let found = ok(&r, "text_find", json!({"text": "Cat cat concat", "pattern": "cat", "options": ["case-insensitive", "whole-word"]})).await;
    assert_eq!(found["total"], 2);
    assert_eq!(
        ok(&r, "text_slugify", json!({"text": "Hello, Wörld!"})).await,
        json!("hello-world")
    );
    let top = ok(
        &r,
        "text_count_words",
        json!({"text": "b a b c b a", "top": 1}),
    )
    .await;
    assert_eq!(top, json!([["b", 3]]));
    // The schema is derived from the WIT, variant and flags included.
    let ops = &r.get("text_transform").unwrap().parameters["properties"]["ops"]["items"]["oneOf"];
    assert!(ops[0]["enum"].as_array().unwrap().contains(&json!("trim")));
    let options = &r.get("text_find").unwrap().parameters["properties"]["options"];
    assert_eq!(
        options["items"]["enum"],
        json!(["case-insensitive", "whole-word", "regex"])
    );
    let e = r
        .call(
            "text_transform",
            &json!({"text": "x", "ops": [{"to-case": "shouty"}]}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`$.ops[0].to-case`"), "{e}");
}

#[tokio::test]
async fn files_works_inside_its_granted_directory_only() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("notes.txt"),
        "first line\nsecond needle line\n",
    )
    .unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/workspace\", mode = \"read-write\" }}]\n",
        work.path().display()
    );
    let dir = PluginDir::new()
        .plugin("files")
        .manifest("files", &manifest);
    let r = dir.load();
    let listing = ok(&r, "files_list", json!({})).await;
    assert!(listing.to_string().contains("notes.txt"), "{listing}");
    let read = ok(&r, "files_read_file", json!({"path": "notes.txt"})).await;
    assert!(read.to_string().contains("second needle line"), "{read}");
    ok(
        &r,
        "files_write_file",
        json!({"path": "sub/new.txt", "content": "hi", "mode": "create-new"}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(work.path().join("sub/new.txt")).unwrap(),
        "hi"
    );
    let hits = ok(&r, "files_search", json!({"pattern": "needle"})).await;
    assert!(hits.to_string().contains("notes.txt"), "{hits}");
    let escape = tool_err(
        &r,
        "files_read_file",
        json!({"path": "../../../../etc/passwd"}),
    )
    .await;
    assert!(!escape.contains("root:"), "{escape}");

    // Without a grant every tool says what to add to the manifest.
    let ungranted = PluginDir::new().plugin("files").manifest("files", "");
    let r = ungranted.load();
    let e = tool_err(&r, "files_list", json!({})).await;
    assert!(e.contains("no directory is granted"), "{e}");
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test]
async fn http_fetch_reaches_granted_hosts_only() {
    let addr = serve(
        Router::new()
            .route(
                "/hello",
                get(|| async {
                    ([("x-test", "yes")], "hello from the test server").into_response()
                }),
            )
            .route(
                "/elsewhere",
                get(|| async { Redirect::temporary("http://127.0.0.2:1/secret") }),
            ),
    )
    .await;
    let manifest = format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port());
    let dir = PluginDir::new()
        .plugin("http-fetch")
        .manifest("http-fetch", &manifest);
    let r = dir.load();
    let res = ok(
        &r,
        "http_fetch_fetch",
        json!({"url": format!("http://127.0.0.1:{}/hello", addr.port())}),
    )
    .await;
    assert_eq!(res["status"], 200);
    assert_eq!(res["body"], "hello from the test server");
    let denied = tool_err(
        &r,
        "http_fetch_fetch",
        json!({"url": format!("http://127.0.0.1:{}/elsewhere", addr.port())}),
    )
    .await;
    assert!(denied.contains("denied"), "{denied}");
    let other_port = tool_err(
        &r,
        "http_fetch_fetch",
        json!({"url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert!(other_port.contains("denied"), "{other_port}");

    // No grants: nothing is reachable.
    let closed = PluginDir::new()
        .plugin("http-fetch")
        .manifest("http-fetch", "");
    let r = closed.load();
    let denied = tool_err(
        &r,
        "http_fetch_fetch",
        json!({"url": format!("http://127.0.0.1:{}/hello", addr.port())}),
    )
    .await;
    assert!(denied.contains("denied"), "{denied}");
}
