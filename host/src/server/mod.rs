//! The HTTP server: the OpenAI-compatible chat API, tools, health. Built as a
//! router function so tests can drive it without a socket.

mod chat;
pub mod error;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::agent::Agent;
use crate::plugins::Registry;
use error::ApiError;

/// Largest request body accepted (chat transcripts included).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Shared state of the running server.
#[derive(Clone)]
pub struct AppState {
    /// Loaded plugins and tools.
    pub registry: Arc<Registry>,
    /// The agent that answers chat requests.
    pub agent: Arc<Agent>,
}

/// The router, without a socket, so tests can drive it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/models", get(tools::models))
        .route("/v1/tools", get(tools::list))
        .route("/v1/tools/{name}/invoke", post(tools::invoke))
        .route("/v1/chat/completions", post(chat::completions))
        .fallback(|| async { ApiError::not_found("no such endpoint; see /openapi.json") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let report = state.registry.report();
    Json(json!({
        "status": "ready",
        "plugins": {
            "loaded": report.loaded.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "failed": report.failed,
        },
        "tools": state.registry.tools().count(),
        "llm": {
            "provider": state.agent.llm().config().name,
            "model": state.agent.llm().config().model,
            "configured": state.agent.llm().config().api_key.is_some(),
        },
    }))
}

/// Serves `state` on `addr` until SIGINT or SIGTERM.
pub async fn serve(addr: SocketAddr, state: AppState) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another server running there? choose another with --listen or LAUNCH_LISTEN"))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
