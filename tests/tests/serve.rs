//! `launch serve`: starts with the plugins it could load, answers health
//! checks, and shuts down cleanly on SIGTERM.

#![allow(clippy::unwrap_used)]

use launch_tests::{PluginDir, Server};
use serde_json::Value;

#[tokio::test]
async fn serve_reports_health_and_readiness_then_stops_on_sigterm() {
    let dir = PluginDir::new()
        .fixture("kitchen-sink")
        .file("broken.wasm", b"nope");
    let server = Server::start(dir.path(), &[]);
    let health: Value = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["plugins"]["loaded"],
        serde_json::json!(["kitchen-sink"])
    );
    assert!(
        ready["plugins"]["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file")
    );
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}
