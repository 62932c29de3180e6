//! Protection and operations over real HTTP: bearer auth on and off, public
//! paths, rate limits hit and recovered, the turn concurrency limit, message
//! limits, Prometheus metrics, the OpenAPI document, and graceful shutdown
//! with a turn in flight.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use launch_tests::mock_llm::{MockLlm, Reply};
use launch_tests::{PluginDir, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "test-api-key-0123456789";

fn start(mock: &MockLlm, extra: &[(&str, &str)]) -> (PluginDir, Server) {
    let dir = PluginDir::new().plugin("calculator");
    let base = mock.base_url();
    let mut env = vec![
        ("LAUNCH_LLM_BASE_URL", base.as_str()),
        ("LAUNCH_LLM_MODEL", "mock-model"),
        ("LAUNCH_LLM_API_KEY", "k"),
    ];
    env.extend_from_slice(extra);
    let server = Server::start(dir.path(), &env);
    (dir, server)
}

/// Writes a `launch.toml` in a temp dir and returns both (keep the dir alive).
fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("launch.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn chat_body(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn bearer_auth_guards_everything_but_public_paths() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(&mock, &[("LAUNCH_API_KEYS", KEY)]);
    let http = reqwest::Client::new();
    for path in [
        "/v1/tools",
        "/v1/models",
        "/v1/sessions",
        "/metrics",
        "/openapi.json",
    ] {
        let r = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_api_key");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("LAUNCH_API_KEYS")
        );
        let r = http
            .get(format!("{}{path}", s.url))
            .bearer_auth("wrong-key-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong key"
        );
        let r = http
            .get(format!("{}{path}", s.url))
            .header("authorization", format!("Basic {KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with another scheme"
        );
        let r = http
            .get(format!("{}{path}", s.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} with the key");
    }
    let r = http
        .post(format!("{}/v1/tools/calculator_evaluate/invoke", s.url))
        .json(&json!({"expression": "1+1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for path in ["/healthz", "/readyz"] {
        let r = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} is public by default");
    }
    // The access_token query parameter is for WebSocket upgrades only.
    let r = http
        .get(format!("{}/v1/tools?access_token={KEY}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Public paths are configurable: /metrics open for a scraper, /readyz closed.
    let (_c, path) = config("[server]\npublic_paths = [\"/healthz\", \"/metrics\"]\n");
    let (_d2, s2) = start(&mock, &[("LAUNCH_API_KEYS", KEY), ("LAUNCH_CONFIG", &path)]);
    let status = |p: &str| {
        let url = format!("{}{p}", s2.url);
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(status("/metrics").await, StatusCode::OK);
    assert_eq!(status("/readyz").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn short_api_keys_are_refused_at_startup() {
    let dir = PluginDir::new();
    let out = std::process::Command::new(launch_tests::launch_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LAUNCH_PLUGINS_DIR", dir.path())
        .env("LAUNCH_DATA_DIR", dir.path())
        .env("LAUNCH_API_KEYS", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16"), "{err}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_recover() {
    let mock = MockLlm::start().await;
    let other = "other-api-key-0123456789";
    let keys = format!("{KEY},{other}");
    let (_d, s) = start(
        &mock,
        &[
            ("LAUNCH_API_KEYS", &keys),
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "60"),
            ("LAUNCH_RATE_LIMIT_BURST", "3"),
        ],
    );
    let http = reqwest::Client::new();
    let get = |key: &'static str| {
        let url = format!("{}/v1/tools", s.url);
        let http = http.clone();
        async move { http.get(url).bearer_auth(key).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(get(KEY).await.status(), StatusCode::OK);
    }
    let limited = get(KEY).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let e: Value = limited.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    assert_eq!(e["error"]["type"], "rate_limit_error");
    // Limits are per key: the other key is unaffected.
    assert_eq!(get(other).await.status(), StatusCode::OK);
    // Health checks are never limited.
    let r = http.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // After Retry-After, the caller is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(get(KEY).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_auth_rate_limits_are_per_client_address() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(
        &mock,
        &[
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "60"),
            ("LAUNCH_RATE_LIMIT_BURST", "2"),
        ],
    );
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{}/v1/models", s.url))
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn turns_beyond_the_concurrency_limit_get_503_busy() {
    let mock = MockLlm::start().await;
    mock.push(Reply::text("slow").delayed_by(Duration::from_secs(3)));
    let (_c, path) = config("[server]\nmax_concurrent_turns = 1\nturn_queue_timeout_secs = 1\n");
    let (_d, s) = start(&mock, &[("LAUNCH_CONFIG", &path)]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", s.url);
    let slow = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(url)
                .json(&chat_body("first"))
                .send()
                .await
                .unwrap()
        }
    });
    while mock.chat_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = http
        .post(&url)
        .json(&chat_body("second"))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "1");
    let e: Value = busy.json().await.unwrap();
    assert_eq!(e["error"]["code"], "server_busy");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_turns")
    );
    assert_eq!(slow.await.unwrap().status(), StatusCode::OK);
    // Tools are not turns: direct invocation is never queued behind them.
    mock.push(Reply::text("fine"));
    let r = http
        .post(&url)
        .json(&chat_body("third"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn message_count_and_size_limits_are_enforced() {
    let mock = MockLlm::start().await;
    let (_c, path) = config("[server]\nmax_messages = 2\nmax_message_bytes = 100\n");
    let (_d, s) = start(&mock, &[("LAUNCH_CONFIG", &path)]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", s.url);
    let three = json!({"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}
    ]});
    let r = http.post(&url).json(&three).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_messages")
    );
    let r = http
        .post(&url)
        .json(&chat_body(&"x".repeat(101)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "messages[0].content");
    assert_eq!(mock.chat_requests().len(), 0);
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let matches = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (rest.starts_with('{') && matches).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn metrics_count_requests_tools_llm_calls_and_turns() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(&mock, &[]);
    let http = reqwest::Client::new();
    for expr in ["1+1", "1/0"] {
        http.post(format!("{}/v1/tools/calculator_evaluate/invoke", s.url))
            .json(&json!({"expression": expr}))
            .send()
            .await
            .unwrap();
    }
    http.post(format!("{}/v1/tools/nope/invoke", s.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    mock.push_all([
        Reply::tool("calculator_evaluate", json!({"expression": "2*3"})),
        Reply::text("6"),
    ]);
    let r = http
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&chat_body("2*3?"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tool = |outcome| {
        sample(
            &page,
            "launch_tool_calls_total",
            &[("tool", "calculator_evaluate"), ("outcome", outcome)],
        )
    };
    assert_eq!(tool("ok"), Some(2.0), "{page}");
    assert_eq!(tool("tool_error"), Some(1.0));
    assert_eq!(
        sample(
            &page,
            "launch_tool_calls_total",
            &[("tool", "(unknown)"), ("outcome", "unknown_tool")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "launch_llm_requests_total",
            &[("provider", "together"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    assert!(sample(&page, "launch_llm_tokens_total", &[("kind", "prompt")]).unwrap() > 0.0);
    assert_eq!(
        sample(&page, "launch_turns_total", &[("finish_reason", "stop")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "launch_http_requests_total",
            &[("route", "/v1/tools/{name}/invoke"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert!(page.contains("launch_tool_call_duration_seconds_bucket"));
    assert!(page.contains("# TYPE launch_turns_active gauge"));
    assert!(page.lines().any(|l| l.starts_with("launch_turns_active 0")));
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(&mock, &[]);
    let http = reqwest::Client::new();
    let spec: Value = http
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has responses"
            );
            assert!(
                op["summary"].is_string() || op["description"].is_string(),
                "{method} {path} is described"
            );
            listed.push((method.to_uppercase(), path.clone()));
        }
    }
    listed.sort();
    let expected = [
        ("DELETE", "/v1/sessions/{id}"),
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/readyz"),
        ("GET", "/ui/{file}"),
        ("GET", "/v1/models"),
        ("GET", "/v1/sessions"),
        ("GET", "/v1/sessions/{id}"),
        ("GET", "/v1/sessions/{id}/ws"),
        ("GET", "/v1/tools"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/sessions"),
        ("POST", "/v1/sessions/{id}/messages"),
        ("POST", "/v1/tools/{name}/invoke"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected);
    // Every documented route is served (a 404 here would be the fallback's).
    for (method, path) in &listed {
        let url = format!(
            "{}{}",
            s.url,
            path.replace("{id}", "none")
                .replace("{name}", "none")
                .replace("{file}", "app.js")
        );
        let r = http
            .request(method.parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap_or_default();
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path} is not routed"
        );
    }
    for schema in [
        "SessionInfo",
        "SessionDetail",
        "TurnResponse",
        "PostMessage",
        "ChatCompletionRequest",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_turns_then_exits() {
    let mock = MockLlm::start().await;
    let (dir, s) = start(&mock, &[]);
    let http = reqwest::Client::new();
    let id = http
        .post(format!("{}/v1/sessions", s.url))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mock.push_all([
        Reply::text("stateless answer").delayed_by(Duration::from_millis(1500)),
        Reply::text("stored answer").delayed_by(Duration::from_millis(1500)),
    ]);
    let stateless = tokio::spawn({
        let (http, url) = (http.clone(), format!("{}/v1/chat/completions", s.url));
        async move { http.post(url).json(&chat_body("one")).send().await.unwrap() }
    });
    while mock.chat_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = tokio::spawn({
        let (http, url) = (http.clone(), format!("{}/v1/sessions/{id}/messages", s.url));
        async move {
            http.post(url)
                .json(&json!({"content": "two"}))
                .send()
                .await
                .unwrap()
        }
    });
    while mock.chat_requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = s.url.clone();
    let data = s.data_dir.clone();
    s.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Not accepting any more, while the two turns finish.
    assert!(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_err(),
        "new connections are refused during shutdown"
    );
    let r = stateless.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "stateless answer");
    let r = stored.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut s = s;
    assert!(s.wait().success());
    assert!(s.log().iter().any(|l| l.contains("stopped")));
    // The stored turn is in the store, flushed (no WAL left behind).
    let db = rusqlite::Connection::open(data.join("launch.db")).unwrap();
    let answer: String = db
        .query_row(
            "SELECT content FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(answer, "stored answer");
    drop(dir);
}
