//! The sandbox: every capability denied by default and granted by manifest
//! (`*_denied` / `*_granted`), every limit enforced (`*_obeyed` / `*_violated`),
//! and one test per attack from a hostile fixture. After each attack the host
//! still serves, and the next call to the same plugin works.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use launch::plugins::{LoadOptions, Registry, ToolError};
use launch_tests::{PluginDir, Server, call_ok as ok, peak_rss, tool_error as failed};
use serde_json::{Value, json};

fn load(dir: &PluginDir) -> Registry {
    let r = dir.load();
    assert!(r.report().failed.is_empty(), "{:#?}", r.report().failed);
    r
}

fn one(fixture: &str, manifest: &str) -> (PluginDir, Registry) {
    let dir = PluginDir::new()
        .fixture(fixture)
        .manifest(fixture, manifest);
    let r = load(&dir);
    (dir, r)
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn timeout_violated_by_an_infinite_loop_and_the_host_stays_responsive() {
    let (_d, r) = one("spin", "[limits]\ntimeout_ms = 300\n");
    let r = Arc::new(r);
    let spinning = {
        let r = r.clone();
        tokio::spawn(async move { r.call("spin_forever", &json!({})).await })
    };
    // While the guest spins, other calls are served.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    assert_eq!(ok(&r, "spin_count", json!({"n": 10})).await, json!(10));
    assert!(
        start.elapsed() < Duration::from_millis(250),
        "a spinning guest must not block others"
    );
    let err = spinning.await.unwrap().unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    assert_eq!(err.code(), "timeout");
    assert!(err.to_string().contains("300ms"), "{err}");
    assert_eq!(ok(&r, "spin_count", json!({"n": 5})).await, json!(5));
}

#[tokio::test]
async fn timeout_obeyed_by_work_within_the_deadline() {
    let (_d, r) = one("spin", "[limits]\ntimeout_ms = 5000\n");
    assert_eq!(
        ok(&r, "spin_count", json!({"n": 1_000_000})).await,
        json!(1_000_000)
    );
}

#[tokio::test]
async fn timeout_violated_while_blocked_in_a_host_call() {
    // Epochs cannot interrupt a guest waiting in the host; the host timer does.
    let (_d, r) = one("slow", "[limits]\ntimeout_ms = 200\n");
    let start = Instant::now();
    let err = r
        .call("slow_sleep", &json!({"ms": 30_000}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(ok(&r, "slow_sleep", json!({"ms": 1})).await, json!(1));
}

#[tokio::test]
async fn memory_obeyed_under_the_default_limit() {
    let (_d, r) = one("memory-bomb", "");
    assert!(
        ok(&r, "memory_bomb_allocate", json!({"mib": 16}))
            .await
            .is_number()
    );
}

#[tokio::test]
async fn memory_violated_by_a_memory_bomb() {
    let (_d, r) = one("memory-bomb", "");
    let err = r
        .call("memory_bomb_allocate", &json!({"mib": 200}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ToolError::OutOfMemory { limit, .. } if limit == 64 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains("64 MiB"), "{err}");
    // A guest that handles failed growth itself stops below the limit.
    match r.call("memory_bomb_grow_forever", &json!({})).await {
        Ok(mib) => assert!(mib.as_u64().unwrap() < 64, "grew to {mib} MiB"),
        Err(err) => assert_eq!(err.code(), "out_of_memory", "{err}"),
    }
    assert!(
        ok(&r, "memory_bomb_allocate", json!({"mib": 1}))
            .await
            .is_number()
    );
}

#[tokio::test]
async fn memory_granted_by_a_higher_manifest_limit() {
    let (_d, r) = one("memory-bomb", "[limits]\nmemory_mib = 300\n");
    assert!(
        ok(&r, "memory_bomb_allocate", json!({"mib": 200}))
            .await
            .is_number()
    );
}

#[tokio::test]
async fn stack_violated_by_deep_recursion() {
    let (_d, r) = one("spin", "");
    let err = r
        .call("spin_recurse", &json!({"depth": 100_000_000}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "stack_overflow", "{err}");
    assert!(
        ok(&r, "spin_recurse", json!({"depth": 100}))
            .await
            .is_number()
    );
}

#[tokio::test]
async fn output_obeyed_and_violated() {
    let (_d, r) = one("huge-output", "");
    assert_eq!(
        ok(&r, "huge_output_emit", json!({"bytes": 1000}))
            .await
            .as_str()
            .unwrap()
            .len(),
        1000
    );
    let err = r
        .call("huge_output_emit", &json!({"bytes": 5 << 20}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ToolError::OutputTooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err:?}"
    );
    let (_d, r) = one("huge-output", "[limits]\nmax_output_bytes = 8388608\n");
    assert_eq!(
        ok(&r, "huge_output_emit", json!({"bytes": 5 << 20}))
            .await
            .as_str()
            .unwrap()
            .len(),
        5 << 20
    );
}

#[tokio::test]
async fn stdout_flood_is_captured_and_capped_not_inherited() {
    let (_d, r) = one("huge-output", "[limits]\nmax_log_bytes = 1024\n");
    for channel in ["stdout", "stderr"] {
        let printed = ok(
            &r,
            "huge_output_print",
            json!({"bytes": 4 << 20, "channel": channel}),
        )
        .await;
        assert_eq!(
            printed,
            json!(4 << 20),
            "the guest may print as much as it likes"
        );
    }
}

#[tokio::test]
async fn fuel_violated_and_obeyed_when_metered() {
    let (_d, r) = one("spin", "[limits]\nfuel = 5000000\n");
    assert_eq!(ok(&r, "spin_count", json!({"n": 1000})).await, json!(1000));
    let err = r
        .call("spin_count", &json!({"n": 1_000_000_000_000u64}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ToolError::OutOfFuel {
                fuel: 5_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(ok(&r, "spin_count", json!({"n": 10})).await, json!(10));
}

#[tokio::test]
async fn fuel_denied_by_default_means_unmetered() {
    let (_d, r) = one("spin", "");
    assert_eq!(
        ok(&r, "spin_count", json!({"n": 10_000_000})).await,
        json!(10_000_000)
    );
}

#[tokio::test]
async fn concurrency_200_slow_calls_all_finish_in_separate_instances() {
    let (_d, r) = one("slow", "");
    let r = Arc::new(r);
    let start = Instant::now();
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.call("slow_sleep", &json!({"ms": 100})).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), json!(100));
    }
    // 200 calls of 100 ms, at most 32 at once (the default cap): at least 7 rounds.
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn concurrency_cap_obeyed() {
    let (_d, r) = one("slow", "[limits]\nmax_concurrency = 1\n");
    let r = Arc::new(r);
    let start = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.call("slow_sleep", &json!({"ms": 100})).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "calls overlapped: {:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------- environment and config

#[tokio::test]
async fn env_denied_by_default() {
    let (_d, r) = one("env-probe", "");
    assert_eq!(
        ok(&r, "env_probe_get", json!({"name": "PATH"})).await,
        Value::Null
    );
    assert_eq!(ok(&r, "env_probe_all", json!({})).await, json!([]));
}

#[tokio::test]
async fn env_granted_by_name_only() {
    let (_d, r) = one("env-probe", "[grants]\nenv = [\"PATH\"]\n");
    assert_eq!(
        ok(&r, "env_probe_get", json!({"name": "PATH"})).await,
        json!(std::env::var("PATH").unwrap())
    );
    let all = ok(&r, "env_probe_all", json!({})).await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test]
async fn config_denied_by_default() {
    let (_d, r) = one("host-api", "");
    assert_eq!(
        ok(&r, "host_api_config_get", json!({"key": "units"})).await,
        Value::Null
    );
    assert_eq!(ok(&r, "host_api_config_all", json!({})).await, json!([]));
}

#[tokio::test]
async fn config_granted_and_secrets_never_reach_the_guest() {
    let (_d, r) = one(
        "host-api",
        "[grants]\nconfig = { units = \"metric\" }\nsecrets = { token = \"PATH\" }\n",
    );
    assert_eq!(
        ok(&r, "host_api_config_get", json!({"key": "units"})).await,
        json!("metric")
    );
    // Secrets are for host-side header injection only.
    assert_eq!(
        ok(&r, "host_api_config_get", json!({"key": "token"})).await,
        Value::Null
    );
    assert_eq!(
        ok(&r, "host_api_config_all", json!({})).await,
        json!([["units", "metric"]])
    );
    assert_eq!(
        ok(&r, "host_api_log_hello", json!({"message": "hi"})).await,
        json!(5)
    );
}

#[tokio::test]
async fn secret_from_an_unset_variable_is_a_load_error() {
    let dir = PluginDir::new().fixture("host-api").manifest(
        "host-api",
        "[grants]\nsecrets = { token = \"LAUNCH_TEST_SURELY_UNSET_VARIABLE\" }\n",
    );
    let r = dir.load();
    let err = &r.report().failed[0].error;
    assert!(
        err.contains("LAUNCH_TEST_SURELY_UNSET_VARIABLE") && err.contains("not set"),
        "{err}"
    );
}

// ---------------------------------------------------------------- files

#[tokio::test]
async fn fs_denied_by_default() {
    let (_d, r) = one("fs-probe", "");
    assert_eq!(ok(&r, "fs_probe_preopens", json!({})).await, json!([]));
    for path in ["/etc/passwd", "/proc/self/environ", "Cargo.toml", "."] {
        let err = failed(&r, "fs_probe_read_file", json!({"path": path})).await;
        assert!(!err.contains("root:"), "{path}: {err}");
    }
    failed(&r, "fs_probe_list_dir", json!({"path": "/"})).await;
    failed(
        &r,
        "fs_probe_write_file",
        json!({"path": "/tmp/launch-escape", "content": "x"}),
    )
    .await;
    assert!(!std::path::Path::new("/tmp/launch-escape").exists());
}

fn granted_dir(mode: &str) -> (tempfile::TempDir, String) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("hello.txt"), "hello").unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"{mode}\" }}]\n",
        work.path().display()
    );
    (work, manifest)
}

#[tokio::test]
async fn fs_granted_read_only() {
    let (work, manifest) = granted_dir("read-only");
    let (_d, r) = one("fs-probe", &manifest);
    assert_eq!(
        ok(&r, "fs_probe_read_file", json!({"path": "/data/hello.txt"})).await,
        json!("hello")
    );
    assert_eq!(
        ok(&r, "fs_probe_list_dir", json!({"path": "/data"})).await,
        json!(["hello.txt"])
    );
    let err = failed(
        &r,
        "fs_probe_write_file",
        json!({"path": "/data/new.txt", "content": "x"}),
    )
    .await;
    assert!(!err.is_empty());
    assert!(
        !work.path().join("new.txt").exists(),
        "a read-only grant was written to"
    );
}

#[tokio::test]
async fn fs_granted_read_write() {
    let (work, manifest) = granted_dir("read-write");
    let (_d, r) = one("fs-probe", &manifest);
    assert_eq!(
        ok(
            &r,
            "fs_probe_write_file",
            json!({"path": "/data/new.txt", "content": "abc"})
        )
        .await,
        json!(3)
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("new.txt")).unwrap(),
        "abc"
    );
}

#[tokio::test]
async fn fs_escape_by_dotdot_and_symlink_is_contained() {
    let (work, manifest) = granted_dir("read-write");
    std::os::unix::fs::symlink("/etc/passwd", work.path().join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", work.path().join("etc-link")).unwrap();
    let (_d, r) = one("fs-probe", &manifest);
    for path in [
        "/data/../etc/passwd",
        "/data/../../../../../../etc/passwd",
        "/data/passwd-link",
        "/data/etc-link/passwd",
        "/etc/passwd",
    ] {
        let err = failed(&r, "fs_probe_read_file", json!({"path": path})).await;
        assert!(!err.contains("root:"), "{path} escaped: {err}");
    }
    // A symlink made by the guest cannot point out either.
    let made = r
        .call(
            "fs_probe_make_symlink",
            &json!({"target": "../../../../etc/passwd", "link": "/data/mine"}),
        )
        .await;
    if made.is_ok() {
        let err = failed(&r, "fs_probe_read_file", json!({"path": "/data/mine"})).await;
        assert!(!err.contains("root:"), "{err}");
    }
    failed(
        &r,
        "fs_probe_write_file",
        json!({"path": "/data/../escaped.txt", "content": "x"}),
    )
    .await;
    assert!(!work.path().parent().unwrap().join("escaped.txt").exists());
}

// ---------------------------------------------------------------- network

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<HashMap<String, String>>>>);

async fn test_server(seen: Seen) -> SocketAddr {
    let record = move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let map = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            seen.0.lock().unwrap().push(map);
            "hello"
        }
    };
    let app = Router::new()
        .route("/hello", get(record))
        .route(
            "/away",
            get(|| async { Redirect::temporary("http://127.0.0.2:9/stolen") }),
        )
        .route("/big", get(|| async { "x".repeat(3 << 20) }))
        // A compressed answer (the host cannot redact what it cannot read).
        .route(
            "/gzip",
            get(|| async { ([("content-encoding", "gzip")], "not really gzip") }),
        )
        // A server that reflects what it was sent, in its body and a header.
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body: String = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
                    .collect();
                ([("x-echo", key)], body)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn http_denied_by_default() {
    let seen = Seen::default();
    let addr = test_server(seen.clone()).await;
    let (_d, r) = one("http-probe", "");
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/hello")}),
    )
    .await;
    assert!(err.contains("HttpRequestDenied"), "{err}");
    assert!(
        seen.0.lock().unwrap().is_empty(),
        "the request left the host"
    );
}

#[tokio::test]
async fn http_granted_for_the_listed_host_and_port_only() {
    let seen = Seen::default();
    let addr = test_server(seen.clone()).await;
    let (_d, r) = one(
        "http-probe",
        &format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port()),
    );
    let reply = ok(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/hello")}),
    )
    .await;
    assert_eq!(
        (reply["status"].clone(), reply["body"].clone()),
        (json!(200), json!("hello"))
    );
    // Same host, another port: denied.
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("http://127.0.0.1:{}/hello", addr.port() + 1)}),
    )
    .await;
    assert!(err.contains("HttpRequestDenied"), "{err}");
    // Same port, another loopback address: denied.
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("http://127.0.0.2:{}/hello", addr.port())}),
    )
    .await;
    assert!(err.contains("HttpRequestDenied"), "{err}");
    assert_eq!(seen.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn http_redirect_to_an_unlisted_host_is_denied() {
    let addr = test_server(Seen::default()).await;
    let (_d, r) = one(
        "http-probe",
        &format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port()),
    );
    // The host never follows redirects itself...
    let reply = ok(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/away")}),
    )
    .await;
    assert_eq!(reply["status"], 307);
    let next = reply["location"].as_str().unwrap().to_owned();
    // ...so following one is a new request, checked like any other.
    let err = failed(&r, "http_probe_get", json!({"url": next})).await;
    assert!(err.contains("HttpRequestDenied"), "{err}");
}

#[tokio::test]
async fn http_credentials_denied_by_default_and_granted_per_host() {
    let seen = Seen::default();
    let addr = test_server(seen.clone()).await;
    let url = format!("http://{addr}/hello");
    let (_d, r) = one(
        "http-probe",
        &format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port()),
    );
    for header in ["authorization", "cookie", "proxy-authorization"] {
        let err = failed(
            &r,
            "http_probe_get_with_header",
            json!({"url": url, "name": header, "value": "x"}),
        )
        .await;
        assert!(err.to_lowercase().contains("forbidden"), "{header}: {err}");
    }
    assert!(seen.0.lock().unwrap().is_empty());

    let manifest = format!(
        "[grants]\nhttp = [{{ url = \"http://127.0.0.1:{}\", credentials = true }}]\n",
        addr.port()
    );
    let (_d, r) = one("http-probe", &manifest);
    ok(
        &r,
        "http_probe_get_with_header",
        json!({"url": url, "name": "authorization", "value": "Bearer guest"}),
    )
    .await;
    assert_eq!(seen.0.lock().unwrap()[0]["authorization"], "Bearer guest");
}

#[tokio::test]
async fn http_secrets_are_injected_by_the_host() {
    let seen = Seen::default();
    let addr = test_server(seen.clone()).await;
    let manifest = format!(
        "[grants]\nsecrets = {{ token = \"PATH\" }}\nhttp = [{{ url = \"http://127.0.0.1:{}\", headers = {{ x-api-key = \"key ${{token}}\" }} }}]\n",
        addr.port()
    );
    let (_d, r) = one("http-probe", &manifest);
    ok(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/hello")}),
    )
    .await;
    assert_eq!(
        seen.0.lock().unwrap()[0]["x-api-key"],
        format!("key {}", std::env::var("PATH").unwrap())
    );
}

#[tokio::test]
async fn http_to_a_name_resolving_to_loopback_is_refused_unless_named() {
    // The machine's own host name resolves to a loopback address on these
    // machines; a pattern naming it is not a pattern naming a private address.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let resolved: Vec<SocketAddr> = match tokio::net::lookup_host((name.as_str(), 80)).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => panic!("the host name {name:?} must resolve locally (see /etc/hosts): {e}"),
    };
    assert!(
        resolved.iter().all(|a| a.ip().is_loopback()),
        "{name} -> {resolved:?}"
    );
    let addr = test_server(Seen::default()).await;
    let (_d, r) = one(
        "http-probe",
        &format!("[grants]\nhttp = [\"http://{name}:{}\"]\n", addr.port()),
    );
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{name}:{}/hello", addr.port())}),
    )
    .await;
    assert!(err.contains("DestinationIpProhibited"), "{err}");
}

#[tokio::test]
async fn http_response_body_obeyed_and_violated() {
    let addr = test_server(Seen::default()).await;
    let grant = format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port());
    let url = format!("http://{addr}/big");
    let (_d, r) = one(
        "http-probe",
        &format!("[limits]\nmax_output_bytes = 16777216\n{grant}"),
    );
    let reply = ok(&r, "http_probe_get", json!({"url": url})).await;
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"].as_str().unwrap().len(), 3 << 20);
    let (_d, r) = one(
        "http-probe",
        &format!(
            "[limits]\nmax_output_bytes = 16777216\nmax_http_response_bytes = 1048576\n{grant}"
        ),
    );
    let err = failed(&r, "http_probe_get", json!({"url": url})).await;
    assert!(
        err.contains("exceeds limit: 1048576 bytes"),
        "{}",
        &err[..err.len().min(300)]
    );
    assert!(
        !err.contains("xxxxxxxxxx"),
        "the capped body must not come back"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_plugin_yields_so_one_thread_still_serves_others() {
    let (_d, r) = one("spin", "[limits]\ntimeout_ms = 1000\n");
    let r = Arc::new(r);
    let spinning = {
        let r = r.clone();
        tokio::spawn(async move { r.call("spin_forever", &json!({})).await })
    };
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = Instant::now();
    assert_eq!(ok(&r, "spin_count", json!({"n": 3})).await, json!(3));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "blocked for {:?}",
        start.elapsed()
    );
    assert_eq!(spinning.await.unwrap().unwrap_err().code(), "timeout");
}

#[tokio::test]
async fn fs_grants_may_not_overlap_each_other_or_the_servers_own_folders() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("inner")).unwrap();
    let nested = format!(
        "[grants]\ndirs = [{{ host = \"{0}\", guest = \"/a\", mode = \"read-write\" }}, {{ host = \"{0}/inner\", guest = \"/b\", mode = \"read-only\" }}]\n",
        work.path().display()
    );
    let dir = PluginDir::new()
        .fixture("fs-probe")
        .manifest("fs-probe", &nested);
    let err = dir.load().report().failed[0].error.clone();
    assert!(err.contains("overlap"), "{err}");

    // Granting the plugins folder itself would let a plugin rewrite manifests.
    let dir = PluginDir::new().fixture("fs-probe");
    let own = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/p\", mode = \"read-write\" }}]\n",
        dir.path().display()
    );
    let dir = dir.manifest("fs-probe", &own);
    let err = dir.load().report().failed[0].error.clone();
    assert!(err.contains("holds the server's plugins or data"), "{err}");
}

#[tokio::test]
async fn sockets_denied_even_with_http_grants() {
    // Raw TCP and name lookups are never granted; wasi:http is the only way out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    for manifest in [
        String::new(),
        format!("[grants]\nhttp = [\"http://127.0.0.1:{}\"]\n", addr.port()),
    ] {
        let (_d, r) = one("net-probe", &manifest);
        let err = failed(
            &r,
            "net_probe_tcp_connect",
            json!({"address": addr.to_string()}),
        )
        .await;
        assert!(!err.contains("connected"), "{err}");
        failed(&r, "net_probe_resolve", json!({"host": "localhost"})).await;
    }
    assert!(
        listener.accept().is_err(),
        "a raw connection reached the host"
    );
}

// ------------------------------------------- round two: the outside review
// One test (or more) per finding of the second sandbox review (issue 14).

/// A manifest granting `host` at guest path `guest`.
fn dir_grant(host: &std::path::Path, guest: &str, mode: &str) -> String {
    format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"{guest}\", mode = \"{mode}\" }}]\n",
        host.display()
    )
}

#[tokio::test]
async fn fs_grant_stays_pinned_when_its_path_is_swapped_for_a_symlink() {
    // Finding 1: the grant was reopened by path on every call, so whoever
    // could rename the granted folder and put a symlink in its place (another
    // plugin with a writable grant above it) redirected it anywhere.
    let shared = tempfile::tempdir().unwrap();
    let inner = shared.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("mine.txt"), "mine").unwrap();
    let dir = PluginDir::new().fixture("fs-probe");
    let target = dir.data.path().join("cache");
    let dir = dir.manifest("fs-probe", &dir_grant(&inner, "/inner", "read-write"));
    let r = load(&dir);
    assert_eq!(
        ok(&r, "fs_probe_list_dir", json!({"path": "/inner"})).await,
        json!(["mine.txt"])
    );
    std::fs::rename(&inner, shared.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&target, &inner).unwrap();
    assert_eq!(
        ok(&r, "fs_probe_list_dir", json!({"path": "/inner"})).await,
        json!(["mine.txt"]),
        "the grant followed the swapped-in symlink"
    );
    ok(
        &r,
        "fs_probe_write_file",
        json!({"path": "/inner/new.txt", "content": "x"}),
    )
    .await;
    assert!(shared.path().join("moved/new.txt").is_file());
    assert!(
        !target.join("new.txt").exists(),
        "wrote into the data folder"
    );
}

#[tokio::test]
async fn fs_writable_grants_of_two_plugins_may_not_nest_read_only_ones_may_share() {
    // Finding 1: A granted `S` read-write and B granted `S/inner` could
    // combine into an escape; such a pair is refused (B, the later one).
    let shared = tempfile::tempdir().unwrap();
    let inner = shared.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let dir = PluginDir::new()
        .fixture_as("fs-probe", "a")
        .manifest("a", &dir_grant(shared.path(), "/s", "read-write"))
        .fixture_as("fs-probe", "b")
        .manifest("b", &dir_grant(&inner, "/inner", "read-only"));
    let r = dir.load();
    let loaded: Vec<&str> = r.report().loaded.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(loaded, ["a"]);
    let err = &r.report().failed[0];
    assert!(err.path.ends_with("b.wasm"), "{err:?}");
    assert!(
        err.error.contains("nests with")
            && err.error.contains("plugin `a`")
            && err.error.contains("read-write"),
        "{}",
        err.error
    );
    // Read-only grants of one tree can be shared: nobody can change it.
    let dir = PluginDir::new()
        .fixture_as("fs-probe", "a")
        .manifest("a", &dir_grant(shared.path(), "/s", "read-only"))
        .fixture_as("fs-probe", "b")
        .manifest("b", &dir_grant(&inner, "/inner", "read-only"));
    assert_eq!(load(&dir).report().loaded.len(), 2);
}

#[tokio::test]
async fn fs_grants_inside_above_or_linked_into_the_data_folder_are_refused() {
    // Finding 2: only the compile cache and the plugins folder were refused;
    // a grant of `data/vectors` loaded and the guest wrote into the index.
    let outside = tempfile::tempdir().unwrap();
    let mut dir = PluginDir::new().fixture("fs-probe");
    let data = dir.data.path().to_owned();
    std::fs::create_dir_all(data.join("vectors")).unwrap();
    let link = outside.path().join("link");
    std::os::unix::fs::symlink(data.join("vectors"), &link).unwrap();
    for (host, mode) in [
        (data.join("vectors"), "read-write"),
        (data.clone(), "read-only"),
        (data.parent().unwrap().to_owned(), "read-only"),
        (link, "read-write"),
    ] {
        dir = dir.manifest("fs-probe", &dir_grant(&host, "/d", mode));
        let r = dir.load();
        assert!(r.report().loaded.is_empty(), "{} loaded", host.display());
        let err = &r.report().failed[0].error;
        assert!(
            err.contains("holds the server's plugins or data"),
            "{}: {err}",
            host.display()
        );
    }
    // A folder beside the data folder is fine.
    dir = dir.manifest("fs-probe", &dir_grant(outside.path(), "/d", "read-write"));
    assert_eq!(load(&dir).report().loaded.len(), 1);
}

#[tokio::test]
async fn result_amplification_is_refused_at_the_output_limit() {
    // Finding 3: `list<flags>`, `list<result>` and `list<record>` results
    // turned 0.5-2 MiB of guest memory into gigabytes of host memory before
    // the output limit applied.
    let dir = PluginDir::new().wat("amplify", "amplify");
    let r = load(&dir);
    // Sizes whose values the host can lift within the type's hostcall fuel
    // (so the JSON limit is what stops them), and far larger ones (stopped
    // before anything is lifted).
    for (tool, n) in [
        ("amplify_flags_list", 13_000),
        ("amplify_flags_list", 131_072),
        ("amplify_results_list", 400_000),
        ("amplify_results_list", 2_097_152),
        ("amplify_records_list", 19_000),
        ("amplify_records_list", 262_144),
    ] {
        let err = r.call(tool, &json!({"n": n})).await.unwrap_err();
        assert_eq!(err.code(), "output_too_large", "{tool}: {err}");
        assert!(
            err.to_string().contains("1048576-byte output limit"),
            "{err}"
        );
    }
    // Results of the same types within the limit come back whole.
    let flags = ok(&r, "amplify_flags_list", json!({"n": 3})).await;
    assert_eq!(flags.as_array().unwrap().len(), 3);
    assert_eq!(flags[2].as_array().unwrap().len(), 32);
    assert_eq!(flags[0][0], "a");
    assert_eq!(
        ok(&r, "amplify_results_list", json!({"n": 2})).await,
        json!([{"ok": null}, {"ok": null}])
    );
    let records = ok(&r, "amplify_records_list", json!({"n": 1000})).await;
    assert_eq!(records[999]["h"], true);
}

#[tokio::test]
async fn result_amplification_keeps_the_servers_memory_bounded() {
    // Finding 3, end to end: three such calls at once took `launch serve`
    // from 82 MiB to 5.4 GiB. Now a call's result costs the host a small
    // multiple of the 1 MiB output limit.
    let dir = PluginDir::new().wat("amplify", "amplify");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    // Warm up the paths the calls take, then take the baseline.
    let warm = client
        .post(format!("{}/v1/tools/amplify_flags_list/invoke", server.url))
        .json(&json!({"n": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let baseline = peak_rss(server.pid());
    // Sizes the host can lift within each type's hostcall fuel: the JSON
    // output limit is what stops them.
    let calls = [
        ("amplify_flags_list", 13_000),
        ("amplify_results_list", 400_000),
        ("amplify_records_list", 19_000),
    ]
    .map(|(tool, n)| {
        let (client, url) = (
            client.clone(),
            format!("{}/v1/tools/{tool}/invoke", server.url),
        );
        tokio::spawn(async move {
            let reply = client
                .post(url)
                .json(&json!({"n": n}))
                .send()
                .await
                .unwrap();
            (reply.status(), reply.json::<Value>().await.unwrap())
        })
    });
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "output_too_large", "{body}");
    }
    let grown = peak_rss(server.pid()).saturating_sub(baseline);
    assert!(
        grown < 192 << 20,
        "three amplified results grew the server by {} MiB",
        grown >> 20
    );
}

#[tokio::test]
async fn a_type_bomb_is_refused_at_load_with_the_bound_it_passed() {
    // Finding 4: a 2 KB component whose parameter type expands to ~500,000
    // nodes cost 1.7 GB and 6 s to describe, and 141 MB of JSON Schema.
    let bomb = launch_tests::wat_component("type-bomb");
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let dir = PluginDir::new().wat("type-bomb", "bomb").fixture("slow");
    let started = Instant::now();
    let r = dir.load();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = &r.report().failed[0];
    assert!(err.path.ends_with("bomb.wasm"));
    assert!(
        err.error.contains("too large to describe") && err.error.contains("type nodes"),
        "{}",
        err.error
    );
    assert_eq!(r.report().loaded.len(), 1, "the other plugin still loads");
}

#[tokio::test]
async fn two_hogs_cannot_take_the_instance_slots_of_a_calm_plugin() {
    // Finding 5: two plugins granted nothing, each at its default
    // concurrency, took every pooled instance slot; everyone else's calls
    // failed with "too many plugin instances".
    let hog = "[limits]\ntimeout_ms = 1500\n";
    let dir = PluginDir::new()
        .wat("hog", "hog-a")
        .manifest("hog-a", hog)
        .wat("hog", "hog-b")
        .manifest("hog-b", hog)
        .fixture("spin");
    let r = Arc::new(load(&dir));
    let lowered: Vec<u32> = r
        .report()
        .loaded
        .iter()
        .filter(|p| p.name.starts_with("hog"))
        .map(|p| p.policy.limits.max_concurrency)
        .collect();
    assert!(
        lowered.iter().all(|&k| (1..32).contains(&k)),
        "the hogs keep a share below what they ask for: {lowered:?}"
    );
    let hogs: Vec<_> = (0..80)
        .map(|i| {
            let r = r.clone();
            let tool = if i % 2 == 0 {
                "hog_a_spin"
            } else {
                "hog_b_spin"
            };
            tokio::spawn(async move { r.call(tool, &json!({})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..20 {
        assert_eq!(ok(&r, "spin_count", json!({"n": n})).await, json!(n));
    }
    for hog in hogs {
        let err = hog.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "timeout", "{err}");
    }
}

#[tokio::test]
async fn secrets_a_granted_server_echoes_back_are_redacted() {
    // Finding 8: a server reflecting request headers handed the injected
    // secret to the guest.
    let addr = test_server(Seen::default()).await;
    // The secret is the value of PATH, which every test process has.
    let secret = std::env::var("PATH").unwrap();
    let manifest = format!(
        "[grants]\nsecrets = {{ token = \"PATH\" }}\nhttp = [{{ url = \"http://127.0.0.1:{}\", headers = {{ x-api-key = \"key ${{token}}\" }} }}]\n",
        addr.port()
    );
    let (_d, r) = one("http-probe", &manifest);
    let reply = ok(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/echo")}),
    )
    .await;
    let body = reply["body"].as_str().unwrap();
    assert!(body.contains("x-api-key: [REDACTED]"), "{body}");
    assert!(!body.contains(&secret), "{body}");
    // The guest cannot ask for an encoding that would hide the echo from the
    // host, nor for byte ranges that cut it in pieces.
    let reply = ok(
        &r,
        "http_probe_get_with_header",
        json!({"url": format!("http://{addr}/echo"), "name": "accept-encoding", "value": "gzip"}),
    )
    .await;
    let body = reply["body"].as_str().unwrap();
    assert!(body.contains("accept-encoding: identity"), "{body}");
    assert!(!body.contains(&secret), "{body}");
    let reply = ok(
        &r,
        "http_probe_get_with_header",
        json!({"url": format!("http://{addr}/echo"), "name": "range", "value": "bytes=0-4"}),
    )
    .await;
    assert!(
        !reply["body"].as_str().unwrap().contains("range:"),
        "{reply}"
    );
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("http://{addr}/gzip")}),
    )
    .await;
    assert!(err.contains("HttpResponseContentCoding"), "{err}");
}

#[tokio::test]
async fn a_newcomer_cannot_take_an_established_plugins_tool_name() {
    // Finding 10: `victim-read.wasm` exporting `file` became the tool
    // `victim_read_file`, and the existing `victim.wasm` (exporting
    // `read-file`) was skipped whole, because it sorts later.
    let dir = PluginDir::new().fixture_as("fs-probe", "victim");
    let first = load(&dir);
    assert!(first.get("victim_read_file").is_ok());
    // The server records what it serves.
    first.establish().unwrap();
    drop(first);
    let dir = dir.wat("victim-read", "victim-read");
    let r = dir.load();
    assert_eq!(
        r.get("victim_read_file").unwrap().plugin.name.as_ref(),
        "victim"
    );
    let err = &r.report().failed[0];
    assert!(err.path.ends_with("victim-read.wasm"), "{err:?}");
    assert!(
        err.error
            .contains("`victim_read_file` is already provided by plugin `victim`"),
        "{}",
        err.error
    );

    // With no record yet (a fresh data folder), the file that arrived first
    // wins, and backdating the newcomer's modification time does not help.
    let fresh = PluginDir::new().fixture_as("fs-probe", "victim");
    std::thread::sleep(Duration::from_millis(20));
    let fresh = fresh.wat("victim-read", "victim-read");
    std::fs::File::options()
        .write(true)
        .open(fresh.path().join("victim-read.wasm"))
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(315_532_800))
        .unwrap();
    let r = fresh.load();
    assert_eq!(
        r.get("victim_read_file").unwrap().plugin.name.as_ref(),
        "victim"
    );
}

#[test]
fn guest_output_cannot_forge_server_log_lines() {
    // Finding 9: a guest's output with a newline and a timestamp started a
    // line that looked like the server's own.
    let dir = PluginDir::new().fixture("host-api").fixture("trap");
    let forged = "ok\n2026-12-03T10:00:00.000000Z ERROR launch::server: FORGED\r\x1b[31m";
    for (tool, args) in [
        ("host_api_log_hello", json!({"message": forged})),
        ("trap_panic", json!({"message": forged})),
    ] {
        let out = std::process::Command::new(launch_tests::launch_bin())
            .args(["tools", "call", tool, &args.to_string()])
            .arg("--plugins")
            .arg(dir.path())
            .arg("--data-dir")
            .arg(dir.data.path())
            .env("LAUNCH_LOG", "trace")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("FORGED"),
            "{tool}: the guest text is logged: {log}"
        );
        for line in log.lines() {
            assert!(
                !line.contains("FORGED") || line.contains("plugin"),
                "{tool}: a guest line stands alone: {line:?}"
            );
        }
        assert!(
            !log.contains('\x1b') && !log.contains('\r'),
            "{tool}: {log:?}"
        );
    }
}

/// A TLS server on `addr` answering every request with `who`, with a
/// certificate for `localhost` issued by a CA the test makes.
async fn tls_server(
    addr: SocketAddr,
    who: &'static str,
    leaf: &rcgen::Certificate,
    key: &rcgen::KeyPair,
) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{who}",
                    who.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_is_pinned_to_the_checked_address_against_dns_rebinding() {
    // Finding 11: plain HTTP was sent to the checked address, HTTPS resolved
    // the name again. Here the gate's resolver answers 127.0.0.2 for
    // `localhost` while the system's says 127.0.0.1, where an impostor with a
    // valid certificate for the name listens on the same port: a request that
    // resolves again reaches the impostor.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let checked = tls_server("127.0.0.2:0".parse().unwrap(), "checked", &leaf, &leaf_key).await;
    let port = checked.port();
    let impostor = tokio::net::TcpListener::bind(("127.0.0.1", port)).await;
    let Ok(impostor) = impostor else {
        panic!("127.0.0.1:{port} is taken; rerun");
    };
    drop(impostor);
    tls_server(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "impostor",
        &leaf,
        &leaf_key,
    )
    .await;

    let dir = PluginDir::new().fixture("http-probe");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let dir = dir.manifest(
        "http-probe",
        &format!("[grants]\nhttp = [{{ url = \"https://localhost:{port}\", ca = \"ca.pem\" }}]\n"),
    );
    let options = launch::plugins::LoadOptions {
        resolver: launch::plugins::Resolver::new(move |_host, port| async move {
            Ok(vec![SocketAddr::from(([127, 0, 0, 2], port))])
        }),
        ..dir.options()
    };
    let r = Registry::load(&options).unwrap();
    assert!(r.report().failed.is_empty(), "{:#?}", r.report().failed);
    let reply = ok(
        &r,
        "http_probe_get",
        json!({"url": format!("https://localhost:{port}/")}),
    )
    .await;
    assert_eq!(reply["body"], "checked", "{reply}");

    // The certificate is still verified against the name: a grant trusting
    // only the public roots refuses the test CA's certificate.
    let dir = PluginDir::new().fixture("http-probe").manifest(
        "http-probe",
        &format!("[grants]\nhttp = [\"https://localhost:{port}\"]\n"),
    );
    let r = Registry::load(&LoadOptions {
        resolver: launch::plugins::Resolver::new(move |_host, port| async move {
            Ok(vec![SocketAddr::from(([127, 0, 0, 2], port))])
        }),
        ..dir.options()
    })
    .unwrap();
    let err = failed(
        &r,
        "http_probe_get",
        json!({"url": format!("https://localhost:{port}/")}),
    )
    .await;
    assert!(err.contains("TLS") || err.contains("Tls"), "{err}");
}

/// Bytes of regular files and number of entries under `dir`.
fn disk_usage(dir: &std::path::Path) -> (u64, u64) {
    let (mut bytes, mut entries) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        entries += 1;
        if meta.is_dir() {
            let (b, e) = disk_usage(&entry.path());
            bytes += b;
            entries += e;
        } else {
            bytes += meta.len();
        }
    }
    (bytes, entries)
}

#[tokio::test]
async fn fs_quota_violated_by_a_disk_flood_and_a_file_flood_by_default() {
    // Finding 7: one call wrote 200 MiB, another created 5,000 files, in a
    // read-write grant with no limit at all.
    let work = tempfile::tempdir().unwrap();
    let (_d, r) = one("fs-probe", &dir_grant(work.path(), "/data", "read-write"));
    let err = r
        .call(
            "fs_probe_fill",
            &json!({"dir": "/data/big", "count": 110, "size": 1 << 20}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded", "{err}");
    assert!(err.to_string().contains("quota 100 MiB"), "{err}");
    let (bytes, _) = disk_usage(work.path());
    assert!(
        bytes <= 100 << 20,
        "{bytes} bytes written past the 100 MiB quota"
    );

    let work = tempfile::tempdir().unwrap();
    let (_d, r) = one("fs-probe", &dir_grant(work.path(), "/data", "read-write"));
    let err = r
        .call(
            "fs_probe_fill",
            &json!({"dir": "/data/many", "count": 5000, "size": 0}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded", "{err}");
    assert!(err.to_string().contains("4096 entries"), "{err}");
    let (_, entries) = disk_usage(work.path());
    assert!(entries <= 4096, "{entries} entries past the quota of 4096");
    // The quota holds across calls, and reads still work.
    let err = r
        .call(
            "fs_probe_write_file",
            &json!({"path": "/data/one-more", "content": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded", "{err}");
    assert!(
        ok(&r, "fs_probe_list_dir", json!({"path": "/data"}))
            .await
            .is_array()
    );
}

#[tokio::test]
async fn fs_quota_granted_by_the_manifest() {
    let work = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"read-write\", max_mib = 120, max_entries = 6000 }}]\n",
        work.path().display()
    );
    let (_d, r) = one("fs-probe", &manifest);
    assert_eq!(
        ok(
            &r,
            "fs_probe_fill",
            json!({"dir": "/data/big", "count": 110, "size": 1 << 20})
        )
        .await,
        json!(110)
    );
    assert_eq!(
        ok(
            &r,
            "fs_probe_fill",
            json!({"dir": "/data/many", "count": 5000, "size": 0})
        )
        .await,
        json!(5000)
    );
    // Overwriting a file in place does not count its bytes twice.
    for _ in 0..30 {
        ok(
            &r,
            "fs_probe_write_file",
            json!({"path": "/data/big/0", "content": "y".repeat(1 << 19)}),
        )
        .await;
    }
    // A grant whose quota is too small for what it already holds is refused writes.
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"read-write\", max_mib = 1 }}]\n",
        work.path().display()
    );
    let (_d, r) = one("fs-probe", &manifest);
    let err = r
        .call(
            "fs_probe_write_file",
            &json!({"path": "/data/x", "content": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded", "{err}");
}

#[tokio::test]
async fn fs_quota_is_not_given_back_by_renaming_a_file_onto_itself() {
    // A rename onto the same file does nothing, so it may free nothing.
    let work = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"read-write\", max_mib = 2 }}]\n",
        work.path().display()
    );
    let (_d, r) = one("fs-probe", &manifest);
    let big = "x".repeat(1_500_000);
    ok(
        &r,
        "fs_probe_write_file",
        json!({"path": "/data/f", "content": big}),
    )
    .await;
    for _ in 0..3 {
        ok(
            &r,
            "fs_probe_rename_path",
            json!({"from": "/data/f", "to": "/data/f"}),
        )
        .await;
    }
    let err = r
        .call(
            "fs_probe_write_file",
            &json!({"path": "/data/g", "content": big}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded", "{err}");
    assert!(
        !work.path().join("g").exists()
            || std::fs::metadata(work.path().join("g")).unwrap().len() < 1_500_000
    );
}

#[tokio::test]
async fn fs_rename_between_two_grants_is_refused_as_cross_device() {
    // Usage could otherwise move out of one grant's count into another's.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(a.path().join("x"), "x").unwrap();
    let manifest = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/a\", mode = \"read-write\" }}, {{ host = \"{}\", guest = \"/b\", mode = \"read-write\" }}]\n",
        a.path().display(),
        b.path().display()
    );
    let (_d, r) = one("fs-probe", &manifest);
    let err = failed(
        &r,
        "fs_probe_rename_path",
        json!({"from": "/a/x", "to": "/b/x"}),
    )
    .await;
    assert!(err.to_lowercase().contains("cross-device"), "{err}");
    ok(
        &r,
        "fs_probe_rename_path",
        json!({"from": "/a/x", "to": "/a/y"}),
    )
    .await;
    assert!(a.path().join("y").is_file());
}
