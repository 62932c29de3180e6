//! The wasmtime engines, the epoch ticker that enforces deadlines, and the
//! on-disk cache of compiled components.
//!
//! Cached artifacts are native code that `Component::deserialize` trusts, so
//! each one carries an HMAC-SHA256 tag under a key only the server holds
//! (`components.key` beside the cache folder, created at first start, mode
//! 0600). A file written by anyone else, or renamed from another plugin's
//! entry, fails the check and is recompiled, never loaded.
//!
//! Two engines share one configuration except fuel metering, which changes the
//! generated code and costs 70-100% on tight loops: plugins whose manifest sets
//! `fuel` run on the metered engine, everyone else pays nothing for it.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac as _};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::admission::{
    MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
    POOL_CALLS, POOL_MEMORIES, POOL_TABLES,
};

/// How often the epoch advances. A deadline is noticed at most one tick late.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engines and their epoch ticker. Dropping it stops the ticker.
pub struct Engines {
    /// For plugins without fuel limits.
    pub plain: Engine,
    /// For plugins whose manifest sets `fuel`.
    pub metered: Engine,
    stop: Arc<AtomicBool>,
}

impl Engines {
    /// Builds both engines and starts the ticker thread.
    pub fn new() -> Result<Self> {
        let plain = Engine::new(&config(false))
            .map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:#}"))?;
        let metered = Engine::new(&config(true)).map_err(|e| {
            anyhow::anyhow!("cannot create the fuel-metered wasmtime engine: {e:#}")
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b, flag) = (plain.clone(), metered.clone(), stop.clone());
        std::thread::Builder::new()
            .name("launch-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    a.increment_epoch();
                    b.increment_epoch();
                }
            })
            .context("cannot start the epoch ticker thread")?;
        Ok(Self {
            plain,
            metered,
            stop,
        })
    }

    /// The engine for a plugin with or without a fuel limit.
    pub fn for_fuel(&self, fuel: bool) -> &Engine {
        if fuel { &self.metered } else { &self.plain }
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine configuration Launch runs plugins with (public so benchmarks can
/// measure what each setting costs).
pub fn config(fuel: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    // Only WASI 0.2 (synchronous component ABI) is offered; turning off the
    // component-model-async machinery makes calls and instantiation cheaper.
    config.concurrency_support(false);
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);
    let mut pool = PoolingAllocationConfig::default();
    // Sized with admission.rs, which divides these slots among the plugins.
    pool.total_component_instances(POOL_CALLS)
        .total_core_instances(POOL_CALLS * MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .total_stacks(POOL_CALLS)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .table_elements(super::runtime::MAX_TABLE_ELEMENTS)
        .max_memory_size(super::manifest::ceilings::MEMORY_MIB as usize * 1024 * 1024)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        // Reset the first MiB of each memory slot in place instead of
        // decommitting it: a small guest (stack, data and first heap pages
        // there) then takes no page faults and no TLB shootdowns per call.
        // Measured on calculator: p50 ~75 µs -> ~26 µs (BENCHMARKS.md).
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 * 1024);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Where compiled components are kept, keyed by content and engine.
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; KEY_BYTES],
}

const KEY_BYTES: usize = 32;
/// Length of the HMAC-SHA256 tag that starts every cache file.
const TAG_BYTES: usize = 32;

type Mac = Hmac<Sha256>;

/// Whether a component came from the cache or was compiled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled (and stored for next time).
    Miss,
}

impl CompileCache {
    /// A cache in `dir`, created if needed.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the compile cache directory {}",
                dir.display()
            )
        })?;
        // Artifacts are native code: only this user may write them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict the permissions of {}", dir.display()))?;
        }
        Ok(Self {
            key: cache_key(&dir.with_extension("key"))?,
            dir: dir.to_owned(),
        })
    }

    /// The tag of `artifact` stored under `name`: binding the name means an
    /// entry copied over another plugin's cannot pass for it.
    fn mac(&self, name: &str, artifact: &[u8]) -> Mac {
        let mut mac = Mac::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        mac
    }

    /// The artifact in a cache file, if its tag is ours.
    fn verified<'a>(&self, name: &str, file: &'a [u8]) -> Option<&'a [u8]> {
        let (tag, artifact) = file.split_at_checked(TAG_BYTES)?;
        self.mac(name, artifact).verify_slice(tag).ok()?;
        Some(artifact)
    }

    /// Loads `wasm` as a component, from the cache when an artifact for the same
    /// bytes and a compatible engine exists, else compiling and storing it.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, CacheOutcome)> {
        let name = format!(
            "{}-{}.cwasm",
            hex::encode(Sha256::digest(wasm)),
            engine_key(engine)
        );
        let path = self.dir.join(&name);
        // Read the artifact into memory rather than mapping the file: a file
        // truncated under a live mapping would crash the server with SIGBUS.
        if let Ok(file) = std::fs::read(&path) {
            match self.verified(&name, &file) {
                // SAFETY: `Component::deserialize` trusts that the bytes are an
                // artifact produced by `Engine::precompile_component`. These
                // bytes carry an HMAC under the server's private key over this
                // entry's name (the source hash and engine configuration), and
                // only `load` below computes such tags, right after compiling;
                // wasmtime also checks the artifact's header against this
                // engine's version and configuration.
                #[allow(unsafe_code)]
                Some(artifact) => match unsafe { Component::deserialize(engine, artifact) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry")
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "ignoring a compile cache entry this server did not write (bad or missing tag); compiling again")
                }
            }
        }
        let artifact = engine.precompile_component(wasm)?;
        // The artifact is exactly what a cache hit would load next time.
        #[allow(unsafe_code)]
        // SAFETY: `artifact` was produced just now by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(engine, &artifact) }?;
        let tag = self.mac(&name, &artifact).finalize().into_bytes();
        if let Err(e) = store(&path, &[&tag[..], &artifact].concat()) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache; the next start will compile again");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    // Unique per write: loader threads may store the same entry at once.
    let tmp = path.with_extension(format!("tmp{}-{:x}", std::process::id(), fastrand::u64(..)));
    std::fs::write(&tmp, artifact)?;
    std::fs::rename(&tmp, path)
}

/// Reads the cache's HMAC key, creating it on first use. The key is written
/// to a temporary file and hard-linked into place, so concurrent first starts
/// agree on one key and none reads a half-written one.
fn cache_key(path: &Path) -> Result<[u8; KEY_BYTES]> {
    let read = |path: &Path| -> Result<Option<[u8; KEY_BYTES]>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(bytes.try_into().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e)
                .with_context(|| format!("cannot read the compile cache key {}", path.display())),
        }
    };
    if let Some(key) = read(path)? {
        return Ok(key);
    }
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("no randomness for the compile cache key: {e}"))?;
    // Unique per attempt: threads of one process may race here too.
    let tmp = path.with_extension(format!(
        "key.tmp{}-{}",
        std::process::id(),
        hex::encode(&key[..8])
    ));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write the compile cache key {}", tmp.display()))?;
        file.write_all(&key)?;
        file.sync_all()?;
    }
    // A key of the wrong length (a damaged file) is replaced: every entry then
    // fails its check and is compiled again.
    if read(path)?.is_none() {
        let _ = std::fs::remove_file(path);
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path)?.ok_or_else(|| {
            anyhow::anyhow!(
                "the compile cache key {} is damaged; delete it",
                path.display()
            )
        }),
        Err(e) => Err(e)
            .with_context(|| format!("cannot create the compile cache key {}", path.display())),
    }
}

/// A stable key for "artifacts from this engine can be loaded by that one".
fn engine_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}
