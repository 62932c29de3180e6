//! The plugin runtime: discovery, compilation, sandboxing and calling of tool
//! plugins (WebAssembly components), and the WIT -> JSON Schema mapping.

mod admission;
pub mod capability;
mod cpu;
pub mod docs;
pub mod engine;
pub mod error;
mod host_api;
pub mod manifest;
mod precedence;
pub mod registry;
pub mod runtime;
pub mod sdk;
pub mod shape;
mod stdio;
pub mod values;

pub use capability::http::Resolver;
pub use error::ToolError;
pub use manifest::Manifest;
pub use registry::{LoadOptions, LoadReport, Registry};
pub use runtime::Tool;
