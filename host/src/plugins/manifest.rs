//! Plugin manifests: the optional `NAME.toml` beside `NAME.wasm` that grants
//! capabilities and overrides limits. Everything is denied unless granted here.
//!
//! The format is documented for operators in `docs/manifest.md`; this module is
//! the single place that parses and validates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::capability;

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

/// A validated manifest, ready for the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Per-call limits.
    pub limits: Limits,
    /// Granted capabilities.
    pub grants: capability::Grants,
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
    grants: capability::RawGrants,
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
            grants: capability::validate(raw.grants, base).map_err(ParseFailure::Invalid)?,
        })
    }
}

enum ParseFailure {
    Syntax(String),
    Invalid(String),
}

impl From<String> for ParseFailure {
    fn from(message: String) -> Self {
        ParseFailure::Invalid(message)
    }
}

/// `value`, if set, checked to lie in `min..=max`; the error names `key`.
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    min: T,
    max: T,
) -> Result<Option<T>, String> {
    match value {
        Some(v) if v < min || v > max => Err(format!(
            "{key} = {v} is out of range; use a value from {min} to {max}"
        )),
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
