//! LLM providers over the OpenAI-compatible API: wire types and the client.

pub mod client;
pub mod types;

pub use client::{Completion, LlmClient, LlmError, ProviderConfig};
pub use types::{Message, Role, ToolCall, ToolSpec, Usage};
