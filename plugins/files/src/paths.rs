//! Turning the paths the model passes into safe paths under the workspace root.
//!
//! The host's WASI sandbox is the real boundary (the plugin can only reach its
//! preopened directories); this is defense in depth and, above all, a source of
//! clear error messages the model can act on.

use std::path::{Path, PathBuf};

/// The guest path used as workspace root when the manifest grants no `root` config key.
pub const DEFAULT_ROOT: &str = "/workspace";

/// The message returned by every tool when the host preopened no directory at all.
pub const NO_DIRECTORY_GRANTED: &str =
    "no directory is granted to this plugin; add [grants] dirs = [...] to its manifest";

/// The workspace root: an absolute guest path without trailing slash (or `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root(String);

impl Root {
    /// Validates a root taken from configuration.
    pub fn new(raw: &str) -> Result<Root, String> {
        let trimmed = raw.trim();
        if !trimmed.starts_with('/') {
            return Err(format!(
                "the configured workspace root {trimmed:?} is not an absolute guest path; \
                 set [grants] config root to the guest path of a granted directory, e.g. \"/workspace\""
            ));
        }
        let mut parts = Vec::new();
        for part in trimmed.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(format!(
                        "the configured workspace root {trimmed:?} contains `..`; \
                         set [grants] config root to a plain absolute guest path such as \"/workspace\""
                    ));
                }
                other => parts.push(other),
            }
        }
        Ok(Root(format!("/{}", parts.join("/"))))
    }

    /// The root as a guest path string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The guest path of `rel` under this root.
    pub fn join(&self, rel: &RelPath) -> PathBuf {
        if rel.is_root() {
            PathBuf::from(&self.0)
        } else if self.0 == "/" {
            PathBuf::from(format!("/{}", rel.as_str()))
        } else {
            PathBuf::from(format!("{}/{}", self.0, rel.as_str()))
        }
    }

    /// Checks that this root lies inside one of the preopened directories, whose
    /// guest paths are `preopens`.
    pub fn check_granted<S: AsRef<str>>(&self, preopens: &[S]) -> Result<(), String> {
        if preopens.is_empty() {
            return Err(NO_DIRECTORY_GRANTED.to_string());
        }
        let covered = preopens.iter().any(|p| {
            let p = p.as_ref().trim_end_matches('/');
            p.is_empty()
                || self.0 == p
                || (self.0.starts_with(p) && self.0.as_bytes().get(p.len()) == Some(&b'/'))
        });
        if covered {
            return Ok(());
        }
        let granted: Vec<&str> = preopens.iter().map(|p| p.as_ref()).collect();
        Err(format!(
            "the workspace root {:?} is not inside any directory granted to this plugin \
             (granted guest paths: {}); make [grants] config root (default \"{DEFAULT_ROOT}\") \
             name the guest path of one of the manifest's [grants] dirs",
            self.0,
            granted.join(", ")
        ))
    }
}

/// A normalized path relative to the root: no empty, `.` or `..` components, `/`
/// separators, empty for the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(String);

impl RelPath {
    /// The root itself.
    pub fn root() -> RelPath {
        RelPath(String::new())
    }

    /// True for the workspace root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalized relative path (empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How the path is shown to the model: `.` for the root.
    pub fn display(&self) -> &str {
        if self.0.is_empty() { "." } else { &self.0 }
    }

    /// The path of the child `name` of this directory.
    pub fn child(&self, name: &str) -> RelPath {
        if self.0.is_empty() {
            RelPath(name.to_string())
        } else {
            RelPath(format!("{}/{}", self.0, name))
        }
    }

    /// The last component, or `.` for the root.
    pub fn name(&self) -> &str {
        self.0
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(".")
    }

    /// Resolves a path given by the model against `root`.
    ///
    /// Accepts paths relative to the root (`notes/a.md`, `./notes`, `notes/../x`)
    /// and absolute guest paths inside the root (`/workspace/notes/a.md`).
    pub fn parse(root: &Root, input: &str) -> Result<RelPath, String> {
        if input.contains('\0') {
            return Err(format!(
                "path {input:?} contains a NUL character; pass a plain relative path such as \"notes/todo.md\""
            ));
        }
        let relative = if input.starts_with('/') {
            strip_root(root, input).ok_or_else(|| {
                format!(
                    "absolute path {input:?} is outside the workspace root {:?}; \
                     pass a path relative to the root instead, e.g. \"notes/todo.md\" \
                     (call `list` to see what exists)",
                    root.as_str()
                )
            })?
        } else {
            input
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!(
                            "path {input:?} leaves the workspace root through `..`; \
                             only paths inside the root can be used, e.g. \"notes/todo.md\""
                        ));
                    }
                }
                other => parts.push(other),
            }
        }
        Ok(RelPath(parts.join("/")))
    }

    /// Builds the relative path of `path`, a guest path found below `root` while walking.
    pub fn from_walk(parent: &RelPath, name: &Path) -> Option<RelPath> {
        let name = name.to_str()?;
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return None;
        }
        Some(parent.child(name))
    }
}

/// The part of the absolute `input` below `root`, or none when it is elsewhere.
fn strip_root<'a>(root: &Root, input: &'a str) -> Option<&'a str> {
    let root = root.as_str();
    if root == "/" {
        return Some(&input[1..]);
    }
    let rest = input.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> Root {
        Root::new("/workspace").unwrap()
    }

    fn parse(input: &str) -> Result<String, String> {
        RelPath::parse(&ws(), input).map(|p| p.as_str().to_string())
    }

    #[test]
    fn relative_paths_are_normalized() {
        assert_eq!(parse("notes/todo.md").unwrap(), "notes/todo.md");
        assert_eq!(parse("./notes//todo.md").unwrap(), "notes/todo.md");
        assert_eq!(parse("notes/../other/x").unwrap(), "other/x");
        assert_eq!(parse("notes/").unwrap(), "notes");
        assert_eq!(parse("").unwrap(), "");
        assert_eq!(parse(".").unwrap(), "");
        assert_eq!(parse("a/..").unwrap(), "");
    }

    #[test]
    fn dotdot_cannot_leave_the_root() {
        let err = parse("../etc/passwd").unwrap_err();
        assert!(err.contains("leaves the workspace root"), "{err}");
        assert!(parse("a/../../b").is_err());
        assert!(parse("/workspace/../etc").is_err());
    }

    #[test]
    fn absolute_paths_inside_the_root_are_accepted() {
        assert_eq!(parse("/workspace").unwrap(), "");
        assert_eq!(parse("/workspace/").unwrap(), "");
        assert_eq!(parse("/workspace/notes/a.md").unwrap(), "notes/a.md");
    }

    #[test]
    fn absolute_paths_outside_the_root_are_rejected() {
        let err = parse("/etc/passwd").unwrap_err();
        assert!(err.contains("outside the workspace root"), "{err}");
        assert!(parse("/workspace2/x").is_err());
        assert!(parse("/").is_err());
    }

    #[test]
    fn nul_is_rejected() {
        assert!(parse("a\0b").is_err());
    }

    #[test]
    fn root_validation_and_join() {
        assert_eq!(Root::new("/workspace/").unwrap().as_str(), "/workspace");
        assert_eq!(Root::new("/a//b/./c").unwrap().as_str(), "/a/b/c");
        assert_eq!(Root::new("/").unwrap().as_str(), "/");
        assert!(Root::new("workspace").is_err());
        assert!(Root::new("/a/../b").is_err());
        let rel = parse("x/y").unwrap();
        assert_eq!(
            ws().join(&RelPath(rel.clone())),
            PathBuf::from("/workspace/x/y")
        );
        assert_eq!(ws().join(&RelPath::root()), PathBuf::from("/workspace"));
        assert_eq!(
            Root::new("/").unwrap().join(&RelPath(rel)),
            PathBuf::from("/x/y")
        );
        let root = Root::new("/").unwrap();
        assert_eq!(RelPath::parse(&root, "/etc/x").unwrap().as_str(), "etc/x");
    }

    #[test]
    fn grants_are_checked() {
        let none: [&str; 0] = [];
        assert_eq!(ws().check_granted(&none).unwrap_err(), NO_DIRECTORY_GRANTED);
        assert!(ws().check_granted(&["/workspace"]).is_ok());
        assert!(ws().check_granted(&["/workspace/"]).is_ok());
        assert!(ws().check_granted(&["/"]).is_ok());
        assert!(
            Root::new("/workspace/sub")
                .unwrap()
                .check_granted(&["/workspace"])
                .is_ok()
        );
        let err = ws().check_granted(&["/data", "/workspace2"]).unwrap_err();
        assert!(err.contains("not inside any directory granted"), "{err}");
        assert!(err.contains("/data, /workspace2"), "{err}");
    }

    #[test]
    fn names_and_children() {
        let p = parse("a/b/c.txt").unwrap();
        assert_eq!(RelPath(p).name(), "c.txt");
        assert_eq!(RelPath::root().name(), ".");
        assert_eq!(RelPath::root().display(), ".");
        assert_eq!(RelPath::root().child("a").child("b").as_str(), "a/b");
        assert_eq!(
            RelPath::from_walk(&RelPath::root(), Path::new("x"))
                .unwrap()
                .as_str(),
            "x"
        );
        assert!(RelPath::from_walk(&RelPath::root(), Path::new("..")).is_none());
    }
}
