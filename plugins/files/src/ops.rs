//! The file operations behind the tools, written against `std::fs` so they run
//! (and are unit-tested) natively as well as inside the WebAssembly sandbox.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::paths::{RelPath, Root};
use crate::text::{self, Matcher, NotText};

/// The most entries `list` returns.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Default `max-bytes` of `read-file`.
pub const DEFAULT_READ_BYTES: u32 = 64 * 1024;
/// Largest `max-bytes` of `read-file`; larger requests are reduced to it.
pub const MAX_READ_BYTES: u32 = 256 * 1024;
/// Default `max-results` of `search`.
pub const DEFAULT_SEARCH_RESULTS: u32 = 100;
/// Largest `max-results` of `search`.
pub const MAX_SEARCH_RESULTS: u32 = 1000;
/// Files larger than this are skipped by content searches.
pub const MAX_SEARCH_FILE_BYTES: u64 = 1024 * 1024;
/// A search stops after visiting this many files.
pub const MAX_SEARCH_FILES: u32 = 10_000;
/// Matching lines are cut to this many characters.
pub const MAX_LINE_CHARS: usize = 300;
/// Directory names a search does not descend into.
const SKIPPED_DIRS: &[&str] = &[".git"];

/// What kind of object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else.
    Other,
}

/// One object in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Path relative to the root (`.` for the root).
    pub path: String,
    /// Its kind.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: Option<u64>,
}

/// The result of `list`.
#[derive(Debug, Default)]
pub struct Listing {
    /// Entries in walk order.
    pub entries: Vec<EntryInfo>,
    /// Whether entries were left out.
    pub truncated: bool,
}

/// The result of `read-file`.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The text.
    pub content: String,
    /// Where it starts.
    pub offset: u64,
    /// Where the next piece starts, if any.
    pub next_offset: Option<u64>,
    /// File size.
    pub size: u64,
}

/// How `write-file` treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail if it exists.
    CreateNew,
    /// Replace its content.
    Overwrite,
    /// Add to its end.
    Append,
}

/// The result of `write-file`.
#[derive(Debug, PartialEq, Eq)]
pub struct Written {
    /// Normalized path.
    pub path: String,
    /// Bytes written.
    pub bytes_written: u64,
    /// File size afterwards.
    pub size: u64,
}

/// What `search` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// File contents.
    Contents,
    /// File and directory names.
    Names,
}

/// Settings of `search`, with defaults applied.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// Contents or names.
    pub target: Target,
    /// Whether case must match.
    pub case_sensitive: bool,
    /// Only files whose name matches this glob.
    pub file_glob: Option<String>,
    /// The most matches to return.
    pub max_results: u32,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            target: Target::Contents,
            case_sensitive: false,
            file_glob: None,
            max_results: DEFAULT_SEARCH_RESULTS,
        }
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Path of the file or directory.
    pub path: String,
    /// Line number, for content matches.
    pub line: Option<u32>,
    /// Line text, for content matches.
    pub text: Option<String>,
}

/// The result of `search`.
#[derive(Debug, Default)]
pub struct SearchOutcome {
    /// The hits.
    pub matches: Vec<Hit>,
    /// Whether the search stopped early.
    pub truncated: bool,
    /// Files whose contents were searched.
    pub files_searched: u32,
    /// Files skipped.
    pub files_skipped: u32,
}

/// The workspace: a validated root under which every operation happens.
pub struct Workspace {
    root: Root,
}

impl Workspace {
    /// A workspace rooted at `root`.
    pub fn new(root: Root) -> Workspace {
        Workspace { root }
    }

    fn resolve(&self, input: &str) -> Result<RelPath, String> {
        RelPath::parse(&self.root, input)
    }

    fn metadata(&self, rel: &RelPath) -> Result<Metadata, String> {
        fs::symlink_metadata(self.root.join(rel)).map_err(|e| describe(&e, "access", rel))
    }

    /// `list`: the entries of a directory, or the one entry of a file.
    pub fn list(&self, path: Option<&str>, recursive: bool) -> Result<Listing, String> {
        let rel = self.resolve(path.unwrap_or(""))?;
        let meta = self.metadata(&rel)?;
        let mut listing = Listing::default();
        if !meta.is_dir() {
            listing.entries.push(entry_info(&rel, &meta));
            return Ok(listing);
        }
        self.walk_list(&rel, recursive, &mut listing, true)?;
        Ok(listing)
    }

    fn walk_list(
        &self,
        dir: &RelPath,
        recursive: bool,
        listing: &mut Listing,
        top: bool,
    ) -> Result<(), String> {
        let children = match self.children(dir) {
            Ok(children) => children,
            // Below the top, an unreadable directory is shown but not entered.
            Err(_) if !top => return Ok(()),
            Err(e) => return Err(e),
        };
        for (child, meta) in children {
            if listing.truncated {
                return Ok(());
            }
            if listing.entries.len() >= MAX_LIST_ENTRIES {
                listing.truncated = true;
                return Ok(());
            }
            listing.entries.push(entry_info(&child, &meta));
            if recursive && meta.is_dir() {
                self.walk_list(&child, recursive, listing, false)?;
            }
        }
        Ok(())
    }

    /// The children of a directory with their (not followed) metadata, sorted by name.
    fn children(&self, dir: &RelPath) -> Result<Vec<(RelPath, Metadata)>, String> {
        let read = fs::read_dir(self.root.join(dir)).map_err(|e| describe(&e, "list", dir))?;
        let mut children = Vec::new();
        for item in read {
            let item = item.map_err(|e| describe(&e, "list", dir))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            let Some(child) = RelPath::from_walk(dir, Path::new(name.as_ref())) else {
                continue;
            };
            // An entry that vanished or cannot be inspected is left out.
            if let Ok(meta) = fs::symlink_metadata(self.root.join(&child)) {
                children.push((child, meta));
            }
        }
        children.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(children)
    }

    /// `file-info`: one entry.
    pub fn info(&self, path: &str) -> Result<EntryInfo, String> {
        let rel = self.resolve(path)?;
        let meta = self.metadata(&rel)?;
        Ok(entry_info(&rel, &meta))
    }

    /// `read-file`: a piece of a text file.
    pub fn read(&self, path: &str, offset: u64, max_bytes: Option<u32>) -> Result<Chunk, String> {
        let rel = self.resolve(path)?;
        if rel.is_root() {
            return Err(
                "path names the workspace root, which is a directory; pass the path of a file \
                 (call `list` to see the files)"
                    .to_string(),
            );
        }
        let limit = match max_bytes {
            None => DEFAULT_READ_BYTES,
            Some(0) => {
                return Err(format!(
                    "max-bytes must be at least 1; leave it out to read up to {DEFAULT_READ_BYTES} bytes"
                ));
            }
            Some(n) => n.min(MAX_READ_BYTES),
        } as usize;
        let full = self.root.join(&rel);
        let mut file = File::open(&full).map_err(|e| describe(&e, "read", &rel))?;
        let meta = file.metadata().map_err(|e| describe(&e, "read", &rel))?;
        if meta.is_dir() {
            return Err(format!(
                "{:?} is a directory, not a file; call `list` with this path to see its contents",
                rel.display()
            ));
        }
        if !meta.is_file() {
            return Err(format!(
                "{:?} is not a regular file (it may be a device or a pipe) and cannot be read",
                rel.display()
            ));
        }
        let size = meta.len();
        if offset > size {
            return Err(format!(
                "offset {offset} is past the end of {:?}, which is {size} bytes long; \
                 pass an offset from 0 to {size}",
                rel.display()
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| describe(&e, "read", &rel))?;
        let want = limit + text::SLACK;
        let mut data = Vec::with_capacity(want);
        (&mut file)
            .take(want as u64)
            .read_to_end(&mut data)
            .map_err(|e| describe(&e, "read", &rel))?;
        let at_eof = data.len() < want;
        let decoded = text::decode_chunk(&data, limit, at_eof, offset > 0).map_err(|why| {
            let (what, at) = match why {
                NotText::Nul(at) => ("a NUL byte", at),
                NotText::InvalidUtf8(at) => ("invalid UTF-8", at),
            };
            format!(
                "{:?} is not a UTF-8 text file ({what} at byte {}); `read-file` only returns text, \
                 so binary files such as images, archives or executables cannot be read with it \
                 (`file-info` shows their size)",
                rel.display(),
                offset + at as u64
            )
        })?;
        let start = offset + decoded.skipped as u64;
        let end = start + decoded.consumed as u64;
        let done = at_eof && decoded.skipped + decoded.consumed == data.len();
        Ok(Chunk {
            content: decoded.text,
            offset: start,
            next_offset: if done { None } else { Some(end) },
            size: size.max(offset + data.len() as u64),
        })
    }

    /// `write-file`: create, replace or extend a file.
    pub fn write(&self, path: &str, content: &str, mode: WriteMode) -> Result<Written, String> {
        let rel = self.resolve(path)?;
        if rel.is_root() {
            return Err(
                "path names the workspace root, which is a directory; pass the path of a file to \
                 write, e.g. \"notes/todo.md\""
                    .to_string(),
            );
        }
        if let Ok(meta) = fs::symlink_metadata(self.root.join(&rel)) {
            if meta.is_dir() {
                return Err(format!(
                    "{:?} is a directory; pass the path of a file inside it, e.g. \"{}/notes.md\"",
                    rel.display(),
                    rel.as_str()
                ));
            }
            if mode == WriteMode::CreateNew {
                return Err(already_exists(&rel));
            }
        }
        if let Some((parent, _)) = rel.as_str().rsplit_once('/') {
            let parent = RelPath::parse(&self.root, parent)?;
            fs::create_dir_all(self.root.join(&parent)).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => format!(
                    "cannot create the parent directory {:?} of {:?}: a file or symbolic link \
                     is in the way (some part of that path is not a directory); choose another path",
                    parent.display(),
                    rel.display()
                ),
                _ => describe(&e, "create the parent directory of", &rel),
            })?;
        }
        let mut options = OpenOptions::new();
        match mode {
            WriteMode::CreateNew => options.write(true).create_new(true),
            WriteMode::Overwrite => options.write(true).create(true).truncate(true),
            WriteMode::Append => options.append(true).create(true),
        };
        let mut file = options
            .open(self.root.join(&rel))
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists if mode == WriteMode::CreateNew => {
                    already_exists(&rel)
                }
                _ => describe(&e, "write", &rel),
            })?;
        file.write_all(content.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| describe(&e, "write", &rel))?;
        let size = file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| describe(&e, "write", &rel))?;
        Ok(Written {
            path: rel.as_str().to_string(),
            bytes_written: content.len() as u64,
            size,
        })
    }

    /// `delete`: remove a file, link or directory; returns how many objects went.
    pub fn delete(&self, path: &str, recursive: bool) -> Result<u32, String> {
        let rel = self.resolve(path)?;
        if rel.is_root() {
            return Err(
                "the workspace root itself cannot be deleted; delete the entries inside it \
                 instead (call `list` to see them)"
                    .to_string(),
            );
        }
        let meta = self.metadata(&rel)?;
        if !meta.is_dir() {
            fs::remove_file(self.root.join(&rel)).map_err(|e| describe(&e, "delete", &rel))?;
            return Ok(1);
        }
        if !recursive {
            return fs::remove_dir(self.root.join(&rel))
                .map(|()| 1)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::DirectoryNotEmpty => not_empty(&rel),
                    // Some systems report a non-empty directory differently.
                    _ if self.children(&rel).is_ok_and(|c| !c.is_empty()) => not_empty(&rel),
                    _ => describe(&e, "delete", &rel),
                });
        }
        self.remove_tree(&rel)
    }

    fn remove_tree(&self, dir: &RelPath) -> Result<u32, String> {
        let mut removed = 0;
        for (child, meta) in self.children(dir)? {
            if meta.is_dir() {
                removed += self.remove_tree(&child)?;
            } else {
                fs::remove_file(self.root.join(&child))
                    .map_err(|e| describe(&e, "delete", &child))?;
                removed += 1;
            }
        }
        fs::remove_dir(self.root.join(dir)).map_err(|e| describe(&e, "delete", dir))?;
        Ok(removed + 1)
    }

    /// `search`: find text in files, or files by name.
    pub fn search(
        &self,
        pattern: &str,
        path: Option<&str>,
        settings: &SearchSettings,
    ) -> Result<SearchOutcome, String> {
        if pattern.is_empty() {
            return Err(
                "pattern is empty; pass the text to look for, e.g. \"TODO\" (or a glob such as \
                 \"*.md\" with target `names`)"
                    .to_string(),
            );
        }
        if pattern.contains('\n') && settings.target == Target::Contents {
            return Err(
                "pattern contains a line break, but contents are searched line by line; \
                 search for a single line of text"
                    .to_string(),
            );
        }
        if settings.max_results == 0 {
            return Err(format!(
                "max-results must be at least 1; leave it out for the default of {DEFAULT_SEARCH_RESULTS}"
            ));
        }
        let max_results = settings.max_results.min(MAX_SEARCH_RESULTS) as usize;
        let rel = self.resolve(path.unwrap_or(""))?;
        let meta = self.metadata(&rel)?;
        let mut search = Search {
            ws: self,
            matcher: Matcher::new(
                pattern,
                settings.case_sensitive,
                settings.target == Target::Names,
            ),
            file_filter: settings
                .file_glob
                .as_deref()
                .filter(|g| !g.is_empty())
                .map(|g| Matcher::new(g, settings.case_sensitive, true)),
            target: settings.target,
            max_results,
            files_seen: 0,
            outcome: SearchOutcome::default(),
        };
        if meta.is_dir() {
            search.walk(&rel, true)?;
        } else {
            search.visit(&rel, &meta);
        }
        Ok(search.outcome)
    }
}

struct Search<'a> {
    ws: &'a Workspace,
    matcher: Matcher,
    file_filter: Option<Matcher>,
    target: Target,
    max_results: usize,
    files_seen: u32,
    outcome: SearchOutcome,
}

impl Search<'_> {
    fn done(&self) -> bool {
        self.outcome.truncated
    }

    fn hit(&mut self, hit: Hit) {
        if self.outcome.matches.len() >= self.max_results {
            self.outcome.truncated = true;
        } else {
            self.outcome.matches.push(hit);
        }
    }

    fn walk(&mut self, dir: &RelPath, top: bool) -> Result<(), String> {
        let children = match self.ws.children(dir) {
            Ok(children) => children,
            Err(e) if top => return Err(e),
            Err(_) => return Ok(()),
        };
        for (child, meta) in children {
            if self.done() {
                return Ok(());
            }
            self.visit(&child, &meta);
            if meta.is_dir() && !SKIPPED_DIRS.contains(&child.name()) {
                self.walk(&child, false)?;
            }
        }
        Ok(())
    }

    fn visit(&mut self, rel: &RelPath, meta: &Metadata) {
        if meta.is_file() {
            self.files_seen += 1;
            if self.files_seen > MAX_SEARCH_FILES {
                self.outcome.truncated = true;
                return;
            }
        }
        match self.target {
            Target::Names => {
                if self.matcher.matches(rel.name()) {
                    self.hit(Hit {
                        path: rel.as_str().to_string(),
                        line: None,
                        text: None,
                    });
                }
            }
            Target::Contents => {
                if !meta.is_file() {
                    return;
                }
                if let Some(filter) = &self.file_filter
                    && !filter.matches(rel.name())
                {
                    return;
                }
                if meta.len() > MAX_SEARCH_FILE_BYTES {
                    self.outcome.files_skipped += 1;
                    return;
                }
                let data = match fs::read(self.ws.root.join(rel)) {
                    Ok(data) => data,
                    Err(_) => {
                        self.outcome.files_skipped += 1;
                        return;
                    }
                };
                if text::looks_binary(&data) {
                    self.outcome.files_skipped += 1;
                    return;
                }
                let Ok(content) = std::str::from_utf8(&data) else {
                    self.outcome.files_skipped += 1;
                    return;
                };
                self.outcome.files_searched += 1;
                for (index, line) in content.lines().enumerate() {
                    if self.matcher.matches(line) {
                        self.hit(Hit {
                            path: rel.as_str().to_string(),
                            line: Some(u32::try_from(index + 1).unwrap_or(u32::MAX)),
                            text: Some(text::shorten(line, MAX_LINE_CHARS)),
                        });
                        if self.done() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn entry_info(rel: &RelPath, meta: &Metadata) -> EntryInfo {
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Directory
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    EntryInfo {
        path: rel.display().to_string(),
        kind,
        size: meta.len(),
        modified: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
    }
}

fn already_exists(rel: &RelPath) -> String {
    format!(
        "{:?} already exists and mode is create-new; use mode `overwrite` to replace its \
         content or `append` to add to its end, or choose another path",
        rel.display()
    )
}

fn not_empty(rel: &RelPath) -> String {
    format!(
        "directory {:?} is not empty; pass recursive = true to delete it together with \
         everything inside it (call `list` first to see what that would remove)",
        rel.display()
    )
}

/// Turns an I/O error into a message saying what went wrong and what to do.
fn describe(err: &io::Error, action: &str, rel: &RelPath) -> String {
    let path = rel.display();
    match err.kind() {
        io::ErrorKind::NotFound => format!(
            "cannot {action} {path:?}: it does not exist; call `list` on its parent directory \
             (or `search` with target `names`) to find the right path"
        ),
        io::ErrorKind::ReadOnlyFilesystem => format!(
            "cannot {action} {path:?}: the workspace is read-only (mode = \"read-only\" in the \
             plugin manifest's [grants] dirs), so files can be read but not created, changed or \
             deleted"
        ),
        io::ErrorKind::PermissionDenied if matches!(action, "read" | "list" | "access") => format!(
            "cannot {action} {path:?}: permission denied; it may be a symbolic link that points \
             outside the workspace, which the sandbox does not follow"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot {action} {path:?}: permission denied; the workspace may be granted read-only \
             (mode = \"read-only\" in the plugin manifest's [grants] dirs), so files can be read \
             but not created, changed or deleted, or the path goes through a symbolic link that \
             points outside the workspace"
        ),
        io::ErrorKind::IsADirectory => format!(
            "cannot {action} {path:?}: it is a directory, not a file; call `list` with this path \
             to see its contents"
        ),
        io::ErrorKind::NotADirectory => format!(
            "cannot {action} {path:?}: a part of the path is a file, not a directory; \
             check the path with `list`"
        ),
        io::ErrorKind::DirectoryNotEmpty => not_empty(rel),
        io::ErrorKind::AlreadyExists => format!("cannot {action} {path:?}: it already exists"),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!("cannot {action} {path:?}: the disk is full or the quota is exhausted")
        }
        io::ErrorKind::InvalidFilename => format!(
            "cannot {action} {path:?}: the name is not valid on this filesystem; \
             use letters, digits, `-`, `_` and `.`"
        ),
        _ => format!("cannot {action} {path:?}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scratch directory removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "launch-files-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ));
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn ws(&self) -> Workspace {
            Workspace::new(Root::new(self.0.to_str().unwrap()).unwrap())
        }

        fn put(&self, rel: &str, content: &[u8]) {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn paths(listing: &Listing) -> Vec<&str> {
        listing.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn list_flat_and_recursive() {
        let s = Scratch::new();
        s.put("b.txt", b"bee");
        s.put("a/x.md", b"x");
        s.put("a/deep/y.md", b"yy");
        let ws = s.ws();
        let flat = ws.list(None, false).unwrap();
        assert_eq!(paths(&flat), ["a", "b.txt"]);
        assert_eq!(flat.entries[0].kind, Kind::Directory);
        assert_eq!(flat.entries[1].kind, Kind::File);
        assert_eq!(flat.entries[1].size, 3);
        assert!(flat.entries[1].modified.is_some());
        assert!(!flat.truncated);
        let deep = ws.list(Some("."), true).unwrap();
        assert_eq!(
            paths(&deep),
            ["a", "a/deep", "a/deep/y.md", "a/x.md", "b.txt"]
        );
        let sub = ws.list(Some("a"), false).unwrap();
        assert_eq!(paths(&sub), ["a/deep", "a/x.md"]);
        let file = ws.list(Some("b.txt"), true).unwrap();
        assert_eq!(paths(&file), ["b.txt"]);
        let err = ws.list(Some("nope"), false).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = ws.list(Some("../x"), false).unwrap_err();
        assert!(err.contains("leaves the workspace root"), "{err}");
    }

    #[test]
    fn list_is_capped() {
        let s = Scratch::new();
        for i in 0..(MAX_LIST_ENTRIES + 5) {
            s.put(&format!("f{i:05}"), b"");
        }
        let listing = s.ws().list(None, false).unwrap();
        assert_eq!(listing.entries.len(), MAX_LIST_ENTRIES);
        assert!(listing.truncated);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_reported_not_followed() {
        let s = Scratch::new();
        s.put("real/inner.txt", b"x");
        std::os::unix::fs::symlink(s.0.join("real"), s.0.join("link")).unwrap();
        let listing = s.ws().list(None, true).unwrap();
        assert_eq!(paths(&listing), ["link", "real", "real/inner.txt"]);
        assert_eq!(listing.entries[0].kind, Kind::Symlink);
        assert_eq!(s.ws().delete("link", false).unwrap(), 1);
        assert!(s.0.join("real/inner.txt").exists());
    }

    #[test]
    fn read_text_in_pieces() {
        let s = Scratch::new();
        s.put("t.txt", "héllo wörld".as_bytes());
        let ws = s.ws();
        let all = ws.read("t.txt", 0, None).unwrap();
        assert_eq!(all.content, "héllo wörld");
        assert_eq!(all.next_offset, None);
        assert_eq!(all.size, 13);
        let first = ws.read("t.txt", 0, Some(2)).unwrap();
        assert_eq!(first.content, "h");
        assert_eq!(first.next_offset, Some(1));
        let second = ws.read("t.txt", 1, Some(2)).unwrap();
        assert_eq!(second.content, "é");
        assert_eq!(second.next_offset, Some(3));
        // Starting inside "é" skips to the next character.
        let inside = ws.read("t.txt", 2, Some(4)).unwrap();
        assert_eq!(inside.offset, 3);
        assert_eq!(inside.content, "llo ");
        // Reading the whole file piece by piece yields it exactly.
        let mut text = String::new();
        let mut offset = 0;
        loop {
            let chunk = ws.read("t.txt", offset, Some(3)).unwrap();
            text.push_str(&chunk.content);
            match chunk.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(text, "héllo wörld");
        let end = ws.read("t.txt", 13, None).unwrap();
        assert_eq!(end.content, "");
        assert_eq!(end.next_offset, None);
    }

    #[test]
    fn read_errors_are_clear() {
        let s = Scratch::new();
        s.put("bin.dat", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        s.put("dir/f", b"x");
        s.put("t.txt", b"abc");
        let ws = s.ws();
        let err = ws.read("bin.dat", 0, None).unwrap_err();
        assert!(err.contains("not a UTF-8 text file"), "{err}");
        let err = ws.read("dir", 0, None).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        let err = ws.read("t.txt", 10, None).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
        let err = ws.read("t.txt", 0, Some(0)).unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
        let err = ws.read("missing.txt", 0, None).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = ws.read("", 0, None).unwrap_err();
        assert!(err.contains("workspace root"), "{err}");
        let err = ws.read("/etc/passwd", 0, None).unwrap_err();
        assert!(err.contains("outside the workspace root"), "{err}");
    }

    #[test]
    fn large_reads_are_capped() {
        let s = Scratch::new();
        s.put("big.txt", &vec![b'a'; MAX_READ_BYTES as usize + 10]);
        let chunk = s.ws().read("big.txt", 0, Some(u32::MAX)).unwrap();
        assert_eq!(chunk.content.len(), MAX_READ_BYTES as usize);
        assert_eq!(chunk.next_offset, Some(MAX_READ_BYTES as u64));
        let default = s.ws().read("big.txt", 0, None).unwrap();
        assert_eq!(default.content.len(), DEFAULT_READ_BYTES as usize);
    }

    #[test]
    fn write_modes() {
        let s = Scratch::new();
        let ws = s.ws();
        let w = ws
            .write("new/dir/a.txt", "one\n", WriteMode::CreateNew)
            .unwrap();
        assert_eq!(
            w,
            Written {
                path: "new/dir/a.txt".into(),
                bytes_written: 4,
                size: 4
            }
        );
        let err = ws
            .write("new/dir/a.txt", "x", WriteMode::CreateNew)
            .unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        let w = ws
            .write("new/dir/a.txt", "two\n", WriteMode::Append)
            .unwrap();
        assert_eq!(w.size, 8);
        assert_eq!(
            fs::read_to_string(s.0.join("new/dir/a.txt")).unwrap(),
            "one\ntwo\n"
        );
        let w = ws
            .write("./new/dir/a.txt", "3", WriteMode::Overwrite)
            .unwrap();
        assert_eq!(w.size, 1);
        assert_eq!(fs::read_to_string(s.0.join("new/dir/a.txt")).unwrap(), "3");
        let w = ws.write("fresh.txt", "", WriteMode::Append).unwrap();
        assert_eq!(w.size, 0);
        let err = ws.write("new", "x", WriteMode::Overwrite).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        let err = ws
            .write("fresh.txt/below", "x", WriteMode::Overwrite)
            .unwrap_err();
        assert!(err.contains("is in the way"), "{err}");
        let err = ws.write("", "x", WriteMode::Overwrite).unwrap_err();
        assert!(err.contains("workspace root"), "{err}");
        let err = ws
            .write("../escape", "x", WriteMode::Overwrite)
            .unwrap_err();
        assert!(err.contains("leaves the workspace root"), "{err}");
    }

    #[test]
    fn info_describes_one_path() {
        let s = Scratch::new();
        s.put("d/f.txt", b"12345");
        let ws = s.ws();
        let info = ws.info("d/f.txt").unwrap();
        assert_eq!(info.kind, Kind::File);
        assert_eq!(info.size, 5);
        assert_eq!(info.path, "d/f.txt");
        assert_eq!(ws.info("d").unwrap().kind, Kind::Directory);
        assert_eq!(ws.info("").unwrap().path, ".");
        assert!(ws.info("nope").unwrap_err().contains("does not exist"));
    }

    #[test]
    fn delete_files_and_trees() {
        let s = Scratch::new();
        s.put("f.txt", b"x");
        s.put("tree/a/b.txt", b"x");
        s.put("tree/c.txt", b"x");
        fs::create_dir(s.0.join("empty")).unwrap();
        let ws = s.ws();
        assert_eq!(ws.delete("f.txt", false).unwrap(), 1);
        assert!(!s.0.join("f.txt").exists());
        assert_eq!(ws.delete("empty", false).unwrap(), 1);
        let err = ws.delete("tree", false).unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(ws.delete("tree", true).unwrap(), 4);
        assert!(!s.0.join("tree").exists());
        let err = ws.delete(".", true).unwrap_err();
        assert!(err.contains("cannot be deleted"), "{err}");
        let err = ws.delete("gone", false).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        assert!(s.0.exists());
    }

    #[test]
    fn search_contents() {
        let s = Scratch::new();
        s.put("src/main.rs", b"fn main() {\n    // TODO: greet\n}\n");
        s.put("notes.md", b"todo list\r\nnothing\n");
        s.put("image.png", b"\x89PNG\0\0TODO");
        s.put("latin1.txt", b"caf\xe9 todo");
        s.put(".git/config", b"todo");
        let ws = s.ws();
        let out = ws.search("todo", None, &SearchSettings::default()).unwrap();
        let found: Vec<_> = out
            .matches
            .iter()
            .map(|h| (h.path.as_str(), h.line.unwrap(), h.text.clone().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("notes.md", 1, "todo list".to_string()),
                ("src/main.rs", 2, "    // TODO: greet".to_string()),
            ]
        );
        assert_eq!(out.files_searched, 2);
        assert_eq!(out.files_skipped, 2);
        assert!(!out.truncated);

        let sensitive = SearchSettings {
            case_sensitive: true,
            ..SearchSettings::default()
        };
        let out = ws.search("TODO", None, &sensitive).unwrap();
        assert_eq!(out.matches.len(), 1);

        let only_rs = SearchSettings {
            file_glob: Some("*.rs".into()),
            ..SearchSettings::default()
        };
        let out = ws.search("todo", None, &only_rs).unwrap();
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0].path, "src/main.rs");

        let out = ws
            .search("main", Some("src/main.rs"), &SearchSettings::default())
            .unwrap();
        assert_eq!(out.matches.len(), 1);

        let one = SearchSettings {
            max_results: 1,
            ..SearchSettings::default()
        };
        let out = ws.search("o", None, &one).unwrap();
        assert_eq!(out.matches.len(), 1);
        assert!(out.truncated);
    }

    #[test]
    fn search_names() {
        let s = Scratch::new();
        s.put("docs/README.md", b"");
        s.put("docs/guide.md", b"");
        s.put("src/readme_test.rs", b"");
        let ws = s.ws();
        let names = SearchSettings {
            target: Target::Names,
            ..SearchSettings::default()
        };
        let out = ws.search("*.md", None, &names).unwrap();
        let found: Vec<_> = out.matches.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(found, ["docs/README.md", "docs/guide.md"]);
        assert!(out.matches[0].line.is_none());
        let out = ws.search("readme", None, &names).unwrap();
        assert_eq!(out.matches.len(), 2);
        let out = ws.search("doc", None, &names).unwrap();
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0].path, "docs");
    }

    #[test]
    fn search_errors() {
        let s = Scratch::new();
        let ws = s.ws();
        assert!(ws.search("", None, &SearchSettings::default()).is_err());
        assert!(ws.search("a\nb", None, &SearchSettings::default()).is_err());
        let zero = SearchSettings {
            max_results: 0,
            ..SearchSettings::default()
        };
        assert!(ws.search("a", None, &zero).is_err());
        let err = ws
            .search("a", Some("missing"), &SearchSettings::default())
            .unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
