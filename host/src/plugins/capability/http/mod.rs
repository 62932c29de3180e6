//! The HTTP capability (`[grants] http`): the allowlist's syntax and
//! validation, and the outbound gate every `wasi:http` request a plugin makes
//! passes through ([`HttpGate::send_request`]) before anything leaves the
//! host. Patterns are in `pattern.rs`, the sender in `client.rs`.
//!
//! In order, a request must: match an allowlist pattern of the manifest
//! (scheme, host and port); carry credential headers only where the matching
//! grant allows them; resolve (on the host) to public addresses unless the
//! pattern names a private host explicitly (SSRF). The request is then sent to
//! the checked address itself (`http_client.rs`), HTTPS included, so a second
//! DNS answer cannot redirect it (the TLS handshake still verifies the name).
//! Timeouts are clamped to the call's deadline, response bodies are capped, and
//! injected secrets a server echoes back are redacted. Redirects are never
//! followed by the host: each hop is a new request and passes the gate again.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HeaderName, HeaderValue, PROXY_AUTHORIZATION};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use self::pattern::{HostPattern, is_public};
use super::Access;
use super::secrets;
use crate::plugins::manifest::Manifest;

pub mod client;
pub mod pattern;

/// One outbound-HTTP allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpGrant {
    /// `scheme://host[:port]` pattern, `*.` allowed for subdomains.
    pub url: String,
    /// Whether the guest may send `Authorization`, `Cookie` and
    /// `Proxy-Authorization` headers to matching hosts.
    pub credentials: bool,
    /// Headers the host adds to every request to matching hosts. Values may
    /// reference secrets as `${NAME}`; the guest never sees the result.
    pub headers: BTreeMap<String, String>,
    /// A PEM file of the only root certificates HTTPS servers of this grant
    /// may chain to (a private CA); the public web roots when absent.
    pub ca: Option<PathBuf>,
}

/// One `http` entry as written: a pattern, or a table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHttpGrant {
    /// `"https://api.example.com"`
    Pattern(String),
    /// `{ url = ..., credentials = ..., headers = ..., ca = ... }`
    Detailed(RawHttpDetail),
}

/// The table form of an `http` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpDetail {
    url: String,
    #[serde(default)]
    credentials: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca: Option<PathBuf>,
}

/// Validates `[grants] http`: patterns, header names, secret references
/// (which must name `grants.secrets`), CA files (relative to `base`).
pub fn validate(
    raw: Vec<RawHttpGrant>,
    secrets: &BTreeMap<String, String>,
    base: &std::path::Path,
) -> Result<Vec<HttpGrant>, String> {
    let mut http = Vec::with_capacity(raw.len());
    for grant in raw {
        let grant = match grant {
            RawHttpGrant::Pattern(url) => HttpGrant {
                url,
                credentials: false,
                headers: BTreeMap::new(),
                ca: None,
            },
            RawHttpGrant::Detailed(d) => HttpGrant {
                url: d.url,
                credentials: d.credentials,
                headers: d.headers,
                ca: d.ca.map(|ca| base.join(ca)),
            },
        };
        if let Some(ca) = &grant.ca
            && !ca.is_file()
        {
            return Err(format!(
                "grants.http: the CA file {} of {} does not exist (relative paths are relative to the manifest's folder)",
                ca.display(),
                grant.url
            ));
        }
        HostPattern::parse(&grant.url).map_err(|e| format!("grants.http: {e}"))?;
        for (name, value) in &grant.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("grants.http: {name:?} is not a valid header name"));
            }
            if let Some(reference) = secrets::references(value).find(|r| !secrets.contains_key(*r))
            {
                return Err(format!(
                    "grants.http: header {name:?} uses ${{{reference}}}, which is not in grants.secrets"
                ));
            }
        }
        http.push(grant);
    }
    Ok(http)
}

/// `wasi:http` for `launch plugin check`.
pub fn describe(grants: &[HttpGrant]) -> Access {
    Access::granted("HTTP origins", grants.len(), "[grants] http")
}

/// Longest a connection attempt may take, whatever the guest asks for.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One allowlist entry, ready to use.
struct Rule {
    pattern: HostPattern,
    credentials: bool,
    /// Roots HTTPS servers must chain to (the grant's `ca`, else the public web's).
    tls: Arc<rustls::ClientConfig>,
    inject: Vec<(HeaderName, HeaderValue)>,
    /// What the guest must never read back: the injected header values and
    /// the secrets in them.
    redact: Arc<Redactions>,
}

/// What replaces a secret the server echoes back.
const REDACTED: &[u8] = b"[REDACTED]";
/// Secrets shorter than this are not searched for in responses: matching
/// them would garble ordinary data (docs/manifest.md says so).
const MIN_REDACTED_LEN: usize = 6;

/// Byte strings to blank out of a response before the guest reads it.
#[derive(Default)]
struct Redactions {
    needles: Vec<Vec<u8>>,
    longest: usize,
}

impl Redactions {
    fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut needles: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_REDACTED_LEN)
            .collect();
        // Longest first, so a header value wins over the secret inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let longest = needles.first().map_or(0, Vec::len);
        Self { needles, longest }
    }

    fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Redacts every header value in `headers`.
    fn headers(&self, headers: &mut http::HeaderMap) {
        for value in headers.values_mut() {
            let redacted = self.apply(value.as_bytes());
            if redacted != value.as_bytes() {
                *value = HeaderValue::from_bytes(&redacted)
                    .unwrap_or_else(|_| HeaderValue::from_static("[REDACTED]"));
            }
        }
    }

    /// `data` with every needle replaced.
    fn apply(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        'scan: while i < data.len() {
            for needle in &self.needles {
                if data[i..].starts_with(needle) {
                    out.extend_from_slice(REDACTED);
                    i += needle.len();
                    continue 'scan;
                }
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }
}

/// Resolves a host name to socket addresses. The system resolver in
/// production; the one seam where a test can stand in for DNS (to show that a
/// connection goes to the address that was checked, not to a second answer).
#[derive(Clone)]
pub struct Resolver(Arc<dyn Fn(String, u16) -> Resolving + Send + Sync>);

/// A resolution under way.
type Resolving = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

impl Resolver {
    /// A resolver answering with `resolve`.
    pub fn new<F, Fut>(resolve: F) -> Self
    where
        F: Fn(String, u16) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'static,
    {
        Self(Arc::new(move |host, port| Box::pin(resolve(host, port))))
    }

    /// The operating system's resolver (getaddrinfo).
    pub fn system() -> Self {
        Self::new(|host: String, port| async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }

    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        (self.0)(host.to_owned(), port).await
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// A plugin's outbound HTTP policy, built once at load.
pub struct HttpPolicy {
    rules: Vec<Rule>,
    resolver: Resolver,
    any_credentials: bool,
    max_response_bytes: u64,
    deadline: Duration,
}

impl HttpPolicy {
    /// Builds the policy; `secrets` resolves `${NAME}` in injected headers.
    pub fn new(
        manifest: &Manifest,
        secrets: &std::collections::BTreeMap<String, String>,
        resolver: Resolver,
    ) -> anyhow::Result<Self> {
        let mut rules = Vec::new();
        for grant in &manifest.grants.http {
            let pattern = HostPattern::parse(&grant.url)?;
            let mut inject = Vec::new();
            let mut hidden = Vec::new();
            for (name, template) in &grant.headers {
                let mut value = template.clone();
                for reference in secrets::references(template) {
                    let secret = secrets
                        .get(reference)
                        .map(String::as_str)
                        .unwrap_or_default();
                    value = value.replace(&format!("${{{reference}}}"), secret);
                    hidden.push(secret.as_bytes().to_vec());
                }
                if value != *template {
                    hidden.push(value.as_bytes().to_vec());
                }
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    anyhow::anyhow!(
                        "grants.http: the value of header {name:?} is not a valid header value"
                    )
                })?;
                value.set_sensitive(true);
                inject.push((HeaderName::from_bytes(name.as_bytes())?, value));
            }
            let tls = match &grant.ca {
                Some(path) => Arc::new(client::with_roots(load_roots(path)?)),
                None => client::public_roots(),
            };
            rules.push(Rule {
                pattern,
                credentials: grant.credentials,
                tls,
                inject,
                redact: Arc::new(Redactions::new(hidden)),
            });
        }
        Ok(Self {
            any_credentials: rules.iter().any(|r| r.credentials),
            rules,
            resolver,
            max_response_bytes: manifest.limits.max_http_response_bytes,
            deadline: manifest.limits.timeout,
        })
    }
}

/// The root certificates in a PEM file (a grant's `ca`).
fn load_roots(path: &std::path::Path) -> anyhow::Result<rustls::RootCertStore> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| {
        anyhow::anyhow!(
            "grants.http: cannot read the CA file {}: {e}",
            path.display()
        )
    })? {
        let cert = cert.map_err(|e| {
            anyhow::anyhow!(
                "grants.http: the CA file {} is not valid PEM: {e}",
                path.display()
            )
        })?;
        roots.add(cert).map_err(|e| {
            anyhow::anyhow!(
                "grants.http: a certificate in {} is unusable: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        anyhow::bail!(
            "grants.http: the CA file {} holds no certificate",
            path.display()
        );
    }
    Ok(roots)
}

/// Per-call gate over the plugin's [`HttpPolicy`].
pub struct HttpGate {
    plugin: Arc<str>,
    policy: Arc<HttpPolicy>,
    /// Denials logged so far in this call; only the first few are logged.
    denials_logged: Arc<std::sync::atomic::AtomicU32>,
    /// Outbound connections open at once for this call.
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// Outbound HTTP connections one call may hold open at once; more wait.
const MAX_IN_FLIGHT: usize = 16;

/// Denials logged per call; a plugin retrying in a loop cannot flood the log.
const MAX_DENIAL_LOGS: u32 = 8;

impl HttpGate {
    /// The gate for one call of `plugin`.
    pub fn new(plugin: Arc<str>, policy: Arc<HttpPolicy>) -> Self {
        Self {
            plugin,
            policy,
            denials_logged: Arc::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }
}

/// Why the gate refused a request; logged, and mapped to a `wasi:http` error code.
#[derive(Debug)]
enum Refusal {
    NotAllowed,
    Credentials,
    Private(IpAddr),
    Unresolvable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed => write!(
                f,
                "no grants.http pattern matches the scheme, host and port"
            ),
            Refusal::Credentials => write!(f, "credential headers are not granted for this host"),
            Refusal::Private(ip) => write!(
                f,
                "the host resolves to the non-public address {ip}, which no pattern names"
            ),
            Refusal::Unresolvable(host) => write!(f, "{host} does not resolve"),
        }
    }
}

impl Refusal {
    fn error(&self) -> HttpError {
        match self {
            Refusal::NotAllowed | Refusal::Credentials => HttpError::HttpRequestDenied,
            Refusal::Private(_) => HttpError::DestinationIpProhibited,
            Refusal::Unresolvable(_) => HttpError::DestinationNotFound,
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        // Credential headers are refused when the guest creates them, unless
        // some grant allows them; `send_request` then checks the destination.
        let allow_credentials = self.policy.any_credentials;
        Arc::new(move |name| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name)
                || (!allow_credentials
                    && (name == AUTHORIZATION || name == COOKIE || name == PROXY_AUTHORIZATION))
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let plugin = self.plugin.clone();
        let policy = self.policy.clone();
        let denials = self.denials_logged.clone();
        let in_flight = self.in_flight.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let admitted = match admit(&policy, request).await {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    if denials.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < MAX_DENIAL_LOGS
                    {
                        tracing::warn!(target: "launch::plugin", plugin = %plugin, %uri, reason = %refusal, "outbound HTTP request denied");
                    }
                    return Err(refusal.error());
                }
            };
            let options = clamp(options, policy.deadline);
            // The permit lives as long as the connection does (inside `io`).
            let permit = in_flight
                .acquire_owned()
                .await
                .map_err(|_| HttpError::ConnectionLimitReached)?;
            let Admitted {
                request,
                addr,
                tls,
                redact,
            } = admitted;
            let (response, io) = client::send(request, addr, tls, options).await?;
            let io = async move {
                let _permit = permit;
                io.await
            };
            let limit = policy.max_response_bytes;
            let mut response = response.map(|body| {
                LimitedBody {
                    inner: body.boxed_unsync(),
                    remaining: limit,
                    limit,
                }
                .boxed_unsync()
            });
            if !redact.is_empty() {
                // A body the host cannot read as sent is refused, not passed on.
                if let Some(coding) = response
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .filter(|c| !c.as_bytes().eq_ignore_ascii_case(b"identity"))
                {
                    return Err(HttpError::HttpResponseContentCoding(Some(
                        String::from_utf8_lossy(coding.as_bytes()).into_owned(),
                    )));
                }
                redact.headers(response.headers_mut());
                // Redaction changes the length; the body is sent chunked instead.
                response.headers_mut().remove(http::header::CONTENT_LENGTH);
                response = response.map(|body| {
                    RedactingBody {
                        inner: body,
                        redact,
                        carry: Vec::new(),
                    }
                    .boxed_unsync()
                });
            }
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// A request the policy let through, with where and how to send it.
struct Admitted {
    request: http::Request<WasiBody>,
    /// The address that was checked: the only one the request may go to.
    addr: SocketAddr,
    tls: Option<client::Tls>,
    /// What must be redacted from the response.
    redact: Arc<Redactions>,
}

/// Applies the policy to one request.
async fn admit(
    policy: &HttpPolicy,
    mut request: http::Request<WasiBody>,
) -> Result<Admitted, Refusal> {
    let uri = request.uri().clone();
    // User info in the authority (`a@host`) is a classic parser differential.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Refusal::NotAllowed);
    }
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().ok_or(Refusal::NotAllowed)?.to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    let rule = policy
        .rules
        .iter()
        .find(|r| r.pattern.matches(&scheme, &host, port))
        .ok_or(Refusal::NotAllowed)?;
    let headers = request.headers();
    if !rule.credentials
        && [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION]
            .iter()
            .any(|h| headers.contains_key(h))
    {
        return Err(Refusal::Credentials);
    }

    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare_host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            MAX_CONNECT_TIMEOUT,
            policy.resolver.resolve(bare_host, port),
        )
        .await
        .map_err(|_| Refusal::Unresolvable(host.clone()))?
        .map_err(|_| Refusal::Unresolvable(host.clone()))?,
    };
    let first = check_destination(&rule.pattern, &addrs).map_err(|e| match e {
        Some(ip) => Refusal::Private(ip),
        None => Refusal::Unresolvable(host.clone()),
    })?;

    for (name, value) in &rule.inject {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    if !rule.redact.is_empty() {
        // What the server sends back must be plain bytes the redaction can
        // read whole: no compression, no byte ranges that cut a secret in
        // pieces across requests.
        let headers = request.headers_mut();
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        for name in [
            http::header::RANGE,
            http::header::IF_RANGE,
            http::header::TE,
        ] {
            headers.remove(name);
        }
    }
    let tls = match scheme.as_str() {
        "https" => Some(client::Tls {
            name: match bare_host.parse::<IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                    .map_err(|_| Refusal::NotAllowed)?,
            },
            config: rule.tls.clone(),
        }),
        _ => None,
    };
    Ok(Admitted {
        request,
        addr: first,
        tls,
        redact: rule.redact.clone(),
    })
}

/// The address to connect to, if every resolved address is allowed: public,
/// or the pattern names a private host itself. `Err(Some(ip))` names the first
/// forbidden address, `Err(None)` means nothing resolved.
fn check_destination(
    pattern: &HostPattern,
    addrs: &[SocketAddr],
) -> Result<SocketAddr, Option<IpAddr>> {
    let first = *addrs.first().ok_or(None)?;
    if pattern.is_localhost()
        && let Some(other) = addrs.iter().find(|a| !a.ip().is_loopback())
    {
        return Err(Some(other.ip()));
    }
    if !pattern.names_private_host()
        && let Some(private) = addrs.iter().find(|a| !is_public(a.ip()))
    {
        return Err(Some(private.ip()));
    }
    Ok(first)
}

/// Caps each timeout the guest asked for at the call's deadline (and the
/// connect timeout at [`MAX_CONNECT_TIMEOUT`]); wasi-http's defaults are 600 s.
fn clamp(options: Option<RequestOptions>, deadline: Duration) -> RequestOptions {
    let pick = |asked: Option<Duration>, cap: Duration| asked.map_or(cap, |a| a.min(cap));
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: Some(pick(
            options.connect_timeout,
            MAX_CONNECT_TIMEOUT.min(deadline),
        )),
        first_byte_timeout: Some(pick(options.first_byte_timeout, deadline)),
        between_bytes_timeout: Some(pick(options.between_bytes_timeout, deadline)),
    }
}

/// A response body that fails once more than `limit` bytes have arrived.
struct LimitedBody {
    inner: WasiBody,
    remaining: u64,
    limit: u64,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            self.limit,
                        )))));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body with the injected secrets blanked out, also where one
/// spans two frames (the last `longest - 1` bytes wait for the next frame).
struct RedactingBody {
    inner: WasiBody,
    redact: Arc<Redactions>,
    carry: Vec<u8>,
}

impl Body for RedactingBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        loop {
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let mut pending = std::mem::take(&mut self.carry);
                        pending.extend_from_slice(&data);
                        let mut clean = self.redact.apply(&pending);
                        let keep = self.redact.longest.saturating_sub(1).min(clean.len());
                        self.carry = clean.split_off(clean.len() - keep);
                        if clean.is_empty() {
                            continue;
                        }
                        Poll::Ready(Some(Ok(Frame::data(clean.into()))))
                    }
                    Err(frame) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                        Ok(mut trailers) => {
                            self.redact.headers(&mut trailers);
                            Frame::trailers(trailers)
                        }
                        Err(frame) => frame,
                    }))),
                },
                Poll::Ready(None) if !self.carry.is_empty() => {
                    let rest = std::mem::take(&mut self.carry);
                    Poll::Ready(Some(Ok(Frame::data(rest.into()))))
                }
                other => other,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.carry.is_empty() && self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_also_across_frame_boundaries() {
        let redact = Redactions::new([
            b"s3cr3t-token".to_vec(),
            b"Bearer s3cr3t-token".to_vec(),
            b"abc".to_vec(),
        ]);
        assert_eq!(
            redact.apply(b"auth: Bearer s3cr3t-token; raw s3cr3t-token; abc"),
            b"auth: [REDACTED]; raw [REDACTED]; abc".to_vec()
        );
        let text = b"xx s3cr3t-token yy s3cr3t-token".to_vec();
        for split in 0..text.len() {
            let mut body = RedactingBody {
                inner: http_body_util::StreamBody::new(futures::stream::iter([
                    Ok::<_, HttpError>(Frame::data(Bytes::copy_from_slice(&text[..split]))),
                    Ok(Frame::data(Bytes::copy_from_slice(&text[split..]))),
                ]))
                .boxed_unsync(),
                redact: Arc::new(Redactions::new([b"s3cr3t-token".to_vec()])),
                carry: Vec::new(),
            };
            let mut out = Vec::new();
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
                out.extend_from_slice(&frame.unwrap().into_data().unwrap());
            }
            assert_eq!(
                out,
                b"xx [REDACTED] yy [REDACTED]".to_vec(),
                "split at {split}"
            );
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn names_that_resolve_to_private_addresses_are_refused() {
        let by_name = HostPattern::parse("https://*.example.com").unwrap();
        assert!(check_destination(&by_name, &addrs(&["93.184.216.34:443"])).is_ok());
        // DNS for an allowed name pointing inside (SSRF): refused, even if only one answer is private.
        assert_eq!(
            check_destination(
                &by_name,
                &addrs(&["93.184.216.34:443", "169.254.169.254:443"])
            ),
            Err(Some("169.254.169.254".parse().unwrap()))
        );
        assert_eq!(check_destination(&by_name, &[]), Err(None));
    }

    #[test]
    fn patterns_naming_private_hosts_reach_them() {
        let literal = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(check_destination(&literal, &addrs(&["127.0.0.1:8080"])).is_ok());
        let localhost = HostPattern::parse("http://localhost:8080").unwrap();
        assert!(check_destination(&localhost, &addrs(&["127.0.0.1:8080", "[::1]:8080"])).is_ok());
        // `localhost` names loopback only, not whatever a resolver answers.
        assert!(check_destination(&localhost, &addrs(&["10.0.0.5:8080"])).is_err());
    }

    #[test]
    fn timeouts_are_clamped_to_the_deadline() {
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: None,
            between_bytes_timeout: Some(Duration::from_millis(5)),
        };
        let o = clamp(Some(asked), Duration::from_secs(3));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.first_byte_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.between_bytes_timeout, Some(Duration::from_millis(5)));
    }
}
