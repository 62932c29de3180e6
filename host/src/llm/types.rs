//! Chat Completions wire types: what Launch sends to and accepts from any
//! OpenAI-compatible provider. Parsing is lenient where providers differ
//! (unknown fields, `content: null`, missing `usage`, tool-call arguments sent
//! as an object instead of a string) and strict where meaning is at stake.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Text; `None` for an assistant message that only calls tools.
    #[serde(default)]
    pub content: Option<String>,
    /// Tool calls requested by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::text(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::text(Role::User, text)
    }

    /// An assistant message with text only.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::text(Role::Assistant, text)
    }

    /// The answer to tool call `id`.
    pub fn tool(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.into()),
        }
    }

    fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed in the tool message.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// Name and arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text, exactly as the model produced it (it may be
    /// invalid JSON; the agent loop reports that back to the model). Some
    /// providers send an object instead of a string; it is stored as its text.
    #[serde(deserialize_with = "arguments_as_text", default)]
    pub arguments: String,
}

fn arguments_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// A tool offered to the model.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The function.
    pub function: FunctionSpec,
}

/// Name, description and JSON Schema of a tool.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionSpec {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both.
    #[serde(default)]
    pub total_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Self) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.total_tokens += o.total_tokens;
    }
}

/// The request body Launch sends.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest<'a> {
    /// Model id.
    pub model: &'a str,
    /// Conversation so far.
    pub messages: &'a [Message],
    /// Tools the model may call; omitted when empty.
    #[serde(skip_serializing_if = "<[ToolSpec]>::is_empty")]
    pub tools: &'a [ToolSpec],
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Completion length cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stream the answer as server-sent events.
    pub stream: bool,
    /// Ask for usage in the last streamed chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<Value>,
}

/// The non-streaming response (only the parts Launch uses).
#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    /// Alternatives; Launch uses the first.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token counts, when the provider sends them.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// One alternative.
#[derive(Debug, Deserialize)]
pub struct Choice {
    /// The assistant's message.
    pub message: Message,
    /// Why it stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One streamed chunk.
#[derive(Debug, Deserialize)]
pub struct ChatChunk {
    /// Deltas; may be empty (e.g. the usage-only chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage, usually only in the last chunk.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// An error reported inside the stream.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The delta of one alternative.
#[derive(Debug, Deserialize)]
pub struct ChunkChoice {
    /// What is new.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the last chunk of the alternative.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// New text and tool-call fragments.
#[derive(Debug, Default, Deserialize)]
pub struct Delta {
    /// Text fragment.
    #[serde(default)]
    pub content: Option<String>,
    /// Tool-call fragments.
    #[serde(default)]
    pub tool_calls: Vec<ToolCallDelta>,
}

/// A fragment of one tool call, identified by its index.
#[derive(Debug, Default, Deserialize)]
pub struct ToolCallDelta {
    /// Which call this fragment extends (some providers leave it out).
    #[serde(default)]
    pub index: Option<usize>,
    /// The call id (first fragment).
    #[serde(default)]
    pub id: Option<String>,
    /// Name and argument fragments.
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

/// Fragments of a function call.
#[derive(Debug, Default, Deserialize)]
pub struct FunctionDelta {
    /// Name (first fragment, sometimes split).
    #[serde(default)]
    pub name: Option<String>,
    /// Arguments text fragment.
    #[serde(default, deserialize_with = "optional_arguments")]
    pub arguments: Option<String>,
}

fn optional_arguments<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// The error body OpenAI-compatible providers return.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of a provider error.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_where_providers_differ() {
        let r: ChatResponse = serde_json::from_str(
            r#"{"id":"x","extra":1,"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"t","arguments":{"a":1}}}]},
            "finish_reason":"tool_calls"}]}"#,
        )
        .unwrap();
        assert!(r.usage.is_none());
        let m = &r.choices[0].message;
        assert_eq!(m.content, None);
        assert_eq!(m.tool_calls[0].function.arguments, r#"{"a":1}"#);
    }

    #[test]
    fn requests_omit_empty_tools() {
        let messages = [Message::user("hi")];
        let req = ChatRequest {
            model: "m",
            messages: &messages,
            tools: &[],
            temperature: None,
            max_tokens: None,
            stream: false,
            stream_options: None,
        };
        let v = serde_json::to_value(req).unwrap();
        assert!(v.get("tools").is_none());
        assert_eq!(
            v["messages"][0],
            serde_json::json!({"role": "user", "content": "hi"})
        );
    }
}
