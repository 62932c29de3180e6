//! The secrets capability: values of host environment variables that the
//! host injects into outbound HTTP headers (`${NAME}` in an `http` grant's
//! `headers`), so the guest never holds them. `[grants] secrets` maps a name
//! to the variable; the values are read at load, never logged and never
//! shown (`tools list --json` shows the variable name). A server that echoes
//! one back has it redacted (see the `http` capability).

use std::collections::BTreeMap;

/// Checks the mapping: non-empty names and variables, no clash with a config key.
pub fn validate(
    secrets: &BTreeMap<String, String>,
    config: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, var) in secrets {
        if name.is_empty() || var.is_empty() || var.contains('=') {
            return Err(format!(
                "grants.secrets: {name:?} = {var:?} must map a non-empty name to a host environment variable name"
            ));
        }
        if config.contains_key(name) {
            return Err(format!(
                "grants.secrets: {name:?} is also a key of grants.config; use distinct names"
            ));
        }
    }
    Ok(())
}

/// The secret values, read from the server's environment; an unset variable
/// is a load error, so a plugin never runs with a header it cannot fill.
pub fn resolve(secrets: &BTreeMap<String, String>) -> anyhow::Result<BTreeMap<String, String>> {
    secrets
        .iter()
        .map(|(key, var)| {
            std::env::var(var).map(|value| (key.clone(), value)).map_err(|_| {
                anyhow::anyhow!("secret `{key}` is read from the environment variable {var}, which is not set; set it or remove the grant")
            })
        })
        .collect()
}

/// The `NAME`s of `${NAME}` references in a header template.
pub fn references(template: &str) -> impl Iterator<Item = &str> {
    template
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}
