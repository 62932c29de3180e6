//! The wasmtime engines, the epoch ticker that enforces deadlines, and the
//! on-disk cache of compiled components.
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
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
    pool.total_component_instances(1000)
        .total_core_instances(2000)
        .total_memories(1000)
        .total_tables(2000)
        .total_stacks(1000)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(64)
        .table_elements(100_000)
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
}

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
            dir: dir.to_owned(),
        })
    }

    /// Loads `wasm` as a component, from the cache when an artifact for the same
    /// bytes and a compatible engine exists, else compiling and storing it.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(Sha256::digest(wasm)),
            engine_key(engine)
        ));
        // Read the artifact into memory rather than mapping the file: a file
        // truncated under a live mapping would crash the server with SIGBUS.
        if let Ok(artifact) = std::fs::read(&path) {
            // SAFETY: `Component::deserialize` trusts that the bytes are an
            // artifact produced by `Engine::precompile_component`. This cache
            // directory is private to the server (it lives in the data
            // directory), files are only ever written by `store` below via
            // write-to-temp-then-rename, names bind the source hash and the
            // engine configuration, and wasmtime itself checks the artifact's
            // header against this engine's version and configuration. A corrupt
            // file fails to load and is recompiled.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry")
                }
            }
        }
        let artifact = engine.precompile_component(wasm)?;
        // The artifact is exactly what a cache hit would load next time.
        #[allow(unsafe_code)]
        // SAFETY: `artifact` was produced just now by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(engine, &artifact) }?;
        if let Err(e) = store(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache; the next start will compile again");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, artifact)?;
    std::fs::rename(&tmp, path)
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
