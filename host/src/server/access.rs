//! Who may call the API and how often: optional bearer-token auth (keys
//! compared in constant time) and per-caller rate limits (per key with auth,
//! per client IP without), answered with OpenAI error bodies.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
}

/// Auth and rate-limit settings, checked by [`guard`].
pub struct Access {
    /// SHA-256 of each accepted key: comparing digests makes every
    /// comparison the same length, so timing reveals nothing about the keys.
    keys: Vec<[u8; 32]>,
    /// Paths reachable without a key when auth is on.
    public: Vec<String>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Access {
    /// Auth with `keys` (none: open API), `public` paths, optional rate limit.
    pub fn new(keys: &[String], public: Vec<String>, rate: Option<RateLimit>) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            public,
            limiter: rate
                .map(|r| RateLimiter::keyed(Quota::per_minute(r.per_minute).allow_burst(r.burst))),
        }
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

/// The bearer token of a request: the `Authorization` header, or for
/// WebSocket upgrades (browsers cannot set headers there) an `access_token`
/// query parameter.
fn presented_key(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    let is_upgrade = req.headers().contains_key(header::UPGRADE);
    let query = req.uri().query()?;
    is_upgrade
        .then(|| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("access_token="))
                .map(str::to_owned)
        })
        .flatten()
}

/// Middleware: authenticates, rate-limits `/v1/` and `/mcp`, and puts the
/// [`Caller`] into the request for handlers.
pub async fn guard(State(access): State<Arc<Access>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
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
    let limited = path.starts_with("/v1/") || path == "/mcp";
    if let (Some(limiter), true) = (&access.limiter, limited) {
        let key = if owner.is_empty() {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
        } else {
            owner.clone()
        };
        if let Err(not_until) = limiter.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            return ApiError::rate_limited(format!(
                "rate limit exceeded; retry in {secs} s (limits are per API key, or per client address without auth)"
            ))
            .retry_after(secs)
            .into_response();
        }
    }
    req.extensions_mut().insert(Caller { owner });
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
        let access = Access::new(&["alpha".into(), "beta".into()], Vec::new(), None);
        assert!(access.identify("alpha").is_some());
        assert!(access.identify("beta").is_some());
        assert_ne!(access.identify("alpha"), access.identify("beta"));
        assert!(access.identify("alph").is_none());
        assert!(access.identify("").is_none());
        assert!(access.identify("alphaa").is_none());
    }
}
