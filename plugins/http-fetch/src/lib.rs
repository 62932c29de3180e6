//! `http-fetch`: a Launch tool plugin that fetches http(s) URLs through the
//! host's `wasi:http` client, which enforces the manifest's `[grants] http`
//! allowlist on every request, including each redirect this plugin follows.
//!
//! URL handling and the fetch logic (options, headers, redirects, decoding,
//! error messages) are plain Rust, unit-tested natively; the `wasi:http`
//! transport and the WIT bindings are compiled only for `wasm32` targets.

pub mod fetch;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod transport;
