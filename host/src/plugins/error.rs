//! Typed outcomes of a failed tool call. Every variant is reported to the
//! caller (the model, an API client, the CLI) and none of them harms the host.

use std::time::Duration;

use serde_json::Value;

use super::values::ArgError;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool `{name}`; available tools: {available}")]
    UnknownTool {
        /// The requested name.
        name: String,
        /// Comma-separated names of the loaded tools.
        available: String,
    },
    /// The arguments do not match the tool's schema; the plugin did not run.
    #[error("{0}")]
    InvalidArguments(#[from] ArgError),
    /// The plugin returned `err(...)`: a normal, reported failure.
    #[error("{message}")]
    Failed {
        /// The error as text (the string itself for `result<_, string>`).
        message: String,
        /// The error payload as JSON.
        details: Value,
    },
    /// The plugin crashed (panic, `unreachable`, bad memory access...).
    #[error("plugin `{plugin}` crashed: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap and, for a panic, the guest's panic message.
        message: String,
    },
    /// The call ran past its deadline and was stopped.
    #[error("plugin `{plugin}` did not finish within its {}ms time limit and was stopped", limit.as_millis())]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The deadline.
        limit: Duration,
    },
    /// The plugin tried to use more linear memory than allowed.
    #[error("plugin `{plugin}` ran out of memory: it tried to grow past its {} MiB limit", limit / (1024 * 1024))]
    OutOfMemory {
        /// Plugin name.
        plugin: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The plugin used up its fuel (instruction budget).
    #[error("plugin `{plugin}` used up its fuel budget of {fuel} units and was stopped")]
    OutOfFuel {
        /// Plugin name.
        plugin: String,
        /// The budget.
        fuel: u64,
    },
    /// The plugin recursed too deeply.
    #[error("plugin `{plugin}` overflowed its call stack (too deep recursion)")]
    StackOverflow {
        /// Plugin name.
        plugin: String,
    },
    /// The result was larger than allowed.
    #[error(
        "plugin `{plugin}` returned more than its {limit}-byte output limit; ask for less data"
    )]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// The limit, in bytes of JSON.
        limit: u64,
    },
    /// The call failed after a write ran into a directory grant's disk quota.
    #[error(
        "plugin `{plugin}` ran out of room in its directory grant {grant}; delete files there or raise the grant's max_mib / max_entries"
    )]
    QuotaExceeded {
        /// Plugin name.
        plugin: String,
        /// The grant and its quota.
        grant: String,
    },
    /// The host could not start an instance (e.g. every instance slot is busy).
    #[error("plugin `{plugin}` could not be started: {message}")]
    Unavailable {
        /// Plugin name.
        plugin: String,
        /// Why.
        message: String,
    },
}

impl ToolError {
    /// A stable, machine-readable code for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Failed { .. } => "tool_error",
            ToolError::Trap { .. } => "trap",
            ToolError::Timeout { .. } => "timeout",
            ToolError::OutOfMemory { .. } => "out_of_memory",
            ToolError::OutOfFuel { .. } => "out_of_fuel",
            ToolError::StackOverflow { .. } => "stack_overflow",
            ToolError::OutputTooLarge { .. } => "output_too_large",
            ToolError::QuotaExceeded { .. } => "quota_exceeded",
            ToolError::Unavailable { .. } => "unavailable",
        }
    }
}
