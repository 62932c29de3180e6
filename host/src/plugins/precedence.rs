//! Which plugin wins a conflict (a tool name, overlapping writable grants):
//! the one that was there first. Plugins the server has served are recorded,
//! in order, in `plugins.json` in the data folder; they load first, in that
//! order, and newcomers follow, the file that arrived first first (then by
//! name). Arrival is the inode change time (ctime), which copying or
//! unpacking a file sets to now and which, unlike the modification time, a
//! plugin's distributor cannot backdate. So a
//! plugin dropped in later can never take over an established plugin's tool
//! names or knock it out: it is the one refused.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The record of established plugins.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precedence {
    /// Plugin names, earliest first.
    established: Vec<String>,
    #[serde(skip)]
    path: PathBuf,
}

impl Precedence {
    /// Reads the record in `data_dir` (none yet: nobody is established). A
    /// damaged record is reported and treated as empty: precedence then falls
    /// back to file age, and the record is rewritten after the load.
    pub fn read(data_dir: &Path) -> Self {
        let path = data_dir.join("plugins.json");
        let mut record = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a damaged plugin precedence record");
                Self::default()
            }),
            Err(_) => Self::default(),
        };
        record.path = path;
        record
    }

    /// `paths` (plugin files) in load order: established plugins in their
    /// recorded order, then the others by arrival (ctime) and name.
    pub fn order(&self, mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let rank = |path: &PathBuf| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let established = self.position(name);
            let arrived = std::fs::metadata(path).map_or((0, 0), |m| (m.ctime(), m.ctime_nsec()));
            (established.unwrap_or(usize::MAX), arrived, path.clone())
        };
        paths.sort_by_cached_key(rank);
        paths
    }

    /// Where `name` stands among the established plugins, if it loaded before.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.established.iter().position(|n| n == name)
    }

    /// Adds the plugins that loaded now and were not recorded yet, and saves
    /// the record when it changed. Plugins that are gone keep their place, so
    /// one taken out for a while keeps its precedence when it comes back.
    pub fn record<'a>(&mut self, loaded: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let before = self.established.len();
        for name in loaded {
            if self.position(name).is_none() {
                self.established.push(name.to_owned());
            }
        }
        if self.established.len() == before {
            return Ok(());
        }
        let tmp = self
            .path
            .with_extension(format!("json.tmp{}", std::process::id()));
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_plugins_load_first_newcomers_by_age_then_name() {
        let data = tempfile::tempdir().unwrap();
        let plugins = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let p = plugins.path().join(format!("{name}.wasm"));
            std::fs::write(&p, b"").unwrap();
            p
        };
        let victim = file("victim");
        let mut record = Precedence::read(data.path());
        record.record(["victim"]).unwrap();
        let newcomer = file("victim-read");
        let record = Precedence::read(data.path());
        assert_eq!(record.position("victim"), Some(0));
        assert_eq!(
            record.order(vec![newcomer.clone(), victim.clone()]),
            vec![victim, newcomer]
        );
    }
}
