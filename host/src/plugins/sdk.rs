//! The plugin SDK's version contract: which `launch:plugin` versions this host
//! accepts, and the clear error for a plugin built against another one.

use anyhow::{Result, bail};
use semver::Version;

/// The WIT package of the SDK (`wit/plugin.wit`).
pub const PACKAGE: &str = "launch:plugin";

/// The SDK version this host implements: the version in `wit/plugin.wit`.
pub const VERSION: &str = "0.1.0";

/// The SDK's WIT text, as shipped in `wit/plugin.wit` (copied into scaffolds).
pub const WIT: &str = include_str!("../../../wit/plugin.wit");

fn host_version() -> Version {
    Version::parse(VERSION).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// Semver compatibility with the host's SDK: the same major version, or for
/// `0.x` the same minor version (a `0.x` minor release may break).
pub fn is_compatible(version: &Version) -> bool {
    let host = host_version();
    if host.major == 0 {
        version.major == 0 && version.minor == host.minor
    } else {
        version.major == host.major
    }
}

/// What a plugin says about the SDK version it was built against.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// From its imports, e.g. `launch:plugin/log@0.1.0` (the toolchain keeps
    /// only interfaces the code uses, so a plugin may import none).
    pub imported: Option<Version>,
    /// From its packed WIT (`include launch:plugin/host@...`), when packed.
    pub packed: Option<Version>,
}

impl Declared {
    /// The version to report: the imported one when there is one.
    pub fn version(&self) -> Option<&Version> {
        self.imported.as_ref().or(self.packed.as_ref())
    }

    /// Fails with what to do when either version is incompatible.
    pub fn check(&self) -> Result<()> {
        for (version, source) in [
            (&self.imported, "imports"),
            (&self.packed, "packed WIT includes"),
        ] {
            if let Some(v) = version.as_ref().filter(|v| !is_compatible(v)) {
                bail!(
                    "built against an incompatible plugin SDK: its {source} {PACKAGE}@{v}, but this host implements {PACKAGE}@{VERSION} and accepts {}; {}",
                    accepted(),
                    if v > &host_version() {
                        "upgrade Launch, or rebuild the plugin with the SDK in this Launch's wit/ folder (`launch plugin new` copies it)"
                    } else {
                        "rebuild the plugin with the SDK in this Launch's wit/ folder (`launch plugin new` copies it into wit/deps/launch-plugin/)"
                    }
                );
            }
        }
        Ok(())
    }

    /// A plugin importing a newer compatible SDK than the host's may use
    /// functions the host lacks; this names that case when linking fails.
    pub fn newer_than_host(&self) -> Option<&Version> {
        self.imported.as_ref().filter(|v| **v > host_version())
    }
}

/// The accepted range, for messages: `0.1.x`.
pub fn accepted() -> String {
    let host = host_version();
    if host.major == 0 {
        format!("0.{}.x", host.minor)
    } else {
        format!("{}.x", host.major)
    }
}

/// The SDK version in an import name like `launch:plugin/log@0.1.0`;
/// `None` for imports of other packages.
pub fn imported_version(import: &str) -> Option<Result<Version, semver::Error>> {
    let rest = import.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let (_, version) = rest.split_once('@')?;
    Some(Version::parse(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_matches_the_shipped_wit() {
        assert!(
            WIT.contains(&format!("package {PACKAGE}@{VERSION};")),
            "wit/plugin.wit declares another version than sdk::VERSION"
        );
    }

    #[test]
    fn zero_major_versions_are_compatible_within_a_minor() {
        let v = |s| Version::parse(s).unwrap();
        assert!(is_compatible(&v("0.1.0")));
        assert!(is_compatible(&v("0.1.7")));
        assert!(!is_compatible(&v("0.2.0")));
        assert!(!is_compatible(&v("0.0.9")));
        assert!(!is_compatible(&v("1.1.0")));
        assert_eq!(accepted(), "0.1.x");
    }

    #[test]
    fn import_names_give_their_version() {
        assert_eq!(
            imported_version("launch:plugin/log@0.2.1")
                .unwrap()
                .unwrap(),
            Version::new(0, 2, 1)
        );
        assert!(imported_version("wasi:cli/environment@0.2.0").is_none());
        assert!(imported_version("launch:plugins/log@0.1.0").is_none());
        assert!(imported_version("launch:plugin/log@x").unwrap().is_err());
    }

    #[test]
    fn an_incompatible_version_says_what_to_do() {
        let newer = Declared {
            imported: Some(Version::new(0, 2, 0)),
            packed: None,
        };
        let e = newer.check().unwrap_err().to_string();
        assert!(e.contains("launch:plugin@0.2.0"), "{e}");
        assert!(e.contains("accepts 0.1.x"), "{e}");
        assert!(e.contains("upgrade Launch"), "{e}");
        let packed = Declared {
            imported: None,
            packed: Some(Version::new(0, 0, 3)),
        };
        let e = packed.check().unwrap_err().to_string();
        assert!(e.contains("packed WIT includes launch:plugin@0.0.3"), "{e}");
        assert!(e.contains("rebuild the plugin"), "{e}");
        assert!(Declared::default().check().is_ok());
    }
}
