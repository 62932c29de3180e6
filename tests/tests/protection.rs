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
    let id = new_session(&http, &s.url, None).await;
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

// ---- The HTTP edge (issue 15): connections, keyless pages, WebSockets ----

/// Creates a session (with `key`, if given) and returns its id.
async fn new_session(http: &reqwest::Client, url: &str, key: Option<&str>) -> String {
    let mut request = http.post(format!("{url}/v1/sessions"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let created: Value = request.send().await.unwrap().json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// `host:port` of a server URL.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://")
}

async fn connect(url: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(authority(url))
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `limit` passes; returns
/// what arrived and how long until the close (`None`: still open).
async fn read_until_closed(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> (String, Option<Duration>) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, reader.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&seen).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), None),
        }
    }
}

/// Writes `bytes` one at a time, `every` apart, until done or the server closes.
async fn drip(writer: &mut (impl tokio::io::AsyncWrite + Unpin), bytes: &[u8], every: Duration) {
    use tokio::io::AsyncWriteExt;
    for b in bytes {
        if writer.write_all(&[*b]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// A connection that sends `head` at once, then drips `drip_bytes`, and
/// reports what came back and when the server closed it.
async fn dripping_client(
    url: &str,
    head: String,
    drip_bytes: Vec<u8>,
    limit: Duration,
) -> (String, Option<Duration>) {
    use tokio::io::AsyncWriteExt;
    let mut stream = connect(url).await;
    let (mut reader, mut writer) = stream.split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let sending = async {
        drip(&mut writer, &drip_bytes, Duration::from_millis(200)).await;
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = sending => unreachable!(),
        outcome = read_until_closed(&mut reader, limit) => outcome,
    }
}

#[tokio::test]
async fn silent_dripping_and_idle_connections_are_closed_by_their_deadlines() {
    let mock = MockLlm::start().await;
    let (_c, config_path) = config(
        "[server]\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 2\nidle_timeout_secs = 3\n",
    );
    let (_d, s) = start(&mock, &[("LAUNCH_CONFIG", &config_path)]);
    let host = authority(&s.url).to_owned();
    let limit = Duration::from_secs(10);
    // Sends nothing at all.
    let silent = async {
        let mut c = connect(&s.url).await;
        read_until_closed(&mut c, limit).await
    };
    // Drips its headers a byte every 200 ms, however steadily.
    let header_drip = dripping_client(
        &s.url,
        String::new(),
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(200)
        )
        .into_bytes(),
        limit,
    );
    // Sends its headers, then drips a body that would take 40 s.
    let body_drip = dripping_client(
        &s.url,
        format!(
            "POST /v1/tools/calculator_evaluate/invoke HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        ),
        vec![b' '; 200],
        limit,
    );
    // Finishes one request, then waits: the keep-alive deadline (3 s), not
    // the header one (1 s), applies, so a second request at 1.5 s is served.
    let keep_alive = async {
        use tokio::io::AsyncWriteExt;
        let mut c = connect(&s.url).await;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        c.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.write_all(request.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let (seen, closed) = read_until_closed(&mut c, limit).await;
        (seen, closed.map(|_| started.elapsed()))
    };
    let (silent, header_drip, body_drip, keep_alive) =
        tokio::join!(silent, header_drip, body_drip, keep_alive);

    let at = silent.1.expect("a silent connection is closed");
    assert!(
        at >= Duration::from_millis(800) && at < Duration::from_millis(2500),
        "silent: closed after {at:?}"
    );
    let at = header_drip
        .1
        .expect("a connection dripping its headers is closed");
    assert!(
        at < Duration::from_millis(2500),
        "header drip: closed after {at:?}"
    );
    assert!(
        header_drip.0.is_empty(),
        "no answer to half a request: {}",
        header_drip.0
    );
    let at = body_drip
        .1
        .expect("a connection dripping its body is closed");
    assert!(
        at < Duration::from_millis(4000),
        "body drip: closed after {at:?}"
    );
    assert!(
        body_drip.0.starts_with("HTTP/1.1 408"),
        "body drip: {}",
        body_drip.0
    );
    assert!(
        body_drip.0.contains("body_read_timeout_secs"),
        "{}",
        body_drip.0
    );
    let (seen, closed) = keep_alive;
    assert_eq!(
        seen.matches("HTTP/1.1 200").count(),
        2,
        "both requests answered: {seen}"
    );
    let after_second = closed.expect("an idle keep-alive connection is closed");
    assert!(
        after_second >= Duration::from_millis(2500) && after_second < Duration::from_millis(5000),
        "keep-alive closed {after_second:?} after its last request"
    );
    let metrics = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["header_timeout", "idle_timeout"] {
        assert!(
            sample(
                &metrics,
                "launch_http_connections_closed_total",
                &[("reason", reason)]
            )
            .unwrap_or(0.0)
                >= 1.0,
            "{reason} counted:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_flood_of_idle_connections_is_capped_below_the_fd_limit_and_healthz_still_answers() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(
        &mock,
        &[
            ("LAUNCH_MAX_CONNECTIONS", "200"),
            ("LAUNCH_MAX_CONNECTIONS_PER_ADDRESS", "150"),
        ],
    );
    let host = authority(&s.url).to_owned();
    // This process holds ~800 sockets; a CI machine's soft limit may be 1,024.
    rlimit::increase_nofile_limit(4096).unwrap();
    // 600 connections from one address: silent ones and ones that sent half
    // a request. Held open by the client for the whole test.
    let mut flood = Vec::new();
    for i in 0..600 {
        use tokio::io::AsyncWriteExt;
        let Ok(mut c) = tokio::net::TcpStream::connect(&host).await else {
            continue;
        };
        if i % 2 == 0 {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHo").await;
        }
        flood.push(c);
    }
    // The server holds at most its cap; the rest were evicted or refused.
    let open = || {
        std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
            .unwrap()
            .count()
    };
    assert!(
        open() < 200 + 100,
        "descriptors stay near the cap: {}",
        open()
    );
    // Health checks are answered throughout (each evicts an idle connection).
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let r = http
            .get(format!("{}/healthz", s.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        latencies.push(started.elapsed());
    }
    latencies.sort();
    assert!(
        latencies[19] < Duration::from_secs(1),
        "healthz during the flood: {latencies:?}"
    );

    // Busy connections are never evicted: 150 requests whose bodies are
    // still arriving fill the per-address cap of a second address, and the
    // next connection from it gets a fast 503.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    drop(other);
    let mut busy = Vec::new();
    for _ in 0..150 {
        use tokio::io::AsyncWriteExt;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut c = socket.connect(host.parse().unwrap()).await.unwrap();
        c.write_all(format!("POST /v1/tools/calculator_evaluate/invoke HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").as_bytes()).await.unwrap();
        busy.push(c);
    }
    // Let the server dispatch them (a request is busy once its headers are read).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut refused = socket.connect(host.parse().unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    let (answer, closed) = read_until_closed(&mut refused, Duration::from_secs(5)).await;
    assert!(
        closed.is_some() && started.elapsed() < Duration::from_secs(2),
        "refused fast: {closed:?} {answer:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("too_many_connections") && answer.contains("max_connections_per_address"),
        "{answer}"
    );
    // The first address is unaffected by the second's cap.
    let r = http.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop((flood, busy));
}

#[tokio::test]
async fn the_server_raises_its_open_file_limit_to_the_hard_limit() {
    let dir = PluginDir::new().plugin("calculator");
    let s = Server::start_with_fd_limit(dir.path(), &[], "-Sn 256");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {line}"
    );
    assert_ne!(numbers[0], "256", "{line}");
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("connection limits") && l.contains("max_connections=")),
        "the limits are logged"
    );
}

#[tokio::test]
async fn a_keyless_server_refuses_foreign_hosts_foreign_origins_and_non_json_bodies() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("hi"));
    let (_d, s) = start(&mock, &[("LAUNCH_ALLOWED_HOSTS", "agent.example.com")]);
    let http = reqwest::Client::new();
    let port = s.url.rsplit(':').next().unwrap().to_owned();
    let with_host = |method: reqwest::Method, path: &str, host: &str| {
        http.request(method, format!("{}{path}", s.url))
            .header("host", host)
    };
    // DNS rebinding: a page's own name in `Host`.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/sessions"),
        (reqwest::Method::GET, "/v1/tools"),
        (reqwest::Method::POST, "/mcp"),
        (reqwest::Method::GET, "/"),
    ] {
        let r = with_host(method.clone(), path, &format!("evil.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "host_not_allowed");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("allowed_hosts")
        );
    }
    let r = with_host(
        reqwest::Method::POST,
        "/v1/tools/calculator_evaluate/invoke",
        "evil.example",
    )
    .json(&json!({"expression": "1+1"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Loopback names, IP addresses and configured names are served.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "agent.example.com".into(),
    ] {
        let r = with_host(reqwest::Method::GET, "/v1/sessions", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
    // A cross-site page: a loopback Host, but a foreign Origin.
    let r = http
        .post(format!("{}/v1/sessions", s.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "origin_not_allowed"
    );
    // A body any page can send without a preflight never reaches a handler.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = http
            .post(format!("{}/v1/sessions", s.url))
            .header("content-type", content_type)
            .body("{\"title\": \"from a page\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    let sessions: Value = http
        .get(format!("{}/v1/sessions", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["data"].as_array().unwrap().len(),
        0,
        "no session was created"
    );
    // The server's own pages (the web UI) still work: same-origin requests.
    let r = http
        .post(format!("{}/v1/sessions", s.url))
        .header("origin", &s.url)
        .json(&json!({"title": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // WebSocket upgrades check Origin the same way.
    let ws = format!("{}/v1/sessions/{id}/ws", s.url.replace("http://", "ws://"));
    let request = |origin: &str| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut r = ws.as_str().into_client_request().unwrap();
        r.headers_mut().insert("origin", origin.parse().unwrap());
        r
    };
    match tokio_tungstenite::connect_async(request("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!(
            "a foreign origin's WebSocket is refused: {:?}",
            other.map(|_| ())
        ),
    }
    assert!(
        tokio_tungstenite::connect_async(request(&s.url))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn with_api_keys_any_host_is_served_to_a_valid_key() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(&mock, &[("LAUNCH_API_KEYS", KEY)]);
    let r = reqwest::Client::new()
        .get(format!("{}/v1/tools", s.url))
        .header("host", "agent.example.org")
        .header("origin", "https://app.example.org")
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn websocket_turns_count_against_the_rate_limit_and_the_socket_stays_usable() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Frame;
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::text("answer"));
    let (_d, s) = start(
        &mock,
        &[
            ("LAUNCH_RATE_LIMIT_PER_MINUTE", "60"),
            ("LAUNCH_RATE_LIMIT_BURST", "3"),
        ],
    );
    let http = reqwest::Client::new();
    // Two of the three: the session and the upgrade.
    let id = new_session(&http, &s.url, None).await;
    let ws = format!("{}/v1/sessions/{id}/ws", s.url.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();
    let mut turn = async |text: &str| -> Value {
        socket
            .send(Frame::text(json!({"content": text}).to_string()))
            .await
            .unwrap();
        loop {
            let Frame::Text(t) = socket.next().await.unwrap().unwrap() else {
                continue;
            };
            let event: Value = serde_json::from_str(&t).unwrap();
            if event["type"] == "done" || event["type"] == "error" {
                return event;
            }
        }
    };
    assert_eq!(turn("one").await["type"], "done");
    let limited = turn("two").await;
    assert_eq!(limited["type"], "error", "{limited}");
    assert_eq!(limited["error"]["code"], "rate_limit_exceeded");
    let wait = limited["retry_after"].as_u64().unwrap();
    assert!((1..=2).contains(&wait), "{limited}");
    assert!(
        limited["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in")
    );
    // Still usable: after the wait, the next turn runs.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(turn("three").await["type"], "done");
    assert_eq!(
        mock.chat_requests().len(),
        2,
        "the refused turn never reached the model"
    );
}

#[tokio::test]
async fn websocket_frames_are_bounded_before_buffering_and_sockets_are_capped_and_reaped() {
    use tokio::io::AsyncWriteExt;
    let mock = MockLlm::start().await;
    let (_c, config_path) =
        config("[server]\nmax_websockets_per_caller = 3\nidle_timeout_secs = 2\n");
    let (_d, s) = start(&mock, &[("LAUNCH_CONFIG", &config_path)]);
    let http = reqwest::Client::new();
    let id = new_session(&http, &s.url, None).await;
    let host = authority(&s.url).to_owned();
    // A raw handshake, so the test controls every byte after it.
    let open = async || {
        let mut c = connect(&s.url).await;
        c.write_all(format!(
            "GET /v1/sessions/{id}/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        use tokio::io::AsyncReadExt;
        while !head.ends_with(b"\r\n\r\n") {
            if c.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        (c, String::from_utf8_lossy(&head).into_owned())
    };
    // A frame that announces 15 MiB is refused from its header: the socket
    // closes at once, without the server reading (and holding) the payload.
    let (mut big, head) = open().await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut frame = vec![0x81u8, 0xFF]; // FIN + text, masked, 64-bit length
    frame.extend_from_slice(&(15u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&vec![b'a'; 64 * 1024]);
    let _ = big.write_all(&frame).await;
    let (_, closed) = read_until_closed(&mut big, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(2)),
        "an oversized frame closes the socket: {closed:?}"
    );
    // At most three sockets per caller; the fourth upgrade is a 429.
    let mut held = Vec::new();
    for _ in 0..3 {
        let (c, head) = open().await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push(c);
    }
    let (_, head) = open().await;
    assert!(head.starts_with("HTTP/1.1 429"), "fourth socket: {head}");
    // A socket that never answers the server's pings is closed after the
    // idle timeout, which frees its place.
    let started = std::time::Instant::now();
    let (seen, closed) = read_until_closed(&mut held[0], Duration::from_secs(8)).await;
    let closed = closed.expect("a silent socket is closed");
    assert!(
        closed < Duration::from_secs(5) && started.elapsed() >= Duration::from_millis(1500),
        "closed after {closed:?}"
    );
    assert!(seen.contains("idle"), "the close frame says why: {seen:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, head) = open().await;
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "a place is free again: {head}"
    );
}

#[tokio::test]
async fn access_tokens_in_the_query_work_only_for_websocket_upgrades_and_are_url_decoded() {
    let mock = MockLlm::start().await;
    let key = "key+with/special=chars&0123456789";
    let (_d, s) = start(&mock, &[("LAUNCH_API_KEYS", key)]);
    let http = reqwest::Client::new();
    let encoded = "key%2Bwith%2Fspecial%3Dchars%260123456789";
    // Not on other routes, even with an `Upgrade` header.
    let r = http
        .get(format!("{}/v1/sessions?access_token={encoded}", s.url))
        .header("upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let id = new_session(&http, &s.url, Some(key)).await;
    let ws = format!("{}/v1/sessions/{id}/ws", s.url.replace("http://", "ws://"));
    assert!(
        tokio_tungstenite::connect_async(format!("{ws}?access_token={encoded}"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn mcp_answers_batches_deep_json_and_non_messages_with_400() {
    let mock = MockLlm::start().await;
    let (_d, s) = start(&mock, &[]);
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!("{}/mcp", s.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]).to_string();
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let cases = [
        (batch, -32600, "batches"),
        (deep, -32700, "not valid JSON"),
        (
            "{\"jsonrpc\": \"2.0\", \"nonsense\": true}".to_owned(),
            -32600,
            "JSON-RPC",
        ),
        ("{not json".to_owned(), -32700, "not valid JSON"),
    ];
    for (body, code, says) in cases {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{e}"
        );
    }
}

#[tokio::test]
async fn turn_metrics_name_finish_reasons_as_the_api_does() {
    let mock = MockLlm::start().await;
    mock.respond_with(|_| Reply::tool("calculator_evaluate", json!({"expression": "1+1"})));
    let (_d, s) = start(&mock, &[("LAUNCH_MAX_ITERATIONS", "1")]);
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&chat_body("loop"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["launch"]["finish_reason"], "max_iterations", "{r}");
    let metrics = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &metrics,
            "launch_turns_total",
            &[("finish_reason", "max_iterations")]
        ),
        Some(1.0),
        "{metrics}"
    );
}
