//! `launch plugin new`: a plugin project in Rust, Python or JavaScript that
//! builds and loads as it is, from templates compiled into the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::plugins::sdk;

/// The componentize-py release the Python template and `make toolchains` use.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen, built with cargo for wasm32-wasip2.
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    Js,
}

/// Words a WIT world may not be named (WIT keywords and built-in types).
const WIT_KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "error-context",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
];

/// Checks that `name` can name the file, the WIT world and package, the crate
/// or npm package, and the tools.
pub fn validate_name(name: &str) -> Result<()> {
    let word_ok = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if name.is_empty() || name.len() > 40 || !name.split('-').all(word_ok) {
        bail!(
            "invalid plugin name {name:?}: use lowercase words of letters and digits joined by '-', each starting with a letter, at most 40 characters (e.g. `weather` or `unit-convert`); the name becomes NAME.wasm, the WIT world and the tool prefix"
        );
    }
    if WIT_KEYWORDS.contains(&name) {
        bail!("invalid plugin name {name:?}: it is a WIT keyword; pick another name");
    }
    Ok(())
}

/// The files of a `lang` project named `name`, as (relative path, contents).
pub fn files(name: &str, lang: Lang) -> Vec<(PathBuf, String)> {
    let (language, toolchain, source) = match lang {
        Lang::Rust => (
            "Rust",
            "Rust with the wasm32-wasip2 target (`rustup target add wasm32-wasip2`)".to_owned(),
            "src/lib.rs".to_owned(),
        ),
        Lang::Python => (
            "Python",
            format!(
                "Python 3 and componentize-py (`pip install componentize-py=={COMPONENTIZE_PY}`)"
            ),
            "app.py".to_owned(),
        ),
        Lang::Js => (
            "JavaScript",
            "Node.js 18 or later with npm (`make` runs `npm ci`, which installs componentize-js)"
                .to_owned(),
            format!("{name}.js"),
        ),
    };
    let snake = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{snake}}", &snake)
            .replace("{{sdk}}", sdk::VERSION)
            .replace("{{language}}", language)
            .replace("{{toolchain}}", &toolchain)
            .replace("{{source}}", &source)
    };
    let mut files = vec![
        (
            "wit/world.wit".into(),
            fill(include_str!("../templates/common/world.wit")),
        ),
        (
            "wit/deps/launch-plugin/plugin.wit".into(),
            sdk::WIT.to_owned(),
        ),
        (
            format!("{name}.toml"),
            fill(include_str!("../templates/common/manifest.toml")),
        ),
        (
            ".gitignore".into(),
            fill(include_str!("../templates/common/gitignore")),
        ),
        (
            "README.md".into(),
            fill(include_str!("../templates/common/README.md")),
        ),
    ];
    let npm_name = |text: &str| text.replace("launch-plugin-template", name);
    match lang {
        Lang::Rust => files.extend([
            (
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")),
            ),
            (
                ".cargo/config.toml".into(),
                include_str!("../templates/rust/.cargo/config.toml").into(),
            ),
            (
                "src/lib.rs".into(),
                fill(include_str!("../templates/rust/src/lib.rs")),
            ),
            (
                "Makefile".into(),
                fill(include_str!("../templates/rust/Makefile")),
            ),
        ]),
        Lang::Python => files.extend([
            (
                "app.py".into(),
                fill(include_str!("../templates/python/app.py")),
            ),
            (
                "Makefile".into(),
                fill(include_str!("../templates/python/Makefile")),
            ),
        ]),
        Lang::Js => files.extend([
            (
                format!("{name}.js"),
                fill(include_str!("../templates/js/plugin.js")),
            ),
            (
                "package.json".into(),
                npm_name(include_str!("../templates/js/package.json")),
            ),
            (
                "package-lock.json".into(),
                npm_name(include_str!("../templates/js/package-lock.json")),
            ),
            (
                "Makefile".into(),
                fill(include_str!("../templates/js/Makefile")),
            ),
        ]),
    }
    files
        .into_iter()
        .map(|(p, c)| (PathBuf::from(p), c))
        .collect()
}

/// Writes a new `lang` project named `name` into `dir` (which must not exist
/// or be empty) and returns the paths written.
pub fn create(name: &str, lang: Lang, dir: &Path) -> Result<Vec<PathBuf>> {
    validate_name(name)?;
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} already exists and is not empty; pick another name or --dir",
            dir.display()
        );
    }
    let mut written = Vec::new();
    for (relative, contents) in files(name, lang) {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_fit_wit_files_and_tools() {
        for good in ["weather", "unit-convert", "a1", "x2-y"] {
            validate_name(good).unwrap();
        }
        for bad in [
            "",
            "Weather",
            "unit_convert",
            "-a",
            "a-",
            "a--b",
            "1a",
            "a-1b",
            "world",
            "ä",
        ] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains("invalid plugin name"), "{bad}: {e}");
        }
        assert!(validate_name(&"a".repeat(41)).is_err());
    }

    #[test]
    fn templates_are_filled_for_every_language() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for (path, text) in files("unit-convert", lang) {
                assert!(
                    !text.contains("{{"),
                    "{}: unfilled placeholder",
                    path.display()
                );
                assert!(
                    !text.contains("launch-plugin-template"),
                    "{}: template package name left",
                    path.display()
                );
            }
        }
        let rust = files("unit-convert", Lang::Rust);
        let makefile = &rust
            .iter()
            .find(|(p, _)| p.ends_with("Makefile"))
            .unwrap()
            .1;
        assert!(makefile.contains("release/unit_convert.wasm"), "{makefile}");
    }

    #[test]
    fn the_python_toolchain_pin_matches_make_toolchains() {
        let requirements = include_str!("../../plugins/requirements.txt");
        assert!(requirements.contains(&format!("componentize-py=={COMPONENTIZE_PY}")));
        let (_, readme) = files("x", Lang::Python)
            .into_iter()
            .find(|(p, _)| p.ends_with("README.md"))
            .unwrap();
        assert!(readme.contains(&format!("componentize-py=={COMPONENTIZE_PY}")));
    }

    #[test]
    fn first_party_script_plugins_use_the_scaffold_recipes() {
        // plugins/stats and plugins/json-tools are built by `make plugins`
        // with exactly what `launch plugin new` generates.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        for (name, lang, shared) in [
            ("stats", Lang::Python, &["Makefile"][..]),
            (
                "json-tools",
                Lang::Js,
                &["Makefile", "package.json", "package-lock.json"][..],
            ),
        ] {
            let generated = files(name, lang);
            for file in shared {
                let (_, expected) = generated.iter().find(|(p, _)| p.ends_with(file)).unwrap();
                let actual = std::fs::read_to_string(root.join(name).join(file)).unwrap();
                assert_eq!(
                    &actual, expected,
                    "plugins/{name}/{file} differs from the template"
                );
            }
        }
    }

    #[test]
    fn an_existing_project_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let e = create("greeter", Lang::Rust, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not empty"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
