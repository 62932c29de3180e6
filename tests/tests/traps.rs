//! A crashing plugin is a typed error for the caller, never a host crash, and
//! the next call to the same plugin works.

#![allow(clippy::unwrap_used)]

use launch::plugins::ToolError;
use launch_tests::PluginDir;
use serde_json::json;

#[tokio::test]
async fn guest_panic_is_reported_with_its_message_and_the_plugin_keeps_working() {
    let dir = PluginDir::new().fixture("trap");
    let registry = dir.load();
    match registry
        .call("trap_panic", &json!({"message": "kaboom 42"}))
        .await
    {
        Err(ToolError::Trap { plugin, message }) => {
            assert_eq!(plugin, "trap");
            assert!(
                message.contains("kaboom 42"),
                "the panic message reaches the caller: {message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let err = registry
        .call("trap_unreachable", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "trap");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert_eq!(
        registry.call("trap_ok", &json!({})).await.unwrap(),
        json!("still alive")
    );
}
