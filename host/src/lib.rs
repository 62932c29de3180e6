//! Launch: a self-hosted AI-agent server whose tools are sandboxed WebAssembly
//! components described by their WIT interfaces.
//!
//! The binary (`launch`) is a thin CLI over this library: [`plugins`] loads and
//! runs tool plugins, [`server`] serves the HTTP API,
//! [`mcp`] offers the tools to MCP clients.

pub mod agent;
pub mod config;
pub mod llm;
pub mod mcp;
pub mod memory;
pub mod plugins;
pub mod scaffold;
pub mod server;
pub mod telemetry;
