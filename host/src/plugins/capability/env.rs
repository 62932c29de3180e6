//! The environment capability: host environment variables a plugin may read,
//! by name (`[grants] env`). Values are read once, at load; a name that is
//! not set is simply absent in the guest.

use wasmtime_wasi::WasiCtxBuilder;

use super::Access;

/// Checks that every granted name can be an environment variable.
pub fn validate(names: &[String]) -> Result<(), String> {
    match names
        .iter()
        .find(|n| n.is_empty() || n.contains('=') || n.contains('\0'))
    {
        Some(name) => Err(format!(
            "grants.env contains {name:?}, which is not an environment variable name"
        )),
        None => Ok(()),
    }
}

/// The granted variables that are set in the server's environment, with their values.
pub fn resolve(names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
        .collect()
}

/// Gives a call's sandbox exactly the resolved variables.
pub fn apply(wasi: &mut WasiCtxBuilder, vars: &[(String, String)]) {
    wasi.envs(vars);
}

/// `wasi:cli/environment` for `launch plugin check`.
pub fn describe(names: &[String]) -> Access {
    Access::granted("environment variables", names.len(), "[grants] env")
}
