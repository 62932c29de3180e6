//! The component glue: WIT bindings, the workspace setup shared by every tool,
//! and conversions between the generated types and [`crate::ops`].

// The generated export glue passes flattened records as many arguments.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "wit", world: "files", generate_all });

use launch::plugin::config;
use launch::plugin::log::{self, Level};

use crate::ops::{self, Workspace};
use crate::paths::{DEFAULT_ROOT, Root};

struct Component;

/// The workspace for this call: the configured root, checked against the
/// directories the host actually preopened.
fn workspace() -> Result<Workspace, String> {
    let root = match config::get("root") {
        Some(configured) => Root::new(&configured)?,
        None => Root::new(DEFAULT_ROOT)?,
    };
    let preopens: Vec<String> = wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .map(|(_descriptor, guest_path)| guest_path)
        .collect();
    root.check_granted(&preopens)?;
    Ok(Workspace::new(root))
}

fn entry(info: ops::EntryInfo) -> Entry {
    Entry {
        path: info.path,
        kind: match info.kind {
            ops::Kind::File => EntryKind::File,
            ops::Kind::Directory => EntryKind::Directory,
            ops::Kind::Symlink => EntryKind::Symlink,
            ops::Kind::Other => EntryKind::Other,
        },
        size: info.size,
        modified: info.modified,
    }
}

impl Guest for Component {
    fn list(path: Option<String>, recursive: Option<bool>) -> Result<Listing, String> {
        let listing = workspace()?.list(path.as_deref(), recursive.unwrap_or(false))?;
        Ok(Listing {
            entries: listing.entries.into_iter().map(entry).collect(),
            truncated: listing.truncated,
        })
    }

    fn read_file(
        path: String,
        offset: Option<u64>,
        max_bytes: Option<u32>,
    ) -> Result<TextChunk, String> {
        let chunk = workspace()?.read(&path, offset.unwrap_or(0), max_bytes)?;
        Ok(TextChunk {
            content: chunk.content,
            offset: chunk.offset,
            next_offset: chunk.next_offset,
            size: chunk.size,
        })
    }

    fn write_file(path: String, content: String, mode: WriteMode) -> Result<WriteResult, String> {
        let mode = match mode {
            WriteMode::CreateNew => ops::WriteMode::CreateNew,
            WriteMode::Overwrite => ops::WriteMode::Overwrite,
            WriteMode::Append => ops::WriteMode::Append,
        };
        let written = workspace()?.write(&path, &content, mode)?;
        log::log(
            Level::Info,
            "file written",
            &[
                ("path".to_string(), written.path.clone()),
                ("mode".to_string(), format!("{mode:?}")),
                ("bytes".to_string(), written.bytes_written.to_string()),
            ],
        );
        Ok(WriteResult {
            path: written.path,
            bytes_written: written.bytes_written,
            size: written.size,
        })
    }

    fn search(
        pattern: String,
        path: Option<String>,
        options: Option<SearchOptions>,
    ) -> Result<SearchResult, String> {
        let options = options.unwrap_or(SearchOptions {
            target: None,
            case_sensitive: None,
            file_glob: None,
            max_results: None,
        });
        let settings = ops::SearchSettings {
            target: match options.target {
                Some(SearchTarget::Names) => ops::Target::Names,
                Some(SearchTarget::Contents) | None => ops::Target::Contents,
            },
            case_sensitive: options.case_sensitive.unwrap_or(false),
            file_glob: options.file_glob,
            max_results: options.max_results.unwrap_or(ops::DEFAULT_SEARCH_RESULTS),
        };
        let outcome = workspace()?.search(&pattern, path.as_deref(), &settings)?;
        Ok(SearchResult {
            matches: outcome
                .matches
                .into_iter()
                .map(|hit| SearchMatch {
                    path: hit.path,
                    line: hit.line,
                    text: hit.text,
                })
                .collect(),
            truncated: outcome.truncated,
            files_searched: outcome.files_searched,
            files_skipped: outcome.files_skipped,
        })
    }

    fn file_info(path: String) -> Result<Entry, String> {
        Ok(entry(workspace()?.info(&path)?))
    }

    fn delete(path: String, recursive: Option<bool>) -> Result<u32, String> {
        let removed = workspace()?.delete(&path, recursive.unwrap_or(false))?;
        log::log(
            Level::Info,
            "path deleted",
            &[
                ("path".to_string(), path),
                ("removed".to_string(), removed.to_string()),
            ],
        );
        Ok(removed)
    }
}

export!(Component with_types_in self);
