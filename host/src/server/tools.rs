//! `GET /v1/models`, `GET /v1/tools` and `POST /v1/tools/{name}/invoke`
//! (a direct tool call, without the LLM).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// `GET /v1/models`: the configured model, so OpenAI SDKs can list it.
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let model = &state.agent.llm().config().model;
    Json(
        json!({"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "launch"}]}),
    )
}

/// `GET /v1/tools`: every tool with its schema.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .registry
        .tools()
        .map(|t| {
            json!({
                "name": t.name,
                "plugin": &*t.plugin.name,
                "description": t.description,
                "parameters": t.parameters,
                "output_schema": t.output_schema,
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// `POST /v1/tools/{name}/invoke`: the body is the arguments object.
pub async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(args) = body?;
    let result = state.registry.call(&name, &args).await?;
    Ok(Json(json!({"tool": name, "result": result})))
}
