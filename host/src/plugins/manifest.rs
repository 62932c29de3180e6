//! Plugin manifests: the optional `NAME.toml` beside `NAME.wasm` that grants
//! capabilities and overrides limits. Everything is denied unless granted here.
//!
//! The format is documented for operators in `docs/manifest.md`; this module is
//! the single place that parses and validates it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to every call of a plugin. Each has a default and can be
/// overridden in the manifest's `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock deadline per call.
    #[serde(rename = "timeout_ms", serialize_with = "ser_millis")]
    pub timeout: Duration,
    /// Maximum linear memory of one instance, in bytes.
    pub memory_bytes: u64,
    /// Maximum size of a call's JSON result, in bytes.
    pub max_output_bytes: u64,
    /// Maximum calls of this plugin running at once; further calls wait.
    pub max_concurrency: u32,
    /// Optional fuel (roughly, wasm instructions) per call.
    pub fuel: Option<u64>,
    /// Maximum bytes of guest stdout and of stderr captured per call; the rest is dropped.
    pub max_log_bytes: u64,
    /// Largest response body one outbound HTTP request may receive.
    pub max_http_response_bytes: u64,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 * MIB,
            max_output_bytes: MIB,
            max_concurrency: 32,
            fuel: None,
            max_log_bytes: 64 * 1024,
            max_http_response_bytes: 10 * MIB,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// Upper bounds an operator cannot exceed through a manifest: they keep one
/// plugin from reserving the whole machine by typo.
pub mod ceilings {
    /// Longest per-call deadline a manifest may set (10 minutes).
    pub const TIMEOUT_MS: u64 = 600_000;
    /// Largest linear memory a manifest may set (4 GiB, the wasm32 maximum).
    pub const MEMORY_MIB: u64 = 4096;
    /// Largest result a manifest may allow (256 MiB).
    pub const MAX_OUTPUT_BYTES: u64 = 256 * 1024 * 1024;
    /// Most concurrent calls of one plugin a manifest may allow.
    pub const MAX_CONCURRENCY: u32 = 256;
}

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
pub const DEFAULT_DIR_MAX_MIB: u64 = 100;
/// Default entry quota of a read-write grant.
pub const DEFAULT_DIR_MAX_ENTRIES: u64 = 4096;

/// Everything a manifest grants. An empty `Grants` is the default: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grants {
    /// Host environment variables visible to the guest, by name.
    pub env: Vec<String>,
    /// Values readable through `launch:plugin/config`.
    pub config: BTreeMap<String, String>,
    /// Directories mapped into the guest.
    pub dirs: Vec<DirGrant>,
    /// Secrets for host-side HTTP header injection (`${NAME}` in a grant's
    /// `headers`), each mapped to the host environment variable holding it.
    /// The guest never sees them (a value the guest must read is an `env`
    /// grant instead). Only the variable name is kept here; values are read at
    /// load and never logged.
    pub secrets: BTreeMap<String, String>,
    /// Outbound HTTP allowlist.
    pub http: Vec<HttpGrant>,
}

/// One outbound-HTTP allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpGrant {
    /// `scheme://host[:port]` pattern, `*.` allowed for subdomains.
    pub url: String,
    /// Whether the guest may send `Authorization`, `Cookie` and
    /// `Proxy-Authorization` headers to matching hosts.
    pub credentials: bool,
    /// Headers the host adds to every request to matching hosts. Values may
    /// reference secrets as `${NAME}`; the guest never sees the result.
    pub headers: BTreeMap<String, String>,
    /// A PEM file of the only root certificates HTTPS servers of this grant
    /// may chain to (a private CA); the public web roots when absent.
    pub ca: Option<PathBuf>,
}

/// A validated manifest, ready for the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Per-call limits.
    pub limits: Limits,
    /// Granted capabilities.
    pub grants: Grants,
}

/// Why a manifest was rejected. Each message names the key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax errors, unknown keys and wrong types.
    #[error("invalid manifest {path}: {message}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("invalid manifest {path}: {message}")]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}

// The raw, as-written form. Unknown keys are errors at every level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    grants: RawGrants,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    max_output_bytes: Option<u64>,
    max_concurrency: Option<u32>,
    fuel: Option<u64>,
    max_log_bytes: Option<u64>,
    max_http_response_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    http: Vec<RawHttpGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHttpGrant {
    Pattern(String),
    Detailed(RawHttpDetail),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpDetail {
    url: String,
    #[serde(default)]
    credentials: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: PathBuf,
    guest: String,
    mode: DirMode,
    max_mib: Option<u64>,
    max_entries: Option<u64>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`. Relative directory grants are
    /// resolved against the manifest's own folder.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ParseFailure::Syntax(message) => ManifestError::Parse {
                path: path.to_owned(),
                message,
            },
            ParseFailure::Invalid(message) => ManifestError::Invalid {
                path: path.to_owned(),
                message,
            },
        })
    }

    /// Parses manifest text; `base` resolves relative directory grants.
    fn parse(text: &str, base: &Path) -> Result<Self, ParseFailure> {
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| ParseFailure::Syntax(e.to_string().trim().to_owned()))?;
        Ok(Self {
            limits: validate_limits(raw.limits)?,
            grants: validate_grants(raw.grants, base)?,
        })
    }
}

enum ParseFailure {
    Syntax(String),
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ParseFailure {
    ParseFailure::Invalid(message.into())
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    min: T,
    max: T,
) -> Result<Option<T>, ParseFailure> {
    match value {
        Some(v) if v < min || v > max => Err(invalid(format!(
            "{key} = {v} is out of range; use a value from {min} to {max}"
        ))),
        other => Ok(other),
    }
}

fn validate_limits(raw: RawLimits) -> Result<Limits, ParseFailure> {
    let defaults = Limits::default();
    let timeout_ms = in_range("limits.timeout_ms", raw.timeout_ms, 1, ceilings::TIMEOUT_MS)?;
    let memory_mib = in_range("limits.memory_mib", raw.memory_mib, 1, ceilings::MEMORY_MIB)?;
    let max_output = in_range(
        "limits.max_output_bytes",
        raw.max_output_bytes,
        16,
        ceilings::MAX_OUTPUT_BYTES,
    )?;
    let concurrency = in_range(
        "limits.max_concurrency",
        raw.max_concurrency,
        1,
        ceilings::MAX_CONCURRENCY,
    )?;
    let fuel = in_range("limits.fuel", raw.fuel, 1, u64::MAX)?;
    let log_bytes = in_range("limits.max_log_bytes", raw.max_log_bytes, 0, 16 * MIB)?;
    let http_bytes = in_range(
        "limits.max_http_response_bytes",
        raw.max_http_response_bytes,
        1,
        1024 * MIB,
    )?;
    Ok(Limits {
        timeout: timeout_ms.map_or(defaults.timeout, Duration::from_millis),
        memory_bytes: memory_mib.map_or(defaults.memory_bytes, |m| m * MIB),
        max_output_bytes: max_output.unwrap_or(defaults.max_output_bytes),
        max_concurrency: concurrency.unwrap_or(defaults.max_concurrency),
        fuel,
        max_log_bytes: log_bytes.unwrap_or(defaults.max_log_bytes),
        max_http_response_bytes: http_bytes.unwrap_or(defaults.max_http_response_bytes),
    })
}

fn validate_grants(raw: RawGrants, base: &Path) -> Result<Grants, ParseFailure> {
    for name in &raw.env {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(invalid(format!(
                "grants.env contains {name:?}, which is not an environment variable name"
            )));
        }
    }
    for key in raw.config.keys() {
        if key.is_empty() {
            return Err(invalid("grants.config has an empty key"));
        }
    }
    let mut dirs = Vec::with_capacity(raw.dirs.len());
    for dir in raw.dirs {
        let host_path = if dir.host.is_absolute() {
            dir.host.clone()
        } else {
            base.join(&dir.host)
        };
        let host = std::fs::canonicalize(&host_path).map_err(|e| {
            invalid(format!(
                "grants.dirs: host directory {} ({}) cannot be used: {e}; create it or fix the path (relative paths are relative to the manifest's folder)",
                dir.host.display(),
                host_path.display()
            ))
        })?;
        if !host.is_dir() {
            return Err(invalid(format!(
                "grants.dirs: {} is not a directory",
                host.display()
            )));
        }
        if !dir.guest.starts_with('/') || dir.guest.split('/').any(|c| c == "..") {
            return Err(invalid(format!(
                "grants.dirs: guest path {:?} must be absolute (start with '/') and contain no '..'",
                dir.guest
            )));
        }
        if let Some(other) = dirs
            .iter()
            .find(|d: &&DirGrant| d.host.starts_with(&host) || host.starts_with(&d.host))
        {
            return Err(invalid(format!(
                "grants.dirs: {} and {} overlap; grant directories that do not contain each other",
                other.host.display(),
                host.display()
            )));
        }
        if dirs.iter().any(|d: &DirGrant| d.guest == dir.guest) {
            return Err(invalid(format!(
                "grants.dirs: guest path {:?} is granted twice",
                dir.guest
            )));
        }
        let key = format!("grants.dirs ({})", dir.guest);
        let max_mib = in_range(&format!("{key}.max_mib"), dir.max_mib, 1, 1 << 20)?;
        let max_entries = in_range(&format!("{key}.max_entries"), dir.max_entries, 1, 10_000_000)?;
        dirs.push(DirGrant {
            host,
            guest: dir.guest,
            mode: dir.mode,
            max_bytes: max_mib.unwrap_or(DEFAULT_DIR_MAX_MIB) * MIB,
            max_entries: max_entries.unwrap_or(DEFAULT_DIR_MAX_ENTRIES),
        });
    }
    for (name, var) in &raw.secrets {
        if name.is_empty() || var.is_empty() || var.contains('=') {
            return Err(invalid(format!(
                "grants.secrets: {name:?} = {var:?} must map a non-empty name to a host environment variable name"
            )));
        }
        if raw.config.contains_key(name) {
            return Err(invalid(format!(
                "grants.secrets: {name:?} is also a key of grants.config; use distinct names"
            )));
        }
    }
    let mut http = Vec::with_capacity(raw.http.len());
    for grant in raw.http {
        let grant = match grant {
            RawHttpGrant::Pattern(url) => HttpGrant {
                url,
                credentials: false,
                headers: BTreeMap::new(),
                ca: None,
            },
            RawHttpGrant::Detailed(d) => HttpGrant {
                url: d.url,
                credentials: d.credentials,
                headers: d.headers,
                ca: d.ca.map(|ca| base.join(ca)),
            },
        };
        if let Some(ca) = &grant.ca
            && !ca.is_file()
        {
            return Err(invalid(format!(
                "grants.http: the CA file {} of {} does not exist (relative paths are relative to the manifest's folder)",
                ca.display(),
                grant.url
            )));
        }
        crate::plugins::http_policy::HostPattern::parse(&grant.url)
            .map_err(|e| invalid(format!("grants.http: {e}")))?;
        for (name, value) in &grant.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(format!(
                    "grants.http: {name:?} is not a valid header name"
                )));
            }
            for reference in secret_references(value) {
                if !raw.secrets.contains_key(reference) {
                    return Err(invalid(format!(
                        "grants.http: header {name:?} uses ${{{reference}}}, which is not in grants.secrets"
                    )));
                }
            }
        }
        http.push(grant);
    }
    Ok(Grants {
        env: raw.env,
        config: raw.config,
        dirs,
        secrets: raw.secrets,
        http,
    })
}

/// The `NAME`s of `${NAME}` references in a header template.
pub fn secret_references(template: &str) -> impl Iterator<Item = &str> {
    template
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new(".")).map_err(|e| match e {
            ParseFailure::Syntax(m) | ParseFailure::Invalid(m) => m,
        })
    }

    #[test]
    fn empty_manifest_grants_nothing_and_keeps_defaults() {
        let m = parse("").unwrap();
        assert_eq!(m, Manifest::default());
        assert!(m.grants.env.is_empty() && m.grants.dirs.is_empty() && m.grants.http.is_empty());
        assert_eq!(m.limits.timeout, Duration::from_secs(10));
        assert_eq!(m.limits.memory_bytes, 64 * MIB);
        assert_eq!(m.limits.max_output_bytes, MIB);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = parse("[limits]\ntimeout = 5\n").unwrap_err();
        assert!(err.contains("unknown field `timeout`"), "{err}");
        let err = parse("[grant]\nenv = []\n").unwrap_err();
        assert!(err.contains("unknown field `grant`"), "{err}");
    }

    #[test]
    fn limits_are_range_checked() {
        let err = parse("[limits]\nmemory_mib = 0\n").unwrap_err();
        assert!(
            err.contains("limits.memory_mib = 0 is out of range"),
            "{err}"
        );
        let m = parse("[limits]\ntimeout_ms = 250\nmemory_mib = 8\nfuel = 1000\n").unwrap();
        assert_eq!(m.limits.timeout, Duration::from_millis(250));
        assert_eq!(m.limits.memory_bytes, 8 * MIB);
        assert_eq!(m.limits.fuel, Some(1000));
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let err = parse(
            "[grants]\ndirs = [{ host = \"/definitely/not/here\", guest = \"/w\", mode = \"read-only\" }]\n",
        )
        .unwrap_err();
        assert!(err.contains("/definitely/not/here"), "{err}");
        assert!(err.contains("create it or fix the path"), "{err}");
    }

    #[test]
    fn http_grants_take_strings_or_tables_and_check_secret_references() {
        let m = parse(
            "[grants]\nsecrets = { token = \"GH_TOKEN\" }\nhttp = [\"https://a.example\", { url = \"https://api.example\", credentials = true, headers = { authorization = \"Bearer ${token}\" } }]\n",
        )
        .unwrap();
        assert_eq!(m.grants.http.len(), 2);
        assert!(!m.grants.http[0].credentials && m.grants.http[1].credentials);
        let err = parse("[grants]\nhttp = [{ url = \"https://x.example\", headers = { authorization = \"${nope}\" } }]\n")
            .unwrap_err();
        assert!(err.contains("${nope}"), "{err}");
        let err = parse("[grants]\nhttp = [\"example.com\"]\n").unwrap_err();
        assert!(err.contains("scheme://host[:port]"), "{err}");
    }

    #[test]
    fn bad_dir_mode_and_guest_path_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display();
        let err = parse(&format!(
            "[grants]\ndirs = [{{ host = \"{host}\", guest = \"/w\", mode = \"rw\" }}]\n"
        ))
        .unwrap_err();
        assert!(err.contains("unknown variant `rw`"), "{err}");
        let err = parse(&format!(
            "[grants]\ndirs = [{{ host = \"{host}\", guest = \"w/../x\", mode = \"read-only\" }}]\n"
        ))
        .unwrap_err();
        assert!(err.contains("must be absolute"), "{err}");
    }
}
