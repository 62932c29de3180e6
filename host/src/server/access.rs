//! Who may call the API and how often: optional bearer-token auth (keys
//! compared in constant time), per-caller rate limits (per key with auth, per
//! client address without) on requests and on WebSocket turns alike, a cap on
//! open WebSockets per caller, and, for a server without keys, the checks
//! that keep web pages out: loopback (or configured) `Host` names only, no
//! foreign `Origin`, and JSON bodies only. Answered with OpenAI error bodies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::conn::client_key;
use super::error::ApiError;

/// Requests per minute and burst for one caller.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained requests per minute.
    pub per_minute: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
}

/// The caller of a request, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whose sessions these are: a digest of the API key, or `""` without auth.
    pub owner: String,
    /// Whose rate limit and WebSocket allowance this request uses: the owner
    /// with auth, else the client address (an IPv6 client by its /64).
    pub rate_key: String,
}

/// Auth and rate-limit settings, checked by [`guard`].
pub struct Access {
    /// SHA-256 of each accepted key: comparing digests makes every
    /// comparison the same length, so timing reveals nothing about the keys.
    keys: Vec<[u8; 32]>,
    /// Paths reachable without a key when auth is on.
    public: Vec<String>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Host names (besides loopback names and IP literals) a keyless server
    /// answers; an entry starting with `.` matches any name under it.
    allowed_hosts: Vec<String>,
    /// Most WebSockets open at once per caller.
    max_sockets: usize,
    sockets: Arc<Mutex<HashMap<String, usize>>>,
}

/// The settings [`Access`] enforces.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Accepted bearer tokens; empty: no auth.
    pub keys: Vec<String>,
    /// Paths reachable without a key when auth is on.
    pub public_paths: Vec<String>,
    /// Per-caller rate limit; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Public host names a keyless server answers besides loopback ones.
    pub allowed_hosts: Vec<String>,
    /// Most WebSockets open at once per caller.
    pub max_websockets_per_caller: usize,
}

/// An open WebSocket, counted against its caller until dropped.
pub struct SocketPermit {
    key: String,
    sockets: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = sockets.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                sockets.remove(&self.key);
            }
        }
    }
}

impl Access {
    /// Access under `config`.
    pub fn new(config: AccessConfig) -> Self {
        Self {
            keys: config
                .keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            public: config.public_paths,
            limiter: config
                .rate_limit
                .map(|r| RateLimiter::keyed(Quota::per_minute(r.per_minute).allow_burst(r.burst))),
            allowed_hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            max_sockets: config.max_websockets_per_caller,
            sockets: Arc::default(),
        }
    }

    /// Counts one request (or WebSocket turn) of `key` against the rate
    /// limit; `Err` holds the error that says when to retry.
    pub fn check_rate(&self, key: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            ApiError::rate_limited(format!(
                "rate limit exceeded; retry in {secs} s (limits are per API key, or per client address without auth, and count every WebSocket turn)"
            ))
            .retry_after(secs)
        })
    }

    /// A place for one more WebSocket of `key`, if it has fewer than the cap open.
    pub fn open_socket(&self, key: &str) -> Result<SocketPermit, ApiError> {
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        let open = sockets.entry(key.to_owned()).or_insert(0);
        if *open >= self.max_sockets {
            return Err(ApiError::rate_limited(format!(
                "{open} WebSockets are open for this caller, the most allowed ([server] max_websockets_per_caller); close one first"
            ))
            .retry_after(1));
        }
        *open += 1;
        Ok(SocketPermit {
            key: key.to_owned(),
            sockets: Arc::clone(&self.sockets),
        })
    }

    /// Whether a keyless server answers requests addressed to `host` (a
    /// `Host` header or an origin's host, port and brackets included or not).
    /// IP literals cannot be rebound to a page's origin, so they pass; names
    /// must be loopback names or configured.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        name.parse::<IpAddr>().is_ok() || is_loopback_name(&name) || self.configured(&name)
    }

    fn configured(&self, name: &str) -> bool {
        self.allowed_hosts.iter().any(|allowed| {
            allowed == name
                || (allowed.starts_with('.')
                    && (name.ends_with(allowed.as_str()) || name == &allowed[1..]))
        })
    }

    /// Whether a keyless server accepts a request from a page at `origin`:
    /// the page is this server's own (the web UI), on a loopback host, or on
    /// a configured host.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Some((_, authority)) = origin.split_once("://") else {
            return false; // `null` (sandboxed frames, files) and garbage.
        };
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        let name = host_name(authority);
        let loopback =
            is_loopback_name(&name) || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback || self.configured(&name)
    }

    /// The refusal for a request a web page may have made to a keyless
    /// server: a foreign `Host` (DNS rebinding) or a foreign `Origin`
    /// (a cross-site request).
    fn foreign_page(&self, headers: &HeaderMap) -> Option<ApiError> {
        // A `Host` that is not text fails closed; none at all (HTTP/1.0
        // tools) passes, as no browser sends a request without one.
        let host = headers
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or("\u{fffd}"));
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Some(ApiError::forbidden(
                "host_not_allowed",
                format!(
                    "requests for host `{host}` are refused: without API keys this server answers only localhost, loopback and IP addresses (protection against DNS rebinding); add the name to [server] allowed_hosts or LAUNCH_ALLOWED_HOSTS, or set API keys"
                ),
            ));
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin_text = origin.to_str().unwrap_or("");
        if self.origin_allowed(origin_text, host) {
            return None;
        }
        Some(ApiError::forbidden(
            "origin_not_allowed",
            format!(
                "requests from pages at `{origin_text}` are refused: without API keys this server answers only its own pages and pages on loopback or [server] allowed_hosts names (protection against cross-site requests); set API keys to serve other origins"
            ),
        ))
    }

    /// Whether requests need a key.
    pub fn auth_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The owner id of `presented`, if it is one of the keys.
    fn identify(&self, presented: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // No early exit: every key is compared whatever matched.
        let mut found = subtle::Choice::from(0u8);
        for key in &self.keys {
            found |= key.ct_eq(&digest);
        }
        bool::from(found).then(|| hex::encode(&digest[..8]))
    }

    /// Drops rate-limit state of callers not seen lately (called periodically).
    pub fn forget_idle_callers(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The host part of `authority` (`name:port`, `[v6]:port`), lower-cased,
/// without brackets or a trailing dot.
fn host_name(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether a request carries a body (a length above zero, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Whether the body is declared JSON (`application/json`, parameters allowed).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The bearer token of a request: the `Authorization` header, or for a
/// session's WebSocket upgrade (browsers cannot set headers there) the
/// URL-encoded `access_token` query parameter.
fn presented_key(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    let path = req.uri().path();
    let websocket = path.starts_with("/v1/sessions/")
        && path.ends_with("/ws")
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        return None;
    }
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// Middleware: keeps web pages off a keyless server, authenticates, insists
/// on JSON bodies, rate-limits `/v1/` and `/mcp`, and puts the [`Caller`]
/// into the request for handlers.
pub async fn guard(State(access): State<Arc<Access>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !access.auth_enabled()
        && let Some(refused) = access.foreign_page(req.headers())
    {
        return refused.into_response();
    }
    // The UI's static files hold no data and must load before the user
    // can type a key, so they are always public.
    let public =
        path == "/" || path.starts_with("/ui/") || access.public.iter().any(|p| p == &path);
    let owner = if !access.auth_enabled() {
        String::new()
    } else {
        match presented_key(&req).and_then(|k| access.identify(&k)) {
            Some(owner) => owner,
            None if public => String::new(),
            None => {
                let mut response = ApiError::unauthorized(
                    "missing or invalid API key; send `Authorization: Bearer KEY` with one of the keys in LAUNCH_API_KEYS or [server] api_keys",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
        }
    };
    // A body a form or `text/plain` request can send without a CORS preflight
    // never reaches a handler.
    if path.starts_with("/v1/")
        && req.method() != Method::GET
        && has_body(req.headers())
        && !is_json(req.headers())
    {
        return ApiError::unsupported_media_type(
            "send the body as JSON with `Content-Type: application/json`",
        )
        .into_response();
    }
    let rate_key = if owner.is_empty() {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "unknown".to_owned(),
                |c| client_key(c.0.ip()).to_string(),
            )
    } else {
        owner.clone()
    };
    if (path.starts_with("/v1/") || path == "/mcp")
        && let Err(limited) = access.check_rate(&rate_key)
    {
        return limited.into_response();
    }
    req.extensions_mut().insert(Caller { owner, rate_key });
    next.run(req).await
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the access guard did not run for this route"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_matched_exactly() {
        let access = Access::new(AccessConfig {
            keys: vec!["alpha".into(), "beta".into()],
            ..AccessConfig::default()
        });
        assert!(access.identify("alpha").is_some());
        assert!(access.identify("beta").is_some());
        assert_ne!(access.identify("alpha"), access.identify("beta"));
        assert!(access.identify("alph").is_none());
        assert!(access.identify("").is_none());
        assert!(access.identify("alphaa").is_none());
    }

    #[test]
    fn keyless_servers_answer_loopback_ip_and_configured_hosts_only() {
        let access = Access::new(AccessConfig {
            allowed_hosts: vec!["agent.example.com".into(), ".corp.example".into()],
            ..AccessConfig::default()
        });
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:3000",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.5",
            "agent.example.com",
            "a.corp.example:443",
            "corp.example",
        ] {
            assert!(access.host_allowed(ok), "{ok} is allowed");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "agent.example.com.evil",
            "xcorp.example",
        ] {
            assert!(!access.host_allowed(refused), "{refused} is refused");
        }
        let host = Some("127.0.0.1:8080");
        assert!(access.origin_allowed("http://127.0.0.1:8080", host));
        assert!(access.origin_allowed("http://localhost:5173", host));
        assert!(access.origin_allowed("https://agent.example.com", host));
        assert!(!access.origin_allowed("https://evil.example", host));
        assert!(!access.origin_allowed("http://192.168.1.66", host));
        assert!(!access.origin_allowed("null", host));
    }
}
