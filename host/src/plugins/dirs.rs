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
use wasmtime_wasi::WasiCtxBuilder;

use super::manifest::{DirGrant, DirMode};
use super::quota::Usage;

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
            let handle = File::open(&grant.host).with_context(|| {
                format!("grants.dirs: cannot open {}", grant.host.display())
            })?;
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
/// (plugins, data, compile cache): a plugin could rewrite manifests, the
/// compiled-code cache or the memory index there.
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
        assert!(reopened.join("mine").is_file(), "the grant followed the swap");
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
