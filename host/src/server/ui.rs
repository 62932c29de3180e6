//! The web chat UI: static files embedded in the binary and served at `/`.
//! `LAUNCH_UI_DIR` serves them from a folder instead, for UI development
//! without rebuilding the server.
//!
//! The page builds no HTML from model, tool or user text (it renders through
//! DOM text nodes), and the Content-Security-Policy below forbids inline and
//! foreign scripts, so injected markup could not run even if it got in.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The embedded files: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
];

/// Scripts and styles only from this origin; API calls (fetch, WebSocket)
/// only to it; no framing, no plugins, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(name: &str) -> Response {
    let Some((_, content_type, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::not_found(format!("no UI file {name:?}")).into_response();
    };
    // A development override; a missing file falls back to the embedded copy.
    let body = std::env::var_os("LAUNCH_UI_DIR")
        .and_then(|dir| std::fs::read_to_string(std::path::Path::new(&dir).join(name)).ok())
        .unwrap_or_else(|| (*embedded).to_owned());
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The chat page.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "The web chat UI (HTML)", content_type = "text/html")))]
pub async fn index() -> Response {
    serve("index.html")
}

/// The UI's script and stylesheet.
#[utoipa::path(get, path = "/ui/{file}", tag = "operations",
    params(("file" = String, Path, description = "`app.js` or `style.css`")),
    responses((status = 200, description = "A static file of the web UI"), (status = 404, description = "No such file")))]
pub async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}
