//! The fetch logic, independent of WASI: validating the options, preparing
//! headers, following redirects by issuing new requests (each of which the host
//! checks against the allowlist again), decoding the body, and turning failures
//! into messages the model can act on. The actual I/O goes through [`Transport`],
//! implemented over `wasi:http` in `transport.rs` and by a fake in the tests.

use wasip2::http::types::ErrorCode;

use crate::url::Url;

/// Default `max-bytes`: 256 KiB.
pub const DEFAULT_MAX_BYTES: u32 = 256 * 1024;
/// Largest `max-bytes`.
pub const MAX_MAX_BYTES: u32 = 512 * 1024;
/// Default `timeout-ms`.
pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
/// Largest `timeout-ms`; the manifest's `limits.timeout_ms` must stay above it.
pub const MAX_TIMEOUT_MS: u32 = 25_000;
/// Largest request body.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// The `user-agent` sent unless the caller sets one.
pub const USER_AGENT: &str = concat!(
    "Launch-http-fetch/",
    env!("CARGO_PKG_VERSION"),
    " (AI agent tool)"
);

/// Request headers a guest may not set: the host's HTTP client manages them
/// (wasmtime-wasi-http's default forbidden list) or they make no sense here.
const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
    "te",
    "trailer",
];

/// Request headers the tool sets itself; values given by the caller are ignored.
const MANAGED_HEADERS: &[&str] = &["content-length", "accept-encoding"];

/// Headers not forwarded to another origin when following a redirect.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// The request methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
}

impl Method {
    /// The method name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }
}

/// The caller's options, as received.
#[derive(Debug, Clone)]
pub struct Options {
    /// The method.
    pub method: Method,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<String>,
    /// Response body limit.
    pub max_bytes: Option<u32>,
    /// Overall time limit.
    pub timeout_ms: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::Get,
            headers: Vec::new(),
            body: None,
            max_bytes: None,
            timeout_ms: None,
        }
    }
}

/// One request as handed to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Where to.
    pub url: Url,
    /// All headers to send, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// The most body bytes to read.
    pub max_bytes: usize,
}

/// What the transport got back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Up to `max_bytes` of the body; empty when it was not read (HEAD, redirects).
    pub body: Vec<u8>,
    /// Whether the body went on past `max_bytes`.
    pub truncated: bool,
}

/// Why a transport call failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A `wasi:http` error code, from the host or the network.
    Http(ErrorCode),
    /// The overall deadline passed; `body_bytes` is set when it passed while the
    /// body was being read.
    Timeout {
        /// Body bytes received before the deadline, if the body was being read.
        body_bytes: Option<usize>,
    },
    /// Anything else, already phrased for the model.
    Other(String),
}

/// Performs single HTTP requests.
pub trait Transport {
    /// Sends one request and returns the response. The body is read only when
    /// [`should_read_body`] says so.
    fn send(&mut self, request: &Request) -> Result<Response, Failure>;
}

/// A validated fetch, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    first: Request,
    /// The time budget for the whole fetch, in milliseconds.
    pub timeout_ms: u32,
}

/// The result of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Status code of the final response.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body as text.
    pub body: String,
    /// Whether the body was cut.
    pub truncated: bool,
    /// The URL that produced it.
    pub final_url: String,
}

impl Plan {
    /// Validates the URL and options.
    pub fn new(url: &str, options: Options) -> Result<Plan, String> {
        let url = Url::parse(url)?;
        let max_bytes = match options.max_bytes {
            None => DEFAULT_MAX_BYTES,
            Some(n) if (1..=MAX_MAX_BYTES).contains(&n) => n,
            Some(n) => {
                return Err(format!(
                    "options.max-bytes = {n} is out of range; use a value from 1 to {MAX_MAX_BYTES} \
                     (default {DEFAULT_MAX_BYTES})"
                ));
            }
        };
        let timeout_ms = match options.timeout_ms {
            None => DEFAULT_TIMEOUT_MS,
            Some(n) if (1..=MAX_TIMEOUT_MS).contains(&n) => n,
            Some(n) => {
                return Err(format!(
                    "options.timeout-ms = {n} is out of range; use a value from 1 to {MAX_TIMEOUT_MS} \
                     (default {DEFAULT_TIMEOUT_MS})"
                ));
            }
        };
        let body = match options.body {
            Some(_) if options.method == Method::Head => {
                return Err(
                    "a `head` request cannot have a body; remove options.body or use another method"
                        .into(),
                );
            }
            Some(body) if body.len() > MAX_REQUEST_BODY => {
                return Err(format!(
                    "options.body is {} bytes long; the limit is {MAX_REQUEST_BODY} bytes",
                    body.len()
                ));
            }
            Some(body) => Some(body.into_bytes()),
            None => None,
        };
        let headers = prepare_headers(&options.headers, options.method, body.as_deref())?;
        Ok(Plan {
            first: Request {
                method: options.method,
                url,
                headers,
                body,
                max_bytes: max_bytes as usize,
            },
            timeout_ms,
        })
    }

    /// The first request.
    pub fn request(&self) -> &Request {
        &self.first
    }

    /// Sends the request through `transport`, following up to [`MAX_REDIRECTS`]
    /// redirects with new requests.
    pub fn run(self, transport: &mut dyn Transport) -> Result<Outcome, String> {
        let original = self.first.url.clone();
        let mut request = self.first;
        let mut redirects = 0;
        loop {
            let response = transport
                .send(&request)
                .map_err(|f| describe_failure(&f, &request.url, &original, self.timeout_ms))?;
            let Some(location) = redirect_location(response.status, &response.headers) else {
                let body = decode_body(&response.body, response.truncated);
                return Ok(Outcome {
                    status: response.status,
                    headers: response.headers,
                    body,
                    truncated: response.truncated,
                    final_url: request.url.to_string(),
                });
            };
            let next_url = request.url.join(location).map_err(|e| {
                format!(
                    "{} answered {} with a redirect to {location:?}, which cannot be followed: {e}",
                    request.url, response.status
                )
            })?;
            if redirects == MAX_REDIRECTS {
                return Err(format!(
                    "too many redirects: gave up after following {MAX_REDIRECTS}, starting at \
                     {original}; the last one, from {}, pointed to {next_url}. The site may be \
                     redirecting in a loop; fetch the final URL directly if you trust it",
                    request.url
                ));
            }
            request = redirected(request, response.status, next_url);
            redirects += 1;
        }
    }
}

/// The `Location` of a redirect response that should be followed.
pub fn redirect_location(status: u16, headers: &[(String, String)]) -> Option<&str> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the transport should read the response body: not for HEAD, and not
/// for a redirect that will be followed.
pub fn should_read_body(method: Method, status: u16, headers: &[(String, String)]) -> bool {
    method != Method::Head && redirect_location(status, headers).is_none()
}

/// The request that follows a redirect with `status` to `url`, per RFC 9110
/// §15.4 and what browsers do: 303 turns into GET (HEAD stays HEAD), 301 and 302
/// turn POST into GET, 307 and 308 keep method and body. Credentials are not
/// sent to another origin.
fn redirected(previous: Request, status: u16, url: Url) -> Request {
    let method = match (status, previous.method) {
        (303, Method::Head) => Method::Head,
        (303, _) | (301 | 302, Method::Post) => Method::Get,
        (_, method) => method,
    };
    let keep_body = method == previous.method;
    let cross_origin = !previous.url.same_origin(&url);
    let headers = previous
        .headers
        .into_iter()
        .filter(|(name, _)| !(cross_origin && CREDENTIAL_HEADERS.contains(&name.as_str())))
        .filter(|(name, _)| {
            keep_body || !matches!(name.as_str(), "content-type" | "content-length")
        })
        .collect();
    Request {
        method,
        url,
        headers,
        body: if keep_body { previous.body } else { None },
        max_bytes: previous.max_bytes,
    }
}

/// Validates the caller's headers and adds the ones the tool manages.
pub fn prepare_headers(
    given: &[(String, String)],
    method: Method,
    body: Option<&[u8]>,
) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(given.len() + 4);
    for (name, value) in given {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!(
                "header name {name:?} is not valid: use letters, digits and `-` only, e.g. \
                 \"accept\" or \"x-api-key\""
            ));
        }
        if FORBIDDEN_HEADERS.contains(&name.as_str()) {
            return Err(format!(
                "header {name:?} cannot be set: the host's HTTP client manages it; remove it \
                 from options.headers"
            ));
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(format!(
                "the value of header {name:?} contains a line break or NUL character, which \
                 is not allowed; put it on one line"
            ));
        }
        if MANAGED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        headers.push((name, value.trim().to_string()));
    }
    let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n == name);
    if !has(&headers, "user-agent") {
        headers.push(("user-agent".into(), USER_AGENT.into()));
    }
    if !has(&headers, "accept") {
        headers.push(("accept".into(), "*/*".into()));
    }
    // The tool cannot decompress, so ask for the plain representation.
    headers.push(("accept-encoding".into(), "identity".into()));
    match body {
        Some(body) => headers.push(("content-length".into(), body.len().to_string())),
        None if matches!(method, Method::Post | Method::Put | Method::Patch) => {
            headers.push(("content-length".into(), "0".into()));
        }
        None => {}
    }
    Ok(headers)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes a body as UTF-8, replacing invalid bytes; when it was cut, a
/// character split by the cut is dropped instead of shown as garbage.
pub fn decode_body(body: &[u8], truncated: bool) -> String {
    let mut end = body.len();
    if truncated {
        // Back up over a partial UTF-8 sequence at the end, if there is one.
        let mut i = body.len();
        let mut continuation = 0;
        while i > 0 && continuation < 3 && body[i - 1] & 0xC0 == 0x80 {
            i -= 1;
            continuation += 1;
        }
        if i > 0 {
            let lead = body[i - 1];
            let needed = match lead {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            if needed > 1 && continuation + 1 < needed {
                end = i - 1;
            }
        }
    }
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Turns a transport failure into a message for the model.
pub fn describe_failure(failure: &Failure, url: &Url, original: &Url, timeout_ms: u32) -> String {
    let via = if url == original {
        String::new()
    } else {
        format!(" (reached by a redirect from {original})")
    };
    match failure {
        Failure::Timeout { body_bytes: None } => format!(
            "timed out after {timeout_ms} ms waiting for {url}{via} to answer; the server is slow \
             or unreachable. Retry later, or raise options.timeout-ms (at most {MAX_TIMEOUT_MS})"
        ),
        Failure::Timeout {
            body_bytes: Some(n),
        } => format!(
            "timed out after {timeout_ms} ms while reading the response body of {url}{via} \
             ({n} bytes received); raise options.timeout-ms (at most {MAX_TIMEOUT_MS}) or lower \
             options.max-bytes to read less"
        ),
        Failure::Other(message) => format!("the request to {url}{via} failed: {message}"),
        Failure::Http(code) => describe_error_code(code, url, &via, timeout_ms),
    }
}

fn describe_error_code(code: &ErrorCode, url: &Url, via: &str, timeout_ms: u32) -> String {
    let host = url.host();
    match code {
        ErrorCode::HttpRequestDenied => format!(
            "the host denied the request to {url}: this plugin's manifest does not allow it; \
             ask the operator to add it to [grants] http (e.g. \"{}\"){via}",
            url.origin()
        ),
        ErrorCode::DnsTimeout => {
            format!("looking up the host name {host:?} of {url}{via} timed out; retry later")
        }
        ErrorCode::DnsError(payload) => {
            let detail = match (&payload.rcode, &payload.info_code) {
                (Some(rcode), _) => format!(" ({rcode})"),
                (None, Some(info)) => format!(" (info code {info})"),
                (None, None) => String::new(),
            };
            format!(
                "the host name {host:?} of {url}{via} could not be resolved{detail}; check the \
                 spelling of the host name"
            )
        }
        ErrorCode::DestinationNotFound => format!(
            "the host name {host:?} of {url}{via} does not exist; check the spelling of the URL"
        ),
        ErrorCode::DestinationUnavailable | ErrorCode::ConnectionRefused => format!(
            "could not connect to {}{via}: the server refused the connection or is down; check \
             the port, or retry later",
            url.origin()
        ),
        ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => format!(
            "the host refused to connect to the address of {url}{via}: connections to that IP \
             address are not allowed or not possible from here"
        ),
        ErrorCode::ConnectionTimeout => format!(
            "connecting to {}{via} timed out (budget {timeout_ms} ms); the server may be down or \
             unreachable; retry later",
            url.origin()
        ),
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => format!(
            "{url}{via} did not answer within {timeout_ms} ms; retry later, or raise \
             options.timeout-ms (at most {MAX_TIMEOUT_MS})"
        ),
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => format!(
            "the connection to {}{via} was closed before the response was complete; retry",
            url.origin()
        ),
        ErrorCode::ConnectionLimitReached => format!(
            "too many connections are open to {}{via}; retry in a moment",
            url.origin()
        ),
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => {
            let detail = match code {
                ErrorCode::TlsCertificateError => "the server's certificate is not valid".into(),
                ErrorCode::TlsAlertReceived(alert) => format!(
                    "the server sent TLS alert {}",
                    alert
                        .alert_message
                        .clone()
                        .or_else(|| alert.alert_id.map(|id| id.to_string()))
                        .unwrap_or_else(|| "without details".into())
                ),
                _ => "the TLS handshake failed".into(),
            };
            format!(
                "the secure (https) connection to {}{via} failed: {detail}; check that the site \
                 serves https on this port",
                url.origin()
            )
        }
        ErrorCode::HttpRequestUriInvalid => {
            format!("the URL {url}{via} was rejected as invalid; check its syntax")
        }
        ErrorCode::HttpRequestUriTooLong => {
            format!("the URL {url}{via} is too long; shorten the query string")
        }
        ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
            format!(
                "the request headers for {url}{via} are too large; send fewer or shorter headers"
            )
        }
        ErrorCode::HttpRequestBodySize(_) | ErrorCode::HttpRequestLengthRequired => {
            format!("{url}{via} rejected the request body size; check options.body")
        }
        ErrorCode::HttpRequestMethodInvalid => {
            format!("the request method was rejected for {url}{via}")
        }
        ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => {
            format!("the response from {url}{via} has headers too large to handle")
        }
        ErrorCode::HttpResponseBodySize(_) => {
            format!("the response body from {url}{via} is larger than the host allows")
        }
        ErrorCode::HttpResponseTransferCoding(coding)
        | ErrorCode::HttpResponseContentCoding(coding) => format!(
            "the response from {url}{via} uses an encoding that cannot be decoded{}",
            coding
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ),
        ErrorCode::HttpProtocolError | ErrorCode::HttpUpgradeFailed => format!(
            "HTTP protocol error talking to {}{via}; the server may not speak {} on this port",
            url.origin(),
            url.scheme().as_str()
        ),
        ErrorCode::LoopDetected => format!("a request loop was detected for {url}{via}"),
        ErrorCode::ConfigurationError => format!(
            "the request to {url}{via} failed because of a configuration error in the host's \
             HTTP client; tell the operator"
        ),
        ErrorCode::HttpRequestTrailerSectionSize(_)
        | ErrorCode::HttpRequestTrailerSize(_)
        | ErrorCode::HttpResponseTrailerSectionSize(_)
        | ErrorCode::HttpResponseTrailerSize(_) => {
            format!("the request to {url}{via} failed: HTTP trailers too large")
        }
        ErrorCode::InternalError(message) => format!(
            "the request to {url}{via} failed: {}",
            message
                .as_deref()
                .unwrap_or("internal error in the host's HTTP client")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Replays canned responses and records the requests it got.
    struct Fake {
        replies: VecDeque<Result<Response, Failure>>,
        seen: Vec<Request>,
    }

    impl Fake {
        fn new(replies: Vec<Result<Response, Failure>>) -> Fake {
            Fake {
                replies: replies.into(),
                seen: Vec::new(),
            }
        }
    }

    impl Transport for Fake {
        fn send(&mut self, request: &Request) -> Result<Response, Failure> {
            self.seen.push(request.clone());
            self.replies.pop_front().expect("unexpected request")
        }
    }

    fn ok(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Response, Failure> {
        Ok(Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        })
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn simple_get() {
        let plan = Plan::new("https://example.com/a", Options::default()).unwrap();
        assert_eq!(plan.timeout_ms, DEFAULT_TIMEOUT_MS);
        let mut fake = Fake::new(vec![ok(200, &[("content-type", "text/plain")], "hi")]);
        let out = plan.run(&mut fake).unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(out.body, "hi");
        assert!(!out.truncated);
        assert_eq!(out.final_url, "https://example.com/a");
        let sent = &fake.seen[0];
        assert_eq!(sent.method, Method::Get);
        assert_eq!(sent.max_bytes, DEFAULT_MAX_BYTES as usize);
        assert_eq!(header(sent, "user-agent"), Some(USER_AGENT));
        assert_eq!(header(sent, "accept"), Some("*/*"));
        assert_eq!(header(sent, "accept-encoding"), Some("identity"));
        assert_eq!(header(sent, "content-length"), None);
    }

    #[test]
    fn error_statuses_are_results_not_errors() {
        let plan = Plan::new("https://example.com/missing", Options::default()).unwrap();
        let mut fake = Fake::new(vec![ok(404, &[], "not here")]);
        let out = plan.run(&mut fake).unwrap();
        assert_eq!(out.status, 404);
        assert_eq!(out.body, "not here");
    }

    #[test]
    fn follows_redirects_with_new_requests() {
        let options = Options {
            method: Method::Post,
            headers: vec![
                ("Authorization".into(), "Bearer secret".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Some("{}".into()),
            ..Options::default()
        };
        let plan = Plan::new("https://a.example/start", options).unwrap();
        let mut fake = Fake::new(vec![
            ok(307, &[("location", "/again")], ""),
            ok(302, &[("location", "https://b.example/next")], ""),
            ok(308, &[("location", "final?x=1")], ""),
            ok(200, &[], "done"),
        ]);
        let out = plan.run(&mut fake).unwrap();
        assert_eq!(out.final_url, "https://b.example/final?x=1");
        assert_eq!(out.body, "done");
        let seen = &fake.seen;
        // 307 keeps method, body and (same origin) credentials.
        assert_eq!(seen[1].url.to_string(), "https://a.example/again");
        assert_eq!(seen[1].method, Method::Post);
        assert_eq!(seen[1].body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(header(&seen[1], "authorization"), Some("Bearer secret"));
        // 302 turns POST into GET, drops the body and, cross-origin, credentials.
        assert_eq!(seen[2].method, Method::Get);
        assert_eq!(seen[2].body, None);
        assert_eq!(header(&seen[2], "authorization"), None);
        assert_eq!(header(&seen[2], "content-type"), None);
        assert_eq!(header(&seen[2], "content-length"), None);
        assert_eq!(header(&seen[2], "user-agent"), Some(USER_AGENT));
        assert_eq!(seen[3].method, Method::Get);
    }

    #[test]
    fn see_other_turns_into_get_but_head_stays_head() {
        let head = Options {
            method: Method::Head,
            ..Options::default()
        };
        let plan = Plan::new("https://a.example/", head).unwrap();
        let mut fake = Fake::new(vec![ok(303, &[("location", "/b")], ""), ok(200, &[], "")]);
        plan.run(&mut fake).unwrap();
        assert_eq!(fake.seen[1].method, Method::Head);

        let put = Options {
            method: Method::Put,
            body: Some("x".into()),
            ..Options::default()
        };
        let plan = Plan::new("https://a.example/", put).unwrap();
        let mut fake = Fake::new(vec![ok(303, &[("location", "/b")], ""), ok(200, &[], "")]);
        plan.run(&mut fake).unwrap();
        assert_eq!(fake.seen[1].method, Method::Get);
        assert_eq!(fake.seen[1].body, None);
    }

    #[test]
    fn redirect_without_location_is_returned() {
        let plan = Plan::new("https://a.example/", Options::default()).unwrap();
        let mut fake = Fake::new(vec![ok(302, &[], "moved somewhere")]);
        let out = plan.run(&mut fake).unwrap();
        assert_eq!(out.status, 302);
        assert_eq!(out.body, "moved somewhere");
        // 304 and 300 are not followed either.
        assert!(redirect_location(304, &[("location".into(), "/x".into())]).is_none());
    }

    #[test]
    fn too_many_redirects() {
        let plan = Plan::new("https://a.example/0", Options::default()).unwrap();
        let replies = (1..=6)
            .map(|i| ok(301, &[("location", &format!("/{i}"))], ""))
            .collect();
        let mut fake = Fake::new(replies);
        let err = plan.run(&mut fake).unwrap_err();
        assert!(err.contains("too many redirects"), "{err}");
        assert!(err.contains("https://a.example/6"), "{err}");
        assert_eq!(fake.seen.len(), 6);
    }

    #[test]
    fn redirect_to_other_schemes_is_refused() {
        let plan = Plan::new("https://a.example/", Options::default()).unwrap();
        let mut fake = Fake::new(vec![ok(302, &[("location", "ftp://files.example/x")], "")]);
        let err = plan.run(&mut fake).unwrap_err();
        assert!(err.contains("cannot be followed"), "{err}");
    }

    #[test]
    fn denial_names_the_url_and_the_fix() {
        let plan = Plan::new("https://a.example/", Options::default()).unwrap();
        let mut fake = Fake::new(vec![
            ok(302, &[("location", "https://evil.example/x")], ""),
            Err(Failure::Http(ErrorCode::HttpRequestDenied)),
        ]);
        let err = plan.run(&mut fake).unwrap_err();
        assert!(
            err.starts_with(
                "the host denied the request to https://evil.example/x: this plugin's manifest \
                 does not allow it; ask the operator to add it to [grants] http"
            ),
            "{err}"
        );
        assert!(err.contains("\"https://evil.example\""), "{err}");
        assert!(err.contains("redirect from https://a.example/"), "{err}");
    }

    #[test]
    fn timeouts_and_other_failures() {
        let url = Url::parse("https://a.example/").unwrap();
        let msg = describe_failure(&Failure::Timeout { body_bytes: None }, &url, &url, 1500);
        assert!(msg.contains("timed out after 1500 ms"), "{msg}");
        assert!(!msg.contains("redirect"), "{msg}");
        let msg = describe_failure(
            &Failure::Timeout {
                body_bytes: Some(42),
            },
            &url,
            &url,
            1500,
        );
        assert!(msg.contains("42 bytes received"), "{msg}");
        let msg = describe_failure(
            &Failure::Http(ErrorCode::DnsError(wasip2::http::types::DnsErrorPayload {
                rcode: Some("NXDOMAIN".into()),
                info_code: None,
            })),
            &url,
            &url,
            1500,
        );
        assert!(msg.contains("could not be resolved (NXDOMAIN)"), "{msg}");
        let msg = describe_failure(
            &Failure::Http(ErrorCode::TlsCertificateError),
            &url,
            &url,
            1500,
        );
        assert!(msg.contains("certificate"), "{msg}");
        let msg = describe_failure(
            &Failure::Http(ErrorCode::InternalError(Some("boom".into()))),
            &url,
            &url,
            1500,
        );
        assert!(msg.ends_with("failed: boom"), "{msg}");
    }

    #[test]
    fn option_validation() {
        let err = Plan::new("notaurl", Options::default()).unwrap_err();
        assert!(err.contains("no scheme"), "{err}");
        let bad = |options: Options| Plan::new("https://a.example/", options).unwrap_err();
        let err = bad(Options {
            max_bytes: Some(0),
            ..Options::default()
        });
        assert!(err.contains("max-bytes"), "{err}");
        let err = bad(Options {
            max_bytes: Some(MAX_MAX_BYTES + 1),
            ..Options::default()
        });
        assert!(err.contains("max-bytes"), "{err}");
        let err = bad(Options {
            timeout_ms: Some(MAX_TIMEOUT_MS + 1),
            ..Options::default()
        });
        assert!(err.contains("timeout-ms"), "{err}");
        let err = bad(Options {
            method: Method::Head,
            body: Some("x".into()),
            ..Options::default()
        });
        assert!(err.contains("cannot have a body"), "{err}");
        let err = bad(Options {
            body: Some("x".repeat(MAX_REQUEST_BODY + 1)),
            method: Method::Post,
            ..Options::default()
        });
        assert!(err.contains("limit"), "{err}");
        let plan = Plan::new(
            "https://a.example/",
            Options {
                max_bytes: Some(10),
                timeout_ms: Some(500),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(plan.request().max_bytes, 10);
        assert_eq!(plan.timeout_ms, 500);
    }

    #[test]
    fn header_preparation() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let out = prepare_headers(
            &h(&[
                ("User-Agent", "me/1.0"),
                ("Accept", "application/json"),
                ("Accept-Encoding", "gzip"),
                ("Content-Length", "999"),
                ("X-Api-Key", "  k  "),
            ]),
            Method::Post,
            Some(b"abc"),
        )
        .unwrap();
        assert_eq!(
            out,
            h(&[
                ("user-agent", "me/1.0"),
                ("accept", "application/json"),
                ("x-api-key", "k"),
                ("accept-encoding", "identity"),
                ("content-length", "3"),
            ])
        );
        let out = prepare_headers(&[], Method::Post, None).unwrap();
        assert!(out.contains(&("content-length".into(), "0".into())));
        let out = prepare_headers(&[], Method::Delete, None).unwrap();
        assert!(!out.iter().any(|(n, _)| n == "content-length"));
        let err = prepare_headers(&h(&[("Host", "x")]), Method::Get, None).unwrap_err();
        assert!(err.contains("cannot be set"), "{err}");
        let err = prepare_headers(&h(&[("bad name", "x")]), Method::Get, None).unwrap_err();
        assert!(err.contains("not valid"), "{err}");
        let err = prepare_headers(&h(&[("x-a", "1\r\nx-b: 2")]), Method::Get, None).unwrap_err();
        assert!(err.contains("line break"), "{err}");
    }

    #[test]
    fn body_reading_decisions() {
        let loc = vec![("location".to_string(), "/x".to_string())];
        assert!(should_read_body(Method::Get, 200, &[]));
        assert!(!should_read_body(Method::Head, 200, &[]));
        assert!(!should_read_body(Method::Get, 301, &loc));
        assert!(should_read_body(Method::Get, 301, &[]));
    }

    #[test]
    fn body_decoding() {
        assert_eq!(decode_body(b"plain", false), "plain");
        assert_eq!(decode_body(b"a\xffb", false), "a\u{FFFD}b");
        let euro = "x€".as_bytes();
        assert_eq!(decode_body(&euro[..3], true), "x");
        assert_eq!(decode_body(&euro[..2], true), "x");
        assert_eq!(decode_body(euro, true), "x€");
        // Not truncated: a partial character at the end is shown as replaced.
        assert_eq!(decode_body(&euro[..3], false), "x\u{FFFD}");
    }
}
