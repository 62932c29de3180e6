//! The plugin runtime: discovery, compilation, sandboxing and calling of tool
//! plugins (WebAssembly components), and the WIT -> JSON Schema mapping.

mod admission;
mod cpu;
mod dirs;
pub mod docs;
pub mod engine;
pub mod error;
mod host_api;
pub mod http;
mod http_client;
pub mod http_policy;
pub mod manifest;
mod precedence;
mod quota;
pub mod registry;
pub mod runtime;
pub mod sdk;
pub mod shape;
mod stdio;
pub mod values;

pub use error::ToolError;
pub use http::Resolver;
pub use manifest::Manifest;
pub use registry::{LoadOptions, LoadReport, Registry};
pub use runtime::Tool;
