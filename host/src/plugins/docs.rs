//! How a plugin's WIT `///` docs reach the host.
//!
//! Language toolchains (wit-bindgen, componentize-py, jco) drop WIT doc comments
//! when they build a component, so Launch carries them itself: `launch plugin
//! pack --wit DIR plugin.wasm` encodes the plugin's WIT package (the standard
//! binary WIT encoding, which keeps docs) into a custom section named
//! [`SECTION`] of the component. At load the host decodes that section and
//! matches exported functions, parameters, record fields and cases by name.
//! A component without the section still loads, with a loud warning.
//!
//! Parameter docs are lines of the form `@param NAME description` in the
//! function's doc comment; the rest of the comment is the tool description.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::{Function, PackageId, Resolve, WorldItem};

/// The custom section holding the binary-encoded WIT package.
pub const SECTION: &str = "launch:wit";

/// The decoded WIT package of a plugin, used to look up docs.
pub struct PluginDocs {
    /// The resolved package and its dependencies.
    pub resolve: Resolve,
    package: PackageId,
}

impl PluginDocs {
    /// Finds the function exported as `export` (`None` for a function exported
    /// directly by the world, else the interface's full name such as
    /// `launch:text/tools@0.1.0`) and named `func`.
    pub fn function(&self, interface: Option<&str>, func: &str) -> Option<&Function> {
        let package = &self.resolve.packages[self.package];
        for world in package.worlds.values() {
            for (key, item) in &self.resolve.worlds[*world].exports {
                match (interface, item) {
                    (None, WorldItem::Function(f)) if f.name == func => return Some(f),
                    (Some(name), WorldItem::Interface { id, .. })
                        if self.resolve.name_world_key(key) == name
                            || self.resolve.id_of(*id).as_deref() == Some(name) =>
                    {
                        return self.resolve.interfaces[*id].functions.get(func);
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// The `launch:plugin` SDK version the packed WIT depends on, if any.
    pub fn sdk_version(&self) -> Option<semver::Version> {
        self.resolve
            .packages
            .iter()
            .map(|(_, p)| &p.name)
            .find(|n| format!("{}:{}", n.namespace, n.name) == super::sdk::PACKAGE)
            .and_then(|n| n.version.clone())
    }
}

/// A function's doc comment split into the tool description and per-parameter docs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FunctionDocs {
    /// Everything but the `@param` lines, trimmed.
    pub summary: String,
    /// `@param NAME text` entries by NAME; continuation lines indented under one join it.
    pub params: BTreeMap<String, String>,
}

impl FunctionDocs {
    /// Splits a doc comment.
    pub fn parse(doc: &str) -> Self {
        let mut summary = Vec::new();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in doc.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.strip_prefix("@param") {
                let rest = rest.trim_start();
                let (name, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let name = name.trim_end_matches(':').to_owned();
                params.insert(name.clone(), text.trim().to_owned());
                current = Some(name);
            } else if let (Some(name), true) = (
                &current,
                line.starts_with(char::is_whitespace) && !trimmed.is_empty(),
            ) {
                if let Some(text) = params.get_mut(name) {
                    text.push(' ');
                    text.push_str(trimmed);
                }
            } else {
                current = None;
                summary.push(line);
            }
        }
        Self {
            summary: summary.join("\n").trim().to_owned(),
            params,
        }
    }
}

/// Reads the docs section of a component, if it has one.
pub fn extract(component: &[u8]) -> Result<Option<PluginDocs>> {
    let Some(bytes) = top_level_section(component)? else {
        return Ok(None);
    };
    match wit_parser::decoding::decode(bytes)
        .context("the `launch:wit` section is not a valid WIT package")?
    {
        wit_parser::decoding::DecodedWasm::WitPackage(resolve, package) => {
            Ok(Some(PluginDocs { resolve, package }))
        }
        wit_parser::decoding::DecodedWasm::Component(..) => {
            bail!("the `launch:wit` section holds a component, not a WIT package")
        }
    }
}

/// The payload of the top-level (not nested) custom section [`SECTION`].
fn top_level_section(component: &[u8]) -> Result<Option<&[u8]>> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.context("not a valid WebAssembly binary")? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(reader)
                if depth == 1 && reader.name() == SECTION =>
            {
                return Ok(Some(reader.data()));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Embeds the WIT package in `wit_dir` (with its `deps/`) into `component`,
/// replacing an earlier `launch:wit` section. Returns the new binary.
pub fn pack(component: &[u8], wit_dir: &Path) -> Result<Vec<u8>> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("cannot parse the WIT package in {}", wit_dir.display()))?;
    let encoded =
        wit_component::encode(&resolve, package).context("cannot encode the WIT package")?;
    let mut out = strip_section(component)?;
    out.push(0); // custom section id
    wasm_encoder::Encode::encode(
        &wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: encoded.into(),
        },
        &mut out,
    );
    // Make sure what we wrote is what `extract` will read.
    extract(&out)?.context("the packed component has no docs section")?;
    Ok(out)
}

/// Copies `component` without its top-level [`SECTION`], section by section.
fn strip_section(component: &[u8]) -> Result<Vec<u8>> {
    let mut out = component
        .get(..8)
        .context("truncated WebAssembly binary")?
        .to_vec();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.context("not a valid WebAssembly binary")?;
        match &payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(reader)
                if depth == 1 && reader.name() == SECTION => {}
            // Nested modules and components arrive whole as one top-level
            // section (and then again payload by payload at depth > 1).
            _ if depth == 1 => {
                if let Some((id, range)) = payload.as_section() {
                    // `Encode` writes a section's size and contents; the id byte is ours to write.
                    out.push(id);
                    wasm_encoder::Encode::encode(
                        &wasm_encoder::RawSection {
                            id,
                            data: &component[range],
                        },
                        &mut out,
                    );
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_split_from_the_summary() {
        let docs = FunctionDocs::parse(
            "Evaluate an expression.\n\nSupports + and -.\n@param expression  The text,\n  e.g. `1 + 2`.\n@param precision: Digits.\nTrailing note.",
        );
        assert_eq!(
            docs.summary,
            "Evaluate an expression.\n\nSupports + and -.\nTrailing note."
        );
        assert_eq!(docs.params["expression"], "The text, e.g. `1 + 2`.");
        assert_eq!(docs.params["precision"], "Digits.");
    }

    #[test]
    fn no_params_means_all_summary() {
        let docs = FunctionDocs::parse("  Just a summary.  ");
        assert_eq!(docs.summary, "Just a summary.");
        assert!(docs.params.is_empty());
    }
}
