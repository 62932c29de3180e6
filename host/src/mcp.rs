//! The MCP (Model Context Protocol) server: every loaded tool, offered to any
//! MCP client, over Streamable HTTP at `/mcp` (mounted by [`crate::server`],
//! behind the same auth, rate limits and metrics as the HTTP API) or over
//! stdin/stdout (`launch mcp --stdio`). Built on the official Rust SDK
//! (`rmcp`); tools come from the [`Registry`] and calls go through
//! [`Registry::call`], so names, schemas, limits and tool metrics are those of
//! the chat API.

use std::sync::Arc;

use anyhow::{Context, Result};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeRequestParams, InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::plugins::{Registry, ToolError};
use crate::server::error::ApiError;

/// What the server tells a client about itself on `initialize`.
const INSTRUCTIONS: &str = "Tools of a Launch server: each runs in a sandboxed WebAssembly plugin \
with its own time, memory and output limits and only the files and hosts its manifest grants. \
A failed call returns isError with the reason (its code first, e.g. `invalid_arguments:`).";

/// The MCP service over the tool registry. Cheap to clone: one per session.
#[derive(Clone)]
pub struct LaunchMcp {
    registry: Arc<Registry>,
    transport: &'static str,
}

impl LaunchMcp {
    /// A service over `registry`; `transport` (`http` or `stdio`) labels its metrics.
    pub fn new(registry: Arc<Registry>, transport: &'static str) -> Self {
        Self {
            registry,
            transport,
        }
    }

    fn count(&self, method: &'static str) {
        metrics::counter!("launch_mcp_requests_total", "method" => method, "transport" => self.transport)
            .increment(1);
    }

    /// The MCP description of every tool: name, description and input schema
    /// as in `GET /v1/tools`, and the output schema when the result is an
    /// object (MCP's structured content must be one).
    pub fn tools(&self) -> Vec<Tool> {
        self.registry
            .tools()
            .map(|t| {
                let mut tool = Tool::new(
                    t.name.clone(),
                    t.description.clone(),
                    Arc::new(as_object(&t.parameters)),
                );
                if let Some(Value::Object(schema)) = &t.output_schema
                    && schema.get("type").and_then(Value::as_str) == Some("object")
                {
                    tool = tool.with_raw_output_schema(Arc::new(schema.clone()));
                }
                tool
            })
            .collect()
    }

    /// Runs a tool and shapes the outcome as MCP wants it: a result (with
    /// structured content when it is an object), a tool error as an
    /// `isError` result carrying the message, an unknown tool as a protocol
    /// error.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        let args = Value::Object(arguments.unwrap_or_default());
        match self.registry.call(name, &args).await {
            Ok(value) => {
                let text = match &value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                if value.is_object() {
                    result.structured_content = Some(value);
                }
                Ok(result)
            }
            Err(e @ ToolError::UnknownTool { .. }) => Err(ErrorData::invalid_params(
                e.to_string(),
                Some(serde_json::json!({"code": e.code()})),
            )),
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{}: {e}",
                e.code()
            ))])),
        }
    }
}

fn as_object(schema: &Value) -> JsonObject {
    match schema {
        Value::Object(map) => map.clone(),
        _ => {
            let mut map = JsonObject::new();
            map.insert("type".into(), Value::from("object"));
            map
        }
    }
}

impl ServerHandler for LaunchMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("launch", env!("CARGO_PKG_VERSION"))
                    .with_title("Launch")
                    .with_description("Sandboxed WebAssembly tools of a Launch server"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.count("initialize");
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.count("tools/list");
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.count("tools/call");
        self.call(&request.name, request.arguments)
            .await
            .map(CallToolResponse::from)
    }
}

/// Settings of the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Cancelled at shutdown: open streams end.
    pub shutdown: CancellationToken,
    /// Largest request body.
    pub max_body_bytes: usize,
}

/// The Streamable HTTP endpoint, a tower service to mount at `/mcp`.
/// Stateless, with plain JSON responses: every request stands alone, so
/// any number of clients and servers need no session bookkeeping.
pub fn http_service(
    registry: Arc<Registry>,
    options: HttpOptions,
) -> StreamableHttpService<LaunchMcp, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.sse_keep_alive = None;
    config.cancellation_token = options.shutdown.child_token();
    config.max_request_body_bytes = options.max_body_bytes;
    // `Host` and `Origin` are checked for every route in one place
    // (`server::access`), with the server's configured names.
    config = config.disable_allowed_hosts();
    let service = LaunchMcp::new(registry, "http");
    StreamableHttpService::new(
        move || Ok(service.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Screens a Streamable HTTP POST before rmcp reads it, so malformed input
/// gets a 400 with a JSON-RPC error body: rmcp answers every body it cannot
/// decode with 415 (which means a wrong content type) and an unreadable
/// body with 500. Bodies not declared JSON pass on to rmcp's own 415.
pub async fn screen(
    axum::extract::State(max_body_bytes): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() != http::Method::POST || !crate::server::access::is_json(request.headers())
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return ApiError::unreadable_body(&e).into_response(),
    };
    let problem = if bytes.trim_ascii_start().first() == Some(&b'[') {
        Some((
            -32600,
            "JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send one message per request".to_owned(),
        ))
    } else {
        // A tree, not `IgnoredAny`: only building one applies serde_json's
        // nesting limit, which rmcp's own parse would hit.
        serde_json::from_slice::<Value>(&bytes)
            .err()
            .map(|e| (-32700, format!("the body is not valid JSON: {e}")))
    };
    if let Some((code, message)) = problem {
        return jsonrpc_error(code, message);
    }
    let response = next
        .run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await;
    if response.status() != http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    // Valid JSON that is not a JSON-RPC message rmcp knows.
    let reason = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    jsonrpc_error(
        -32600,
        format!("the body is not a JSON-RPC request or notification MCP accepts: {reason}"),
    )
}

fn jsonrpc_error(code: i64, message: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Serves MCP over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(registry: Arc<Registry>) -> Result<()> {
    let running = LaunchMcp::new(registry, "stdio")
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not complete the handshake")?;
    running.waiting().await.context("the MCP session failed")?;
    Ok(())
}
