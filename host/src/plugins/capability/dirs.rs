//! The directory capability: host folders a manifest grants, pinned at load to
//! the very directory the operator approved, kept clear of the server's own
//! folders and of other plugins' writable grants, and opened in each call's
//! sandbox through the pinned handle.
//!
//! Why pin: a preopen reopened by path on every call follows whatever is at
//! that path *now*. A plugin with a read-write grant on `S` could rename
//! `S/inner` away and put a symlink to the server's data in its place; another
//! plugin granted `S/inner` would then open the data folder. Holding a file
//! descriptor of the approved directory for the life of the plugin, and
//! opening each call's preopen from that descriptor (`/proc/self/fd/N`), makes
//! the grant immune to renames and symlink swaps of its path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use wasmtime_wasi::WasiCtxBuilder;

use super::Access;
use super::quota::Usage;
use crate::plugins::manifest::in_range;

/// How a granted directory may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirMode {
    /// Files may be read and listed, never created, changed or removed.
    ReadOnly,
    /// Full access inside the directory.
    ReadWrite,
}

/// A host directory mapped into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirGrant {
    /// Canonical host path.
    pub host: PathBuf,
    /// Absolute path the guest sees.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: DirMode,
    /// Most bytes of files the grant may hold (read-write grants).
    pub max_bytes: u64,
    /// Most files, directories and links the grant may hold (read-write grants).
    pub max_entries: u64,
}

/// Default disk quota of a read-write grant, in MiB.
pub const DEFAULT_MAX_MIB: u64 = 100;
/// Default entry quota of a read-write grant.
pub const DEFAULT_MAX_ENTRIES: u64 = 4096;

/// One `dirs` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDir {
    host: PathBuf,
    guest: String,
    mode: DirMode,
    max_mib: Option<u64>,
    max_entries: Option<u64>,
}

/// Validates `[grants] dirs`: each host folder exists (relative to `base`,
/// the manifest's folder), guest paths are absolute and distinct, grants of
/// this plugin do not nest, quotas are in range.
pub fn validate(raw: Vec<RawDir>, base: &Path) -> Result<Vec<DirGrant>, String> {
    let mut dirs: Vec<DirGrant> = Vec::with_capacity(raw.len());
    for dir in raw {
        let host_path = base.join(&dir.host);
        let host = std::fs::canonicalize(&host_path).map_err(|e| {
            format!(
                "grants.dirs: host directory {} ({}) cannot be used: {e}; create it or fix the path (relative paths are relative to the manifest's folder)",
                dir.host.display(),
                host_path.display()
            )
        })?;
        if !host.is_dir() {
            return Err(format!(
                "grants.dirs: {} is not a directory",
                host.display()
            ));
        }
        if !dir.guest.starts_with('/') || dir.guest.split('/').any(|c| c == "..") {
            return Err(format!(
                "grants.dirs: guest path {:?} must be absolute (start with '/') and contain no '..'",
                dir.guest
            ));
        }
        if let Some(other) = dirs.iter().find(|d| nested(&d.host, &host)) {
            return Err(format!(
                "grants.dirs: {} and {} overlap; grant directories that do not contain each other",
                other.host.display(),
                host.display()
            ));
        }
        if dirs.iter().any(|d| d.guest == dir.guest) {
            return Err(format!(
                "grants.dirs: guest path {:?} is granted twice",
                dir.guest
            ));
        }
        let key = format!("grants.dirs ({})", dir.guest);
        let max_mib = in_range(&format!("{key}.max_mib"), dir.max_mib, 1, 1 << 20)?;
        let max_entries = in_range(
            &format!("{key}.max_entries"),
            dir.max_entries,
            1,
            10_000_000,
        )?;
        dirs.push(DirGrant {
            host,
            guest: dir.guest,
            mode: dir.mode,
            max_bytes: max_mib.unwrap_or(DEFAULT_MAX_MIB) << 20,
            max_entries: max_entries.unwrap_or(DEFAULT_MAX_ENTRIES),
        });
    }
    Ok(dirs)
}

/// `wasi:filesystem` for `launch plugin check`.
pub fn describe(dirs: &[DirGrant]) -> Access {
    let mut access = Access::granted("directories", dirs.len(), "[grants] dirs");
    for dir in dirs {
        access.capability.push_str(&match dir.mode {
            DirMode::ReadOnly => format!("; {} at {} read-only", dir.host.display(), dir.guest),
            DirMode::ReadWrite => format!(
                "; {} at {} read-write, quota {} MiB and {} entries",
                dir.host.display(),
                dir.guest,
                dir.max_bytes >> 20,
                dir.max_entries
            ),
        });
    }
    access
}

/// A granted directory, held open since load.
#[derive(Debug, Clone)]
pub struct PinnedDir {
    /// The grant, its `host` being where the pinned directory really is.
    pub grant: DirGrant,
    handle: Arc<File>,
    /// What a read-write grant holds against its quota (`None` when read-only).
    pub usage: Option<Arc<Usage>>,
}

/// Opens every granted directory and resolves where each one really is
/// (through the opened handle, so the checks that follow judge exactly the
/// directory the sandbox will get).
pub fn pin(grants: &[DirGrant]) -> Result<Vec<PinnedDir>> {
    grants
        .iter()
        .map(|grant| {
            let handle = File::open(&grant.host)
                .with_context(|| format!("grants.dirs: cannot open {}", grant.host.display()))?;
            if !handle.metadata()?.is_dir() {
                bail!("grants.dirs: {} is not a directory", grant.host.display());
            }
            let host = std::fs::read_link(fd_path(&handle)).with_context(|| {
                format!(
                    "grants.dirs: cannot resolve where {} is",
                    grant.host.display()
                )
            })?;
            let usage = (grant.mode == DirMode::ReadWrite)
                .then(|| Arc::new(Usage::scan(&host, grant.max_bytes, grant.max_entries)));
            Ok(PinnedDir {
                grant: DirGrant {
                    host,
                    ..grant.clone()
                },
                handle: Arc::new(handle),
                usage,
            })
        })
        .collect()
}

/// The path that reopens `file` itself, whatever has happened to its name since.
fn fd_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Whether one of two directories contains the other (or they are the same).
fn nested(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Refuses a grant inside, or containing, one of the server's own folders
/// and files (plugins, data, compile cache, configuration file, the plugin's
/// CA files): a plugin could rewrite manifests, the compiled-code cache, the
/// memory index, API keys or trusted roots there.
pub fn check_protected(dirs: &[PinnedDir], protected: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        if let Some(p) = protected.iter().find(|p| nested(&dir.grant.host, p)) {
            bail!(
                "grants.dirs: {} overlaps {}, which holds the server's plugins or data; a plugin could rewrite grants, compiled code or memory there; grant a directory outside it",
                dir.grant.host.display(),
                p.display()
            );
        }
    }
    Ok(())
}

/// Why the grants of two plugins cannot both be given: they nest or are the
/// same and at least one is writable, so one plugin could change what the
/// other reads (or, without pinning, where its grant leads). Read-only grants
/// may share a tree: neither plugin can change it.
pub fn conflict(ours: &[PinnedDir], theirs: &[PinnedDir]) -> Option<(PathBuf, PathBuf)> {
    ours.iter().find_map(|a| {
        theirs
            .iter()
            .find(|b| {
                nested(&a.grant.host, &b.grant.host)
                    && (a.grant.mode == DirMode::ReadWrite || b.grant.mode == DirMode::ReadWrite)
            })
            .map(|b| (a.grant.host.clone(), b.grant.host.clone()))
    })
}

/// Maps every pinned directory into a call's sandbox.
pub fn apply(wasi: &mut WasiCtxBuilder, dirs: &[PinnedDir]) -> Result<()> {
    for dir in dirs {
        let perms = match dir.grant.mode {
            DirMode::ReadOnly => wasmtime_wasi::FsPerms::ReadOnly,
            DirMode::ReadWrite => wasmtime_wasi::FsPerms::ReadWrite,
        };
        wasi.preopened_dir(fd_path(&dir.handle), &dir.grant.guest, perms)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open granted directory {}: {e:#}",
                    dir.grant.host.display()
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(host: &Path, mode: DirMode) -> DirGrant {
        DirGrant {
            host: host.to_owned(),
            guest: "/w".into(),
            mode,
            max_bytes: 1 << 20,
            max_entries: 10,
        }
    }

    #[test]
    fn a_pinned_grant_survives_a_symlink_swap_of_its_path() {
        let root = tempfile::tempdir().unwrap();
        let approved = root.path().join("inner");
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(&approved).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(approved.join("mine"), "ok").unwrap();
        let pinned = pin(&[grant(&approved, DirMode::ReadOnly)]).unwrap();
        std::fs::rename(&approved, root.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &approved).unwrap();
        let reopened = fd_path(&pinned[0].handle);
        assert!(
            reopened.join("mine").is_file(),
            "the grant followed the swap"
        );
    }

    #[test]
    fn writable_grants_of_two_plugins_may_not_nest_read_only_ones_may() {
        let root = tempfile::tempdir().unwrap();
        let inner = root.path().join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        let outer_rw = pin(&[grant(root.path(), DirMode::ReadWrite)]).unwrap();
        let inner_ro = pin(&[grant(&inner, DirMode::ReadOnly)]).unwrap();
        let outer_ro = pin(&[grant(root.path(), DirMode::ReadOnly)]).unwrap();
        assert!(conflict(&inner_ro, &outer_rw).is_some());
        assert!(conflict(&outer_rw, &inner_ro).is_some());
        assert!(conflict(&inner_ro, &outer_ro).is_none());
    }
}
