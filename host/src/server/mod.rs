//! The HTTP server: the OpenAI-compatible chat API, sessions, tools,
//! operations (health, metrics, OpenAPI) and protection (auth, rate limits,
//! size and concurrency limits, graceful shutdown). Built as a router
//! function so tests can drive it without a socket.

pub mod access;
mod chat;
pub mod conn;
pub mod error;
mod metrics;
mod sessions;
mod tools;
pub mod turns;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::agent::Agent;
use crate::memory::Memory;
use crate::plugins::Registry;
use access::{Access, AccessConfig, RateLimit};
use conn::{ConnectionLimits, Connections};
use error::ApiError;

/// Limits and protection settings of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accepted bearer tokens; empty: no auth.
    pub api_keys: Vec<String>,
    /// Paths reachable without a key when auth is on.
    pub public_paths: Vec<String>,
    /// Per-caller rate limit on `/v1/` and `/mcp`; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Largest single message text.
    pub max_message_bytes: usize,
    /// Agent turns running at once.
    pub max_concurrent_turns: usize,
    /// How long a turn waits for a slot before a 503.
    pub turn_queue_timeout: Duration,
    /// How long shutdown waits for in-flight requests and turns.
    pub shutdown_grace: Duration,
    /// Caps and deadlines of connections.
    pub connections: ConnectionLimits,
    /// Public host names a server without keys answers, besides loopback
    /// names and IP addresses.
    pub allowed_hosts: Vec<String>,
    /// Most WebSockets open at once per API key (per client address without auth).
    pub max_websockets_per_caller: usize,
    /// Messages a session may hold before new turns are refused.
    pub max_session_messages: usize,
    /// Bytes of history a session may hold before new turns are refused.
    pub max_session_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            public_paths: vec!["/healthz".into(), "/readyz".into()],
            rate_limit: None,
            max_body_bytes: 4 * 1024 * 1024,
            max_messages: 1000,
            max_message_bytes: 256 * 1024,
            max_concurrent_turns: 64,
            turn_queue_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            connections: ConnectionLimits::default(),
            allowed_hosts: Vec::new(),
            max_websockets_per_caller: 16,
            max_session_messages: 10_000,
            max_session_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Shared state of the running server.
#[derive(Clone)]
pub struct AppState {
    /// Loaded plugins and tools.
    pub registry: Arc<Registry>,
    /// The agent that answers chat requests.
    pub agent: Arc<Agent>,
    /// Sessions and semantic memory.
    pub memory: Arc<Memory>,
    /// Limits.
    pub limits: Arc<ServerConfig>,
    /// Auth, rate limits and the keyless server's checks.
    pub access: Arc<Access>,
    /// Concurrency of agent turns.
    pub turns: Arc<turns::TurnLimits>,
    /// Turns that outlive their request (session turns), awaited at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled when shutdown starts.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State for a server with `config`.
    pub fn new(
        registry: Arc<Registry>,
        agent: Arc<Agent>,
        memory: Arc<Memory>,
        config: ServerConfig,
    ) -> Self {
        Self {
            registry,
            agent,
            memory,
            turns: Arc::new(turns::TurnLimits::new(
                config.max_concurrent_turns,
                config.turn_queue_timeout,
            )),
            access: Arc::new(Access::new(AccessConfig {
                keys: config.api_keys.clone(),
                public_paths: config.public_paths.clone(),
                rate_limit: config.rate_limit,
                allowed_hosts: config.allowed_hosts.clone(),
                max_websockets_per_caller: config.max_websockets_per_caller,
            })),
            limits: Arc::new(config),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Launch", description = "A self-hosted AI-agent server whose tools are sandboxed WebAssembly components. Errors use the OpenAI error body `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "chat", description = "OpenAI-compatible chat completions"),
        (name = "sessions", description = "Conversations stored by the server"),
        (name = "tools", description = "Tools from the loaded plugins"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Every route, registered with its OpenAPI description, so the document
/// cannot miss one.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ui::index))
        .routes(routes!(ui::asset))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi_json))
        .routes(routes!(tools::models))
        .routes(routes!(tools::list))
        .routes(routes!(tools::invoke))
        .routes(routes!(chat::completions))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::get, sessions::delete))
        .routes(routes!(sessions::post_message))
        .routes(routes!(sessions::ws))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The served OpenAPI document.
#[derive(Clone)]
struct OpenApiJson(Arc<Value>);

/// The router, without a socket, so tests can drive it directly.
pub fn router(state: AppState) -> Router {
    let (routes, spec) = api().split_for_parts();
    let spec = OpenApiJson(Arc::new(serde_json::to_value(&spec).unwrap_or(Value::Null)));
    let body_limit = state.limits.max_body_bytes;
    metrics::handle();
    let mcp = crate::mcp::http_service(
        Arc::clone(&state.registry),
        crate::mcp::HttpOptions {
            shutdown: state.shutdown.clone(),
            max_body_bytes: body_limit,
        },
    );
    let mcp = tower::Layer::layer(
        &axum::middleware::from_fn_with_state(body_limit, crate::mcp::screen),
        mcp,
    );
    let access = Arc::clone(&state.access);
    routes
        // MCP (Streamable HTTP) over the same tools, behind the same layers.
        .route_service("/mcp", mcp)
        .fallback(|| async { ApiError::not_found("no such endpoint; see /openapi.json") })
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(Extension(spec))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: plugins loaded, store open, LLM and memory status; 503 while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready, with plugin, store, LLM and memory status"),
              (status = 503, description = "Shutting down or the store is unavailable")))]
async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.registry.report();
    let store = state.memory.store().session_count().await;
    let llm = state.agent.llm().config();
    let ready = store.is_ok() && !state.shutdown.is_cancelled();
    let status = if state.shutdown.is_cancelled() {
        "shutting_down"
    } else if store.is_err() {
        "store_unavailable"
    } else {
        "ready"
    };
    let body = json!({
        "status": status,
        "plugins": {
            "loaded": report.loaded.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "failed": report.failed,
        },
        "tools": state.registry.tools().count(),
        "store": match &store {
            Ok(n) => json!({"open": true, "path": state.memory.store().path(), "sessions": n}),
            Err(e) => json!({"open": false, "error": format!("{e:#}")}),
        },
        "memory": state.memory.status(),
        "llm": {
            "provider": llm.name,
            "model": llm.model,
            "configured": llm.api_key.is_some(),
            "hint": if llm.api_key.is_some() { None } else { Some(&llm.api_key_hint) },
        },
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API")))]
async fn openapi_json(Extension(spec): Extension<OpenApiJson>) -> Json<Value> {
    Json((*spec.0).clone())
}

/// How often retention, rate-limit cleanup and index saves run.
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(60);

async fn maintain(state: AppState) {
    let mut tick = tokio::time::interval(MAINTENANCE_PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        if let Err(e) = state.memory.maintain().await {
            tracing::warn!("memory maintenance failed: {e:#}");
        }
        state.access.forget_idle_callers();
    }
}

/// Serves `state` on `addr` until SIGINT or SIGTERM, then stops accepting,
/// lets in-flight requests and turns finish within the grace period, and
/// flushes the store.
pub async fn serve(addr: SocketAddr, state: AppState) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another server running there? choose another with --listen or LAUNCH_LISTEN"))?;
    let fd_limit = conn::raise_fd_limit();
    let connections = Connections::new(state.limits.connections.clone(), fd_limit);
    tracing::info!(
        fd_limit,
        max_connections = connections.max(),
        "connection limits"
    );
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let app = router(state.clone());
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.cancel();
    });
    tokio::spawn(maintain(state.clone()));
    // Ends when shutdown starts and every connection has closed.
    let mut server = tokio::spawn(conn::serve(
        listener,
        app,
        connections,
        state.shutdown.clone(),
    ));
    let mut server_ended = false;
    tokio::select! {
        ended = &mut server => {
            server_ended = true;
            if !state.shutdown.is_cancelled() {
                ended.context("server task failed")?;
                anyhow::bail!("the accept loop ended without a shutdown");
            }
        }
        () = state.shutdown.cancelled() => {}
    }
    let grace = state.limits.shutdown_grace;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: not accepting connections, finishing in-flight requests and turns"
    );
    state.tasks.close();
    let drained = tokio::time::timeout(grace, async {
        if !server_ended {
            let _ = (&mut server).await;
        }
        state.tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over; unfinished turns are abandoned and not stored");
        server.abort();
    }
    state
        .memory
        .flush()
        .await
        .context("cannot flush the session store")?;
    tracing::info!("stopped");
    Ok(())
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
