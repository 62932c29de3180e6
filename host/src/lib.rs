//! Launch: a self-hosted AI-agent server whose tools are sandboxed WebAssembly
//! components described by their WIT interfaces.
//!
//! The binary (`launch`) is a thin CLI over this library: [`plugins`] loads and
//! runs tool plugins, [`llm`] talks to the model provider, [`agent`] runs the
//! tool-calling loop, [`memory`] stores sessions and recalls by meaning,
//! [`server`] serves the HTTP API and the web UI, [`mcp`] offers the tools to
//! MCP clients, [`config`] layers the settings, [`telemetry`] sets up logs and
//! traces, and [`scaffold`] creates new plugin projects.

pub mod agent;
pub mod config;
pub mod llm;
pub mod mcp;
pub mod memory;
pub mod plugins;
pub mod scaffold;
pub mod server;
pub mod telemetry;
