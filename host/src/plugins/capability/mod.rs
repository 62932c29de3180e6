//! The capabilities a manifest can grant, one module each, in the spirit of
//! wasmtime's `wasi-config`: a capability is one small file that owns its
//! manifest syntax and validation, its load-time checks and resolution, how
//! it is applied to a call's sandbox, and how `launch plugin check` describes
//! it. Everything is denied unless granted; the defaults are listed in
//! `docs/manifest.md`.
//!
//! | module | manifest key | sandbox |
//! |---|---|---|
//! | [`env`] | `[grants] env` | variables in `wasi:cli/environment` |
//! | [`config`] | `[grants] config` | `launch:plugin/config` |
//! | [`secrets`] | `[grants] secrets` | host-side HTTP header injection only |
//! | [`dirs`] | `[grants] dirs` | pinned preopens (`wasi:filesystem`) |
//! | [`quota`] | `max_mib`, `max_entries` of a read-write dir | the `wasi:filesystem` host |
//! | [`http`] | `[grants] http` | the outbound `wasi:http` gate |

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod config;
pub mod dirs;
pub mod env;
pub mod http;
pub mod quota;
pub mod secrets;

/// Everything a manifest grants. An empty `Grants` is the default: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grants {
    /// Host environment variables visible to the guest, by name.
    pub env: Vec<String>,
    /// Values readable through `launch:plugin/config`.
    pub config: BTreeMap<String, String>,
    /// Directories mapped into the guest.
    pub dirs: Vec<dirs::DirGrant>,
    /// Secrets for host-side HTTP header injection (`${NAME}` in a grant's
    /// `headers`), each mapped to the host environment variable holding it.
    /// The guest never sees them (a value the guest must read is an `env`
    /// grant instead). Only the variable name is kept here; values are read at
    /// load and never logged.
    pub secrets: BTreeMap<String, String>,
    /// Outbound HTTP allowlist.
    pub http: Vec<http::HttpGrant>,
}

/// `[grants]` as written. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrants {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    dirs: Vec<dirs::RawDir>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    http: Vec<http::RawHttpGrant>,
}

/// Validates `[grants]`; `base` (the manifest's folder) resolves relative paths.
/// The error names the key and what to do.
pub fn validate(raw: RawGrants, base: &Path) -> Result<Grants, String> {
    env::validate(&raw.env)?;
    config::validate(&raw.config)?;
    secrets::validate(&raw.secrets, &raw.config)?;
    Ok(Grants {
        dirs: dirs::validate(raw.dirs, base)?,
        http: http::validate(raw.http, &raw.secrets, base)?,
        env: raw.env,
        config: raw.config,
        secrets: raw.secrets,
    })
}

/// One import of a component and what it gets in the sandbox.
#[derive(Debug, Serialize)]
pub struct Import {
    /// The interface, e.g. `wasi:filesystem/types@0.2.6`.
    pub name: String,
    /// What the sandbox allows through it, given the manifest.
    pub capability: String,
    /// The manifest key that would open it, when it is closed for want of a grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_grant: Option<&'static str>,
}

/// What a capability says of an interface it owns: its description, and the
/// manifest key that would open it when nothing is granted.
pub struct Access {
    /// What the sandbox allows.
    pub capability: String,
    /// The key to grant, when closed.
    pub missing_grant: Option<&'static str>,
}

impl Access {
    /// `count` things granted by `key`, or closed for want of them.
    pub fn granted(what: &str, count: usize, key: &'static str) -> Self {
        if count == 0 {
            Self {
                capability: format!("closed: no {what}, grant them with `{key}` in the manifest"),
                missing_grant: Some(key),
            }
        } else {
            Self {
                capability: format!("{what}: {count} granted by `{key}`"),
                missing_grant: None,
            }
        }
    }

    fn open(text: &str) -> Self {
        Self {
            capability: text.to_owned(),
            missing_grant: None,
        }
    }
}

/// What the sandbox allows through an imported interface, given `grants`:
/// each capability describes its own interfaces; the rest are always open
/// (or always closed, for raw sockets).
pub fn describe_import(name: String, grants: &Grants) -> Import {
    let interface = name.split('@').next().unwrap_or(&name);
    let package = interface.split('/').next().unwrap_or(interface);
    let access = match (package, interface) {
        ("wasi:filesystem", _) => dirs::describe(&grants.dirs),
        (_, "wasi:cli/environment") => env::describe(&grants.env),
        ("wasi:http", _) => http::describe(&grants.http),
        ("wasi:sockets", _) => Access::open(
            "closed: raw sockets are always denied; use wasi:http with `[grants] http`",
        ),
        (_, "launch:plugin/config") => config::describe(&grants.config),
        (_, "launch:plugin/log") => {
            Access::open("open: records go to the server's log under the plugin's name")
        }
        (_, "wasi:cli/stdout" | "wasi:cli/stderr") => {
            Access::open("open: captured per call, size-capped and logged")
        }
        (_, "wasi:cli/stdin") => Access::open("open: always empty"),
        ("wasi:clocks" | "wasi:random" | "wasi:io", _) => Access::open("open"),
        ("wasi:cli", _) => Access::open("open (exit, terminal: inert)"),
        _ => Access::open("provided by the host"),
    };
    Import {
        name,
        capability: access.capability,
        missing_grant: access.missing_grant,
    }
}
