//! `files`: a Launch tool plugin that lists, reads, writes, searches and deletes
//! files inside the directory its manifest grants (guest path `/workspace` by
//! default, or the `root` config key).
//!
//! The file logic lives in plain Rust modules that are unit-tested natively; the
//! WebAssembly bindings (generated from `wit/world.wit`) are compiled only for
//! `wasm32` targets.

pub mod ops;
pub mod paths;
pub mod text;

#[cfg(target_arch = "wasm32")]
mod component;
