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
//! Files the host cannot see grow (a second descriptor of one file) are
//! counted by each descriptor's own view of the size, so the count errs high,
//! never low.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

#[derive(Debug, Default, Clone, Copy)]
struct Used {
    bytes: u64,
    entries: u64,
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

    /// Bytes and entries in use now.
    pub fn used(&self) -> (u64, u64) {
        let used = *self.used.lock().unwrap_or_else(PoisonError::into_inner);
        (used.bytes, used.entries)
    }

    fn reserve(&self, bytes: u64, entries: u64) -> Result<(), QuotaExceeded> {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
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
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.bytes = used.bytes.saturating_sub(bytes);
        used.entries = used.entries.saturating_sub(entries);
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
    /// Descriptor rep -> the file size as this call knows it.
    sizes: HashMap<u32, Arc<AtomicU64>>,
    /// The grant whose quota stopped an operation in this call, if any.
    hit: Arc<Mutex<Option<Arc<Usage>>>>,
}

impl FsQuotas {
    /// The state for a call of a plugin whose preopens have these usages.
    pub fn new(grants: Arc<[Option<Arc<Usage>>]>) -> Self {
        Self {
            grants,
            owner: HashMap::new(),
            sizes: HashMap::new(),
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
        usage.reserve(bytes, entries).map_err(|QuotaExceeded| {
            *self.hit.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage.clone());
            ErrorCode::Quota.into()
        })
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

/// Whether the stat of an existing entry says removing it frees its bytes.
fn freed_bytes(stat: &types::DescriptorStat) -> u64 {
    if stat.type_ == types::DescriptorType::RegularFile && stat.link_count <= 1 {
        stat.size
    } else {
        0
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
    /// The size this call knows for file `fd`: its size when first used,
    /// grown by every write through `fd` since (writes through streams land
    /// later, so the file's own size would lag behind them).
    fn size_of(&mut self, fd: &Resource<Descriptor>) -> FsResult<Arc<AtomicU64>> {
        if let Some(size) = self.quotas.sizes.get(&fd.rep()) {
            return Ok(size.clone());
        }
        let len = match self.fs.table.get(fd)? {
            Descriptor::File(f) => f.file.metadata().map_err(ErrorCode::from)?.len(),
            Descriptor::Dir(_) => return Err(ErrorCode::IsDirectory.into()),
        };
        let size = Arc::new(AtomicU64::new(len));
        self.quotas.sizes.insert(fd.rep(), size.clone());
        Ok(size)
    }

    /// Wraps a file output stream of `fd` so that its writes are counted.
    fn counted(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
        offset: Option<u64>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(usage) = self.quotas.usage(fd) else {
            return Ok(stream);
        };
        let size = self.size_of(fd)?;
        let inner = self.fs.table.delete(stream)?;
        let counted: DynOutputStream = Box::new(CountedStream {
            inner,
            usage,
            size,
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
        let Some(usage) = self.quotas.usage(&fd) else {
            return HostDescriptor::set_size(&mut self.fs, fd, size).await;
        };
        let known = self.size_of(&fd)?;
        let before = known.load(Ordering::Relaxed);
        let growth = size.saturating_sub(before);
        self.quotas.reserve(&usage, growth, 0)?;
        match HostDescriptor::set_size(&mut self.fs, fd, size).await {
            Ok(()) => {
                usage.release(before.saturating_sub(size), 0);
                known.store(size, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                usage.release(growth, 0);
                Err(e)
            }
        }
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
        let Some(usage) = self.quotas.usage(&fd) else {
            return HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        };
        let known = self.size_of(&fd)?;
        let end = offset.saturating_add(buf.len() as u64);
        let growth = end.saturating_sub(known.load(Ordering::Relaxed));
        self.quotas.reserve(&usage, growth, 0)?;
        let written = HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        match &written {
            Ok(n) => {
                let really = offset.saturating_add(*n);
                usage.release(end - really.min(end), 0);
                known.fetch_max(really, Ordering::Relaxed);
            }
            Err(_) => usage.release(growth, 0),
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
        let mut truncated = 0;
        if let Some(usage) = &usage {
            let before =
                HostDescriptor::stat_at(&mut self.fs, borrow(&fd), path_flags, path.clone()).await;
            match &before {
                Err(_) if oflags.contains(types::OpenFlags::CREATE) => {
                    self.quotas.reserve(usage, 0, 1)?;
                    created = true;
                }
                Ok(stat) if oflags.contains(types::OpenFlags::TRUNCATE) => {
                    truncated = freed_bytes(stat)
                }
                _ => {}
            }
        }
        let opened =
            HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags).await;
        match (&opened, &usage) {
            (Ok(new), Some(usage)) => {
                usage.release(truncated, 0);
                if let Some(grant) = grant {
                    self.quotas.owner.insert(new.rep(), grant);
                }
            }
            (Ok(new), None) => {
                if let Some(grant) = grant {
                    self.quotas.owner.insert(new.rep(), grant);
                }
            }
            (Err(_), Some(usage)) if created => usage.release(0, 1),
            _ => {}
        }
        opened
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        self.quotas.owner.remove(&fd.rep());
        self.quotas.sizes.remove(&fd.rep());
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
        // A rename over an existing entry removes that entry.
        let replaced = match &usage {
            Some(_) => HostDescriptor::stat_at(
                &mut self.fs,
                borrow(&new_fd),
                types::PathFlags::empty(),
                new_path.clone(),
            )
            .await
            .ok(),
            None => None,
        };
        HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path).await?;
        if let (Some(usage), Some(stat)) = (usage, replaced) {
            usage.release(freed_bytes(&stat), 1);
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
        let before = match &usage {
            Some(_) => HostDescriptor::stat_at(
                &mut self.fs,
                borrow(&fd),
                types::PathFlags::empty(),
                path.clone(),
            )
            .await
            .ok(),
            None => None,
        };
        HostDescriptor::unlink_file_at(&mut self.fs, fd, path).await?;
        if let (Some(usage), Some(stat)) = (usage, before) {
            usage.release(freed_bytes(&stat), 1);
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
    /// The file's size as this call knows it.
    size: Arc<AtomicU64>,
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
        let known = self.size.load(Ordering::Relaxed);
        let start = self.position.unwrap_or(known);
        let end = start.saturating_add(len);
        let growth = end.saturating_sub(known);
        if self.usage.reserve(growth, 0).is_err() {
            *self.hit.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.usage.clone());
            return Err(StreamError::LastOperationFailed(QuotaExceeded.into()));
        }
        match self.inner.write(bytes) {
            Ok(()) => {
                self.size.fetch_max(end, Ordering::Relaxed);
                if let Some(position) = &mut self.position {
                    *position = end;
                }
                Ok(())
            }
            Err(e) => {
                self.usage.release(growth, 0);
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
