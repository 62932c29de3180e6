//! `GET /v1/models`, `GET /v1/tools` and `POST /v1/tools/{name}/invoke`
//! (a direct tool call, without the LLM).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// The configured model, so OpenAI SDKs can list it.
#[utoipa::path(get, path = "/v1/models", tag = "chat",
    responses((status = 200, description = "`{object: \"list\", data: [{id, object: \"model\", created, owned_by}]}`")))]
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let model = &state.agent.llm().config().model;
    Json(
        json!({"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "launch"}]}),
    )
}

/// Every tool with its description, parameter schema and output schema.
#[utoipa::path(get, path = "/v1/tools", tag = "tools",
    responses((status = 200, description = "`{object: \"list\", data: [{name, plugin, export, description, parameters, output_schema}]}`")))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state.registry.tools().map(|t| t.describe()).collect();
    Json(json!({"object": "list", "data": data}))
}

/// Call a tool directly, without the LLM: the body is the arguments object.
#[utoipa::path(post, path = "/v1/tools/{name}/invoke", tag = "tools",
    params(("name" = String, Path, description = "Tool name, as listed by /v1/tools")),
    request_body(content = Object, description = "The arguments, matching the tool's parameter schema"),
    responses(
        (status = 200, description = "`{tool, result}`"),
        (status = 400, description = "Arguments do not match the schema (the message names the field)"),
        (status = 404, description = "No such tool"),
        (status = 422, description = "The tool failed or hit a limit (code says which)"),
        (status = 504, description = "The tool ran out of time")))]
pub async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(args) = body?;
    let result = state.registry.call(&name, &args).await?;
    Ok(Json(json!({"tool": name, "result": result})))
}
