//! Shared helpers for the integration tests: where the built plugins, guest
//! fixtures and `launch` binary are, and a tiny DSL for plugin directories.
//!
//! Nothing here builds guests: `make plugins fixtures` does, before the tests.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use launch::plugins::{LoadOptions, Registry};

pub mod mock_llm;

/// Calls `tool` and returns its result, panicking with the error otherwise.
pub async fn call_ok(r: &Registry, tool: &str, args: serde_json::Value) -> serde_json::Value {
    r.call(tool, &args)
        .await
        .unwrap_or_else(|e| panic!("{tool}({args}): {e}"))
}

/// Calls `tool`, which must report a tool error (`err(...)`), and returns its message.
pub async fn tool_error(r: &Registry, tool: &str, args: serde_json::Value) -> String {
    match r.call(tool, &args).await {
        Err(launch::plugins::ToolError::Failed { message, .. }) => message,
        other => panic!("{tool}({args}) should be a tool error, got {other:?}"),
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A first-party plugin built by `make plugins`, as `plugins/NAME.wasm`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    built(
        repo_root().join("plugins").join(format!("{name}.wasm")),
        "make plugins",
    )
}

/// A guest fixture built by `make fixtures`, as `tests/fixtures/build/NAME.wasm`.
pub fn fixture_wasm(name: &str) -> PathBuf {
    built(
        repo_root()
            .join("tests/fixtures/build")
            .join(format!("{name}.wasm")),
        "make fixtures",
    )
}

/// A hostile component written in the component text format,
/// `tests/fixtures/wat/NAME.wat`, assembled (see tests/fixtures/README.md).
pub fn wat_component(name: &str) -> Vec<u8> {
    let path = repo_root()
        .join("tests/fixtures/wat")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The local embedding model fetched by `make model`
/// (`models/all-MiniLM-L6-v2`).
pub fn model_dir() -> PathBuf {
    let dir = repo_root().join("models/all-MiniLM-L6-v2");
    built(dir.join("model.safetensors"), "make model");
    dir
}

fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing; run `{how}` first (make test does)",
        path.display()
    );
    path
}

/// The `launch` binary next to this test binary (target/release/launch),
/// or the one `LAUNCH_TEST_BIN` names (to benchmark another build).
pub fn launch_bin() -> PathBuf {
    if let Some(other) = std::env::var_os("LAUNCH_TEST_BIN") {
        return PathBuf::from(other);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    built(dir.join("launch"), "cargo build --release --bin launch")
}

/// Runs an external client test (a Python SDK script, the browser test) to
/// its end and returns its stdout. Both streams are printed for the test log;
/// a failure, or no exit within `timeout`, fails the test. `what` names the
/// client in those messages.
pub async fn run_client_script(
    mut command: tokio::process::Command,
    timeout: std::time::Duration,
    what: &str,
) -> String {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {} s", timeout.as_secs()))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- {what} stdout ---\n{stdout}--- {what} stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// A temporary plugins directory assembled by a test, with its own data
/// directory (precedence record) beside it.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
    pub data: tempfile::TempDir,
    cache: PathBuf,
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginDir {
    /// An empty directory with a compile cache shared by all tests (safe:
    /// entries are content-addressed and written atomically).
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            data: tempfile::tempdir().unwrap(),
            cache: std::env::temp_dir().join("launch-test-compile-cache"),
        }
    }

    /// An empty directory with its own, empty compile cache.
    pub fn with_private_cache() -> Self {
        let data = tempfile::tempdir().unwrap();
        let cache = data.path().join("cache").join("components");
        Self {
            dir: tempfile::tempdir().unwrap(),
            data,
            cache,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies first-party plugin `name` (and its manifest) in.
    pub fn plugin(self, name: &str) -> Self {
        let wasm = plugin_wasm(name);
        std::fs::copy(&wasm, self.path().join(format!("{name}.wasm"))).unwrap();
        let manifest = repo_root()
            .join("plugins")
            .join(name)
            .join(format!("{name}.toml"));
        let text = std::fs::read_to_string(manifest).unwrap();
        self.manifest(name, &text)
    }

    /// Copies fixture `fixture` in as `as_name.wasm`.
    pub fn fixture_as(self, fixture: &str, as_name: &str) -> Self {
        std::fs::copy(
            fixture_wasm(fixture),
            self.path().join(format!("{as_name}.wasm")),
        )
        .unwrap();
        self
    }

    /// Copies fixture `name` in under its own name.
    pub fn fixture(self, name: &str) -> Self {
        self.fixture_as(name, name)
    }

    /// Assembles `tests/fixtures/wat/NAME.wat` in as `as_name.wasm`.
    pub fn wat(self, name: &str, as_name: &str) -> Self {
        self.file(&format!("{as_name}.wasm"), &wat_component(name))
    }

    /// Writes `NAME.toml`.
    pub fn manifest(self, name: &str, text: &str) -> Self {
        std::fs::write(self.path().join(format!("{name}.toml")), text).unwrap();
        self
    }

    /// Writes an arbitrary file.
    pub fn file(self, name: &str, bytes: &[u8]) -> Self {
        std::fs::write(self.path().join(name), bytes).unwrap();
        self
    }

    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            cache_dir: self.cache.clone(),
            ..LoadOptions::new(self.path(), self.data.path())
        }
    }

    /// Loads the directory the way the server does.
    pub fn load(&self) -> Registry {
        Registry::load(&self.options()).unwrap()
    }
}

/// Latency statistics for the benchmarks: median and tail of per-operation samples.
pub mod stats {
    use std::time::Duration;

    /// Summary of a set of samples.
    #[derive(Debug, Clone, Copy)]
    pub struct Summary {
        pub n: usize,
        pub p50: Duration,
        pub p90: Duration,
        pub p99: Duration,
        pub mean: Duration,
    }

    /// Summarises `samples` (sorted in place).
    pub fn summarize(samples: &mut [Duration]) -> Summary {
        assert!(!samples.is_empty());
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        let total: Duration = samples.iter().sum();
        Summary {
            n: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            mean: total / samples.len() as u32,
        }
    }

    /// Formats a duration in µs with two decimals.
    pub fn us(d: Duration) -> String {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    }

    /// Formats a duration in ms with two decimals.
    pub fn ms(d: Duration) -> String {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }

    /// One line describing the machine, for benchmark reports.
    pub fn machine() -> String {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        format!("{cpu}, {cores} cores")
    }
}

/// The peak resident memory of a process (its high-water mark), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A `launch serve` child process on a free loopback port, killed on drop.
pub struct Server {
    child: std::process::Child,
    _data: Option<tempfile::TempDir>,
    /// The data directory (store, vector index, compile cache).
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Settings the harness gives every server unless a test overrides them:
/// no rate limit (tests make many requests from one address) and no
/// embedder (tests of semantic memory choose one).
const TEST_DEFAULTS: &[(&str, &str)] = &[
    ("LAUNCH_RATE_LIMIT_PER_MINUTE", "0"),
    ("LAUNCH_EMBEDDER", "none"),
];

impl Server {
    /// Starts `launch serve --listen 127.0.0.1:0` with the given plugins
    /// directory, a fresh data directory and extra environment, and waits
    /// until it listens.
    pub fn start(plugins: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(plugins, env, false)
    }

    /// Like [`Server::start`]; `clear_keys` removes any LLM API key the test
    /// process inherited, to test the unconfigured server.
    pub fn start_with(plugins: &Path, env: &[(&str, &str)], clear_keys: bool) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(plugins, data.path(), env, clear_keys);
        server._data = Some(data);
        server
    }

    /// Like [`Server::start`], with the open-file limit set by `ulimit
    /// ARGS` before `launch` starts (`-Sn 256`: the soft limit only).
    pub fn start_with_fd_limit(plugins: &Path, env: &[(&str, &str)], ulimit: &str) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut server = Self::spawn(plugins, data.path(), env, false, Some(ulimit));
        server._data = Some(data);
        server
    }

    /// Starts a server on an existing data directory (to test restarts).
    pub fn start_in(
        plugins: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
        clear_keys: bool,
    ) -> Self {
        Self::spawn(plugins, data_dir, env, clear_keys, None)
    }

    fn spawn(
        plugins: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
        clear_keys: bool,
        ulimit: Option<&str>,
    ) -> Self {
        use std::io::BufRead;
        let mut command = match ulimit {
            None => std::process::Command::new(launch_bin()),
            Some(limit) => {
                let mut sh = std::process::Command::new("sh");
                sh.args(["-c", &format!("ulimit {limit} && exec \"$0\" \"$@\"")])
                    .arg(launch_bin());
                sh
            }
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("LAUNCH_PLUGINS_DIR", plugins)
            .env("LAUNCH_DATA_DIR", data_dir)
            .env("LAUNCH_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(TEST_DEFAULTS.iter().copied())
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped());
        if clear_keys {
            command
                .env_remove("LAUNCH_LLM_API_KEY")
                .env_remove("TOGETHER_API_KEY");
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.split("addr=").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
                eprintln!("[server] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the server did not report its address within 60 s");
        Self {
            child,
            _data: None,
            data_dir: data_dir.to_owned(),
            url: format!("http://{addr}"),
            log,
        }
    }

    /// The server's log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) without waiting.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
