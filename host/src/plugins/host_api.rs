//! The `launch:plugin` host interfaces (`log`, `config`): what the SDK in
//! `wit/` promises plugins, implemented over a small per-call state.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "launch:plugin/host",
    });
}

use bindings::launch::plugin::{config, log};

use super::stdio::escape_guest_text;

/// Most log records one call may write; the rest are counted and dropped.
const MAX_RECORDS_PER_CALL: u32 = 1000;
/// Longest message or field value kept in a log record.
const MAX_LOG_TEXT: usize = 4096;
/// Most bytes of log records one call may write.
const MAX_LOG_BYTES_PER_CALL: usize = 256 * 1024;

/// Per-call state behind the `launch:plugin` interfaces.
pub struct PluginApi {
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    records: u32,
    bytes: usize,
}

impl PluginApi {
    /// State for one call of `plugin`, which may read `config`.
    pub fn new(plugin: Arc<str>, config: Arc<BTreeMap<String, String>>) -> Self {
        Self {
            plugin,
            config,
            records: 0,
            bytes: 0,
        }
    }

    /// Log records dropped by the per-call caps.
    pub fn dropped_records(&self) -> u32 {
        self.records.saturating_sub(MAX_RECORDS_PER_CALL)
    }
}

impl Drop for PluginApi {
    fn drop(&mut self) {
        let dropped = self.dropped_records();
        if dropped > 0 {
            tracing::warn!(target: "launch::plugin", plugin = &*self.plugin, dropped, "log records dropped: the per-call log budget was used up");
        }
    }
}

fn clip(text: &str) -> &str {
    if text.len() <= MAX_LOG_TEXT {
        return text;
    }
    let cut = (0..=MAX_LOG_TEXT)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..cut]
}

impl log::Host for PluginApi {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        self.records = self.records.saturating_add(1);
        let size = message.len().min(MAX_LOG_TEXT)
            + fields
                .iter()
                .take(32)
                .map(|(k, v)| k.len().min(MAX_LOG_TEXT) + v.len().min(MAX_LOG_TEXT))
                .sum::<usize>();
        self.bytes = self.bytes.saturating_add(size);
        if self.records > MAX_RECORDS_PER_CALL || self.bytes > MAX_LOG_BYTES_PER_CALL {
            // Counted as dropped: keep `records` past the cap from here on.
            self.records = self.records.max(MAX_RECORDS_PER_CALL + 1);
            return;
        }
        let fields: Vec<String> = fields
            .iter()
            .take(32)
            .map(|(k, v)| format!("{}={:?}", escape_guest_text(clip(k)), clip(v)))
            .collect();
        let message = escape_guest_text(clip(&message));
        let (plugin, fields) = (&*self.plugin, fields.join(" "));
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "launch::plugin", plugin, fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "launch::plugin", plugin, fields, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "launch::plugin", plugin, fields, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "launch::plugin", plugin, fields, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "launch::plugin", plugin, fields, "{message}")
            }
        }
    }
}

impl config::Host for PluginApi {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

struct PluginApiData;

impl HasData for PluginApiData {
    type Data<'a> = &'a mut PluginApi;
}

/// Adds `launch:plugin/log` and `launch:plugin/config` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut PluginApi,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, PluginApiData>(linker, get)?;
    config::add_to_linker::<T, PluginApiData>(linker, get)?;
    Ok(())
}
