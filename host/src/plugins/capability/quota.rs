//! Disk quotas of read-write directory grants: bytes and entries (files,
//! directories, links) a plugin may keep in each grant, enforced by the host
//! in `wasi:filesystem` before anything is written.
//!
//! The quota layer is the `wasi:filesystem/types` (and `preopens`) host
//! implementation: it wraps wasmtime-wasi's own and, for descriptors that
//! belong to a grant with a quota, reserves what an operation can add before
//! running it: growth of a file (direct writes, streams, `set-size`) and new
//! entries (`open-at` with `create`, `create-directory-at`, `symlink-at`,
//! `link-at`). Removals give the room back. Renames between two grants are
//! refused with `cross-device` (as between two filesystems), so usage never
//! moves unaccounted. Usage is measured once at load (a walk that stops past
//! the quota) and kept per grant for the life of the plugin, shared by its
//! concurrent calls. An operation past a quota fails with `quota` in the
//! guest; if the call then fails, the caller gets the typed `quota_exceeded`.
//!
//! Bytes are accounted per file (by device and inode):
//! the size the grant is charged for each file it has seen written, shared by
//! every descriptor and call, so growth through one descriptor after a
//! truncation through another is charged, and renaming a file onto itself (or
//! onto another link of it) frees nothing. Where the count cannot be exact
//! (two calls creating one file at once) it errs high, never low.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use types::{ErrorCode, HostDescriptor, HostDirectoryEntryStream};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

/// What one grant holds, against its quota.
#[derive(Debug)]
pub struct Usage {
    root: PathBuf,
    max_bytes: u64,
    max_entries: u64,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    bytes: u64,
    entries: u64,
    /// Bytes charged for each file seen through the sandbox, by identity.
    files: HashMap<FileKey, u64>,
}

/// A file's identity: device and inode.
type FileKey = (u64, u64);

/// What the host sees of an entry, read with a plain (synchronous) stat:
/// these are single metadata syscalls, cheaper than a trip to the blocking
/// pool for each.
struct Entry {
    file: FileKey,
    regular: bool,
    size: u64,
    links: u64,
}

/// The entry at `path` under directory descriptor `fd`, resolved inside it
/// as wasmtime-wasi resolves paths (cap-primitives).
fn entry_at(
    fs: &WasiFilesystemCtxView<'_>,
    fd: &Resource<Descriptor>,
    path: &str,
    follow: bool,
) -> Option<Entry> {
    use cap_primitives::fs::{FollowSymlinks, MetadataExt};
    let Descriptor::Dir(dir) = fs.table.get(fd).ok()? else {
        return None;
    };
    let follow = if follow {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    };
    let meta = cap_primitives::fs::stat(&dir.dir, Path::new(path), follow).ok()?;
    Some(Entry {
        file: (meta.dev(), meta.ino()),
        regular: meta.is_file(),
        size: meta.len(),
        links: meta.nlink(),
    })
}

/// The entry file descriptor `fd` refers to.
fn entry_of(fs: &WasiFilesystemCtxView<'_>, fd: &Resource<Descriptor>) -> Option<Entry> {
    use std::os::unix::fs::MetadataExt;
    let Descriptor::File(file) = fs.table.get(fd).ok()? else {
        return None;
    };
    let meta = file.file.metadata().ok()?;
    Some(Entry {
        file: (meta.dev(), meta.ino()),
        regular: meta.is_file(),
        size: meta.len(),
        links: meta.nlink(),
    })
}

/// The error a stream write past a quota fails with; mapped to `quota`.
#[derive(Debug, thiserror::Error)]
#[error("the directory grant's disk quota is used up")]
struct QuotaExceeded;

impl Usage {
    /// Measures what `root` already holds. The walk stops once past the
    /// entry quota (usage is then over quota anyway) and never follows links.
    pub fn scan(root: &Path, max_bytes: u64, max_entries: u64) -> Self {
        let mut used = Used::default();
        let mut pending = vec![root.to_owned()];
        'walk: while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                used.entries += 1;
                if used.entries > max_entries {
                    break 'walk;
                }
                match entry.metadata() {
                    Ok(m) if m.is_dir() => pending.push(entry.path()),
                    Ok(m) if m.is_file() => used.bytes += m.len(),
                    _ => {}
                }
            }
        }
        Self {
            root: root.to_owned(),
            max_bytes,
            max_entries,
            used: Mutex::new(used),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes and entries in use now.
    #[cfg(test)]
    fn used(&self) -> (u64, u64) {
        let used = self.lock();
        (used.bytes, used.entries)
    }

    fn reserve(&self, bytes: u64, entries: u64) -> Result<(), QuotaExceeded> {
        let mut used = self.lock();
        if used.bytes.saturating_add(bytes) > self.max_bytes
            || used.entries.saturating_add(entries) > self.max_entries
        {
            return Err(QuotaExceeded);
        }
        used.bytes += bytes;
        used.entries += entries;
        Ok(())
    }

    fn release(&self, bytes: u64, entries: u64) {
        let mut used = self.lock();
        used.bytes = used.bytes.saturating_sub(bytes);
        used.entries = used.entries.saturating_sub(entries);
    }

    /// Notes a file the first time it is seen, at the size it has (already
    /// counted by the load-time scan or by the writes that made it).
    fn seen(&self, file: FileKey, size: u64) {
        self.lock().files.entry(file).or_insert(size);
    }

    /// Sets the bytes charged for `file` to `size`: growth is reserved
    /// (refused past the quota), shrinking gives room back. Returns the
    /// previous size, to undo a failed operation with.
    fn resize(&self, file: FileKey, size: u64) -> Result<u64, QuotaExceeded> {
        self.update(file, |_| size)
    }

    /// Grows the bytes charged for `file` to at least `end`; returns the
    /// previous size.
    fn grow(&self, file: FileKey, end: u64) -> Result<u64, QuotaExceeded> {
        self.update(file, |before| before.max(end))
    }

    /// Charges `file` the size `new_size` computes from its current charge,
    /// in one step under the lock (so concurrent appends each add theirs).
    fn update(
        &self,
        file: FileKey,
        new_size: impl FnOnce(u64) -> u64,
    ) -> Result<u64, QuotaExceeded> {
        let mut used = self.lock();
        let before = used.files.get(&file).copied().unwrap_or(0);
        let size = new_size(before);
        if size > before {
            let growth = size - before;
            if used.bytes.saturating_add(growth) > self.max_bytes {
                return Err(QuotaExceeded);
            }
            used.bytes += growth;
        } else {
            used.bytes = used.bytes.saturating_sub(before - size);
        }
        used.files.insert(file, size);
        Ok(before)
    }

    /// Forgets `file`, whose last link is gone: its bytes and one entry are free.
    fn remove(&self, file: FileKey) {
        let mut used = self.lock();
        let bytes = used.files.remove(&file).unwrap_or(0);
        used.bytes = used.bytes.saturating_sub(bytes);
        used.entries = used.entries.saturating_sub(1);
    }

    /// The quota, for error messages: `DIR (N bytes, M entries)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (quota {} MiB, {} entries)",
            self.root.display(),
            self.max_bytes / (1024 * 1024),
            self.max_entries
        )
    }
}

/// One call's quota state: the usage of each preopen (in preopen order,
/// `None` where there is no quota) and which descriptor belongs to which.
pub struct FsQuotas {
    grants: Arc<[Option<Arc<Usage>>]>,
    /// Descriptor rep -> index of its grant.
    owner: HashMap<u32, usize>,
    /// File descriptor rep -> the file's identity (files of quota grants).
    files: HashMap<u32, FileKey>,
    /// The grant whose quota stopped an operation in this call, if any.
    hit: Arc<Mutex<Option<Arc<Usage>>>>,
}

impl FsQuotas {
    /// The state for a call of a plugin whose preopens have these usages.
    pub fn new(grants: Arc<[Option<Arc<Usage>>]>) -> Self {
        Self {
            grants,
            owner: HashMap::new(),
            files: HashMap::new(),
            hit: Arc::default(),
        }
    }

    /// The grant whose quota an operation of this call ran into.
    pub fn hit(&self) -> Option<Arc<Usage>> {
        self.hit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn grant_of(&self, fd: &Resource<Descriptor>) -> Option<usize> {
        self.owner.get(&fd.rep()).copied()
    }

    fn usage(&self, fd: &Resource<Descriptor>) -> Option<Arc<Usage>> {
        self.grant_of(fd)
            .and_then(|i| self.grants.get(i).cloned().flatten())
    }

    fn reserve(&self, usage: &Arc<Usage>, bytes: u64, entries: u64) -> FsResult<()> {
        usage
            .reserve(bytes, entries)
            .map_err(|e| self.exceeded(usage, e))
    }

    fn exceeded(&self, usage: &Arc<Usage>, _: QuotaExceeded) -> wasmtime_wasi::p2::FsError {
        *self.hit.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage.clone());
        ErrorCode::Quota.into()
    }

    /// The grant usage and file identity of file descriptor `fd`, when its
    /// grant has a quota.
    fn file(&self, fd: &Resource<Descriptor>) -> Option<(Arc<Usage>, FileKey)> {
        Some((self.usage(fd)?, *self.files.get(&fd.rep())?))
    }
}

/// The filesystem host of a call: wasmtime-wasi's, behind the quotas.
pub struct QuotaFs<'a> {
    /// wasmtime-wasi's filesystem view.
    pub fs: WasiFilesystemCtxView<'a>,
    /// This call's quota state.
    pub quotas: &'a mut FsQuotas,
}

struct QuotaFsData;

impl HasData for QuotaFsData {
    type Data<'a> = QuotaFs<'a>;
}

/// Replaces wasmtime-wasi's `wasi:filesystem` host in `linker` (which must
/// allow shadowing) with the quota layer.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> QuotaFs<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, QuotaFsData>(linker, get)?;
    preopens::add_to_linker::<T, QuotaFsData>(linker, get)?;
    Ok(())
}

fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// Accounts for an entry that is gone: its last link frees the file's bytes;
/// any link frees one entry.
fn forget(usage: &Usage, entry: &Entry) {
    if entry.regular && entry.links <= 1 {
        usage.seen(entry.file, entry.size);
        usage.remove(entry.file);
    } else {
        usage.release(0, 1);
    }
}

impl preopens::Host for QuotaFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.fs)?;
        for (i, (fd, _)) in dirs.iter().enumerate() {
            self.quotas.owner.insert(fd.rep(), i);
        }
        Ok(dirs)
    }
}

impl types::Host for QuotaFs<'_> {
    fn convert_error_code(
        &mut self,
        err: wasmtime_wasi::p2::FsError,
    ) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        if self
            .fs
            .table
            .get(&err)?
            .downcast_ref::<QuotaExceeded>()
            .is_some()
        {
            return Ok(Some(ErrorCode::Quota));
        }
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl HostDirectoryEntryStream for QuotaFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

impl QuotaFs<'_> {
    /// Wraps a file output stream of `fd` so that its writes are counted.
    fn counted(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
        offset: Option<u64>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some((usage, file)) = self.quotas.file(fd) else {
            return Ok(stream);
        };
        let inner = self.fs.table.delete(stream)?;
        let counted: DynOutputStream = Box::new(CountedStream {
            inner,
            usage,
            file,
            position: offset,
            hit: self.quotas.hit.clone(),
        });
        Ok(self.fs.table.push(counted)?)
    }
}

impl HostDescriptor for QuotaFs<'_> {
    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.fs, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.fs, fd).await
    }

    async fn get_flags(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.fs, fd).await
    }

    async fn get_type(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.fs, fd).await
    }

    async fn set_size(
        &mut self,
        fd: Resource<types::Descriptor>,
        size: types::Filesize,
    ) -> FsResult<()> {
        let Some((usage, file)) = self.quotas.file(&fd) else {
            return HostDescriptor::set_size(&mut self.fs, fd, size).await;
        };
        let before = usage
            .resize(file, size)
            .map_err(|e| self.quotas.exceeded(&usage, e))?;
        let resized = HostDescriptor::set_size(&mut self.fs, fd, size).await;
        if resized.is_err() {
            let _ = usage.resize(file, before);
        }
        resized
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.fs, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.fs, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let Some((usage, file)) = self.quotas.file(&fd) else {
            return HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        };
        let end = offset.saturating_add(buf.len() as u64);
        let before = usage
            .grow(file, end)
            .map_err(|e| self.quotas.exceeded(&usage, e))?;
        let written = HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        if written.is_err() {
            let _ = usage.resize(file, before);
        }
        written
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        HostDescriptor::read_directory(&mut self.fs, fd).await
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.fs, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&fd);
        if let Some(usage) = &usage {
            self.quotas.reserve(usage, 0, 1)?;
        }
        let made = HostDescriptor::create_directory_at(&mut self.fs, fd, path).await;
        if let (Err(_), Some(usage)) = (&made, &usage) {
            usage.release(0, 1);
        }
        made
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.fs, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat_at(&mut self.fs, fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times_at(&mut self.fs, fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&new_descriptor);
        if self.quotas.grant_of(&fd) != self.quotas.grant_of(&new_descriptor) {
            return Err(ErrorCode::CrossDevice.into());
        }
        if let Some(usage) = &usage {
            self.quotas.reserve(usage, 0, 1)?;
        }
        let linked = HostDescriptor::link_at(
            &mut self.fs,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        )
        .await;
        if let (Err(_), Some(usage)) = (&linked, &usage) {
            usage.release(0, 1);
        }
        linked
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        let grant = self.quotas.grant_of(&fd);
        let usage = self.quotas.usage(&fd);
        let mut created = false;
        if let Some(usage) = &usage {
            let follow = path_flags.contains(types::PathFlags::SYMLINK_FOLLOW);
            let exists = entry_at(&self.fs, &fd, &path, follow).is_some();
            if !exists && oflags.contains(types::OpenFlags::CREATE) {
                self.quotas.reserve(usage, 0, 1)?;
                created = true;
            }
        }
        let opened =
            HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags).await;
        let new = match opened {
            Ok(new) => new,
            Err(e) => {
                if let (true, Some(usage)) = (created, &usage) {
                    usage.release(0, 1);
                }
                return Err(e);
            }
        };
        if let Some(grant) = grant {
            self.quotas.owner.insert(new.rep(), grant);
        }
        if let Some(usage) = usage {
            // Files are charged by identity from here on; a truncation frees
            // what the file was charged for.
            if let Some(entry) = entry_of(&self.fs, &new).filter(|e| e.regular) {
                usage.seen(entry.file, entry.size);
                if oflags.contains(types::OpenFlags::TRUNCATE) {
                    let _ = usage.resize(entry.file, entry.size);
                }
                self.quotas.files.insert(new.rep(), entry.file);
            }
        }
        Ok(new)
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        self.quotas.owner.remove(&fd.rep());
        self.quotas.files.remove(&fd.rep());
        HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.fs, fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&fd);
        HostDescriptor::remove_directory_at(&mut self.fs, fd, path).await?;
        if let Some(usage) = usage {
            usage.release(0, 1);
        }
        Ok(())
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&new_fd);
        if self.quotas.grant_of(&fd) != self.quotas.grant_of(&new_fd)
            && (usage.is_some() || self.quotas.usage(&fd).is_some())
        {
            return Err(ErrorCode::CrossDevice.into());
        }
        // A rename over another entry removes that entry, unless both are the
        // same file: a rename onto itself, or onto another of its links, does
        // nothing at all.
        let mut replaced = None;
        if usage.is_some() {
            let source = entry_at(&self.fs, &fd, &old_path, false);
            replaced = entry_at(&self.fs, &new_fd, &new_path, false)
                .filter(|target| source.as_ref().is_none_or(|s| s.file != target.file));
        }
        HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path).await?;
        if let (Some(usage), Some(entry)) = (usage, replaced) {
            forget(&usage, &entry);
        }
        Ok(())
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&fd);
        if let Some(usage) = &usage {
            self.quotas.reserve(usage, 0, 1)?;
        }
        let made = HostDescriptor::symlink_at(&mut self.fs, fd, src_path, dest_path).await;
        if let (Err(_), Some(usage)) = (&made, &usage) {
            usage.release(0, 1);
        }
        made
    }

    async fn unlink_file_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let usage = self.quotas.usage(&fd);
        let before = usage
            .as_ref()
            .and_then(|_| entry_at(&self.fs, &fd, &path, false));
        HostDescriptor::unlink_file_at(&mut self.fs, fd, path).await?;
        if let (Some(usage), Some(entry)) = (usage, before) {
            forget(&usage, &entry);
        }
        Ok(())
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.fs, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = HostDescriptor::write_via_stream(&mut self.fs, borrow(&fd), offset)?;
        self.counted(&fd, stream, Some(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = HostDescriptor::append_via_stream(&mut self.fs, borrow(&fd))?;
        self.counted(&fd, stream, None)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.fs, a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.fs, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash_at(&mut self.fs, fd, path_flags, path).await
    }
}

/// A file output stream whose growth of the file is reserved against the
/// grant's quota before each write.
struct CountedStream {
    inner: DynOutputStream,
    usage: Arc<Usage>,
    file: FileKey,
    /// Where the next write lands; `None` appends.
    position: Option<u64>,
    hit: Arc<Mutex<Option<Arc<Usage>>>>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CountedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        let charged = match self.position {
            Some(position) => self.usage.grow(self.file, position.saturating_add(len)),
            None => self
                .usage
                .update(self.file, |before| before.saturating_add(len)),
        };
        let before = match charged {
            Ok(before) => before,
            Err(e) => {
                *self.hit.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.usage.clone());
                return Err(StreamError::LastOperationFailed(e.into()));
            }
        };
        match self.inner.write(bytes) {
            Ok(()) => {
                if let Some(position) = &mut self.position {
                    *position = position.saturating_add(len);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.usage.resize(self.file, before);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_charged_per_file_whatever_descriptor_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let usage = Usage::scan(dir.path(), 100, 10);
        let file = (1, 1);
        usage.seen(file, 0);
        usage.grow(file, 60).unwrap();
        assert_eq!(usage.used(), (60, 0));
        // Truncated through one descriptor, regrown through another: charged again.
        usage.resize(file, 0).unwrap();
        usage.grow(file, 60).unwrap();
        assert_eq!(usage.used(), (60, 0));
        // Overwriting within the charged size costs nothing; growing past the quota fails.
        usage.grow(file, 30).unwrap();
        assert_eq!(usage.used(), (60, 0));
        assert!(usage.grow(file, 101).is_err());
        assert_eq!(usage.used(), (60, 0));
        usage.reserve(0, 1).unwrap();
        usage.remove(file);
        assert_eq!(usage.used(), (0, 0));
    }
}
