//! The examples stay valid: the annotated configuration parses and resolves.

#![allow(clippy::unwrap_used)]

use launch::config::{EmbedderChoice, FileConfig, agent, memory, provider, server};
use launch_tests::repo_root;

#[test]
fn annotated_configuration_parses_and_resolves() {
    let file = FileConfig::load(&repo_root().join("examples/launch.toml"), true).unwrap();
    assert_eq!(file.llm.providers.len(), 3);
    let no_env = |_: &str| None;
    let p = provider(&file.llm, &no_env).unwrap();
    assert_eq!((p.name.as_str(), p.max_retries), ("together", 3));
    let ollama = |k: &str| (k == "LAUNCH_LLM_PROVIDER").then(|| "ollama".to_owned());
    let p = provider(&file.llm, &ollama).unwrap();
    assert_eq!(
        (p.base_url.as_str(), p.api_key.as_deref()),
        ("http://localhost:11434/v1", Some("ollama"))
    );
    assert_eq!(agent(&file.agent, &no_env).unwrap().max_parallel_tools, 8);
    let s = server(&file.server, &no_env).unwrap();
    assert!(s.api_keys.is_empty());
    assert_eq!(s.rate_limit.unwrap().per_minute.get(), 600);
    let (m, embedder) = memory(&file.memory, &no_env).unwrap();
    assert_eq!((m.context_tokens, m.recall_k), (6000, 4));
    assert_eq!(
        embedder,
        EmbedderChoice::Auto("./models/all-MiniLM-L6-v2".into())
    );
}
