//! [`Transport`] over `wasi:http/outgoing-handler`: one request per call, no
//! redirect following (the caller issues a new request per redirect, which the
//! host checks against the allowlist again), everything bounded by one deadline.
//!
//! Child resources (pollables, streams, header fields) are always dropped before
//! their parents: the host traps when a parent goes first.

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    self as http, Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse,
    OutgoingBody, OutgoingRequest, RequestOptions,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::fetch::{Failure, Method, Request, Response, Transport, should_read_body};
use crate::url::Scheme;

/// Largest chunk read or written at once.
const CHUNK: u64 = 64 * 1024;

/// Sends requests with `wasi:http`, all before one deadline.
pub struct WasiTransport {
    /// Monotonic-clock instant (nanoseconds) by which everything must be done.
    deadline: u64,
}

impl WasiTransport {
    /// A transport whose requests must all finish within `timeout_ms` from now.
    pub fn new(timeout_ms: u32) -> WasiTransport {
        WasiTransport {
            deadline: monotonic_clock::now().saturating_add(u64::from(timeout_ms) * 1_000_000),
        }
    }

    fn remaining(&self) -> u64 {
        self.deadline.saturating_sub(monotonic_clock::now()).max(1)
    }

    /// Waits until `pollable` is ready (true) or the deadline passes (false).
    fn wait(&self, pollable: &Pollable) -> bool {
        let timer = monotonic_clock::subscribe_instant(self.deadline);
        let ready = poll(&[pollable, &timer]);
        ready.contains(&0)
    }
}

impl Transport for WasiTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Failure> {
        let outgoing = build_request(request)?;
        let body = match &request.body {
            Some(_) => Some(
                outgoing
                    .body()
                    .map_err(|()| Failure::Other("the request body could not be opened".into()))?,
            ),
            None => None,
        };
        let options = RequestOptions::new();
        let budget = self.remaining();
        // A host may not support some of these; the deadline below still applies.
        let _ = options.set_connect_timeout(Some(budget));
        let _ = options.set_first_byte_timeout(Some(budget));
        let _ = options.set_between_bytes_timeout(Some(budget));
        let future = outgoing_handler::handle(outgoing, Some(options)).map_err(Failure::Http)?;

        let written = match (body, &request.body) {
            (Some(body), Some(bytes)) => self.write_body(body, bytes),
            _ => Ok(()),
        };
        // If the body could not be sent, the response usually says why (for
        // example a denial by the host), so prefer its error. A server may also
        // answer before reading the whole body (e.g. 401 or 413): that answer is
        // the result.
        let response = self.wait_response(&future);
        drop(future);
        let response = match (response, written) {
            (Err(failure), _) | (Ok(_), Err(failure @ Failure::Timeout { .. })) => {
                return Err(failure);
            }
            (Ok(response), _) => response,
        };
        self.read_response(response, request)
    }
}

impl WasiTransport {
    fn write_body(&self, body: OutgoingBody, bytes: &[u8]) -> Result<(), Failure> {
        let stream = body
            .write()
            .map_err(|()| Failure::Other("the request body stream could not be opened".into()))?;
        let result = self.write_all(&stream, bytes);
        drop(stream);
        match result {
            Ok(()) => OutgoingBody::finish(body, None).map_err(Failure::Http),
            // Dropping the body unfinished tells the host the upload failed.
            Err(failure) => {
                drop(body);
                Err(failure)
            }
        }
    }

    fn write_all(&self, stream: &OutputStream, mut bytes: &[u8]) -> Result<(), Failure> {
        let pollable = stream.subscribe();
        while !bytes.is_empty() {
            let permitted = stream.check_write().map_err(stream_failure)?;
            if permitted == 0 {
                if !self.wait(&pollable) {
                    return Err(Failure::Timeout { body_bytes: None });
                }
                continue;
            }
            let n = permitted.min(CHUNK).min(bytes.len() as u64) as usize;
            stream.write(&bytes[..n]).map_err(stream_failure)?;
            bytes = &bytes[n..];
        }
        // Every byte is handed to the host now. The host's HTTP client may already
        // have closed the stream (it stops reading once `content-length` bytes
        // arrived, or when the server answered early), so a closed stream here is
        // not an error: `finish` and the response report any real failure.
        match stream.flush() {
            Ok(()) | Err(StreamError::Closed) => Ok(()),
            Err(failure) => Err(stream_failure(failure)),
        }
    }

    fn wait_response(&self, future: &FutureIncomingResponse) -> Result<IncomingResponse, Failure> {
        let pollable = future.subscribe();
        loop {
            match future.get() {
                Some(Ok(Ok(response))) => return Ok(response),
                Some(Ok(Err(code))) => return Err(Failure::Http(code)),
                Some(Err(())) => {
                    return Err(Failure::Other("the response was already taken".into()));
                }
                None => {
                    if !self.wait(&pollable) {
                        return Err(Failure::Timeout { body_bytes: None });
                    }
                }
            }
        }
    }

    fn read_response(
        &self,
        response: IncomingResponse,
        request: &Request,
    ) -> Result<Response, Failure> {
        let status = response.status();
        let fields = response.headers();
        let headers: Vec<(String, String)> = fields
            .entries()
            .into_iter()
            .map(|(name, value)| {
                (
                    name.to_ascii_lowercase(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
            .collect();
        drop(fields);
        let mut out = Response {
            status,
            headers,
            body: Vec::new(),
            truncated: false,
        };
        if should_read_body(request.method, status, &out.headers) {
            let body = response
                .consume()
                .map_err(|()| Failure::Other("the response body was already consumed".into()))?;
            let stream = body.stream().map_err(|()| {
                Failure::Other("the response body stream was already taken".into())
            })?;
            let read = self.read_body(&stream, request.max_bytes);
            drop(stream);
            drop(IncomingBody::finish(body));
            (out.body, out.truncated) = read?;
        }
        drop(response);
        Ok(out)
    }

    /// Reads up to `max` bytes, plus one more to learn whether the body goes on.
    fn read_body(&self, stream: &InputStream, max: usize) -> Result<(Vec<u8>, bool), Failure> {
        let pollable = stream.subscribe();
        let mut body = Vec::new();
        loop {
            let want = (max + 1).saturating_sub(body.len()) as u64;
            if want == 0 {
                break;
            }
            match stream.read(want.min(CHUNK)) {
                Ok(chunk) if chunk.is_empty() => {
                    if !self.wait(&pollable) {
                        return Err(Failure::Timeout {
                            body_bytes: Some(body.len()),
                        });
                    }
                }
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(failure) => return Err(stream_failure(failure)),
            }
        }
        let truncated = body.len() > max;
        body.truncate(max);
        Ok((body, truncated))
    }
}

fn build_request(request: &Request) -> Result<OutgoingRequest, Failure> {
    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| {
        Failure::Other(match e {
            HeaderError::Forbidden => {
                "one of the request headers is forbidden by the host; remove it".into()
            }
            HeaderError::InvalidSyntax => {
                "a request header name or value is not valid; check options.headers".into()
            }
            HeaderError::Immutable => "the request headers could not be set".into(),
        })
    })?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        Method::Get => http::Method::Get,
        Method::Head => http::Method::Head,
        Method::Post => http::Method::Post,
        Method::Put => http::Method::Put,
        Method::Delete => http::Method::Delete,
        Method::Patch => http::Method::Patch,
    };
    let scheme = match request.url.scheme() {
        Scheme::Http => http::Scheme::Http,
        Scheme::Https => http::Scheme::Https,
    };
    let invalid = |what: &str| Failure::Other(format!("the {what} of the URL was rejected"));
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(&request.url.authority()))
        .map_err(|()| invalid("host and port"))?;
    outgoing
        .set_path_with_query(Some(&request.url.path_with_query()))
        .map_err(|()| invalid("path or query"))?;
    Ok(outgoing)
}

fn stream_failure(error: StreamError) -> Failure {
    match error {
        StreamError::Closed => Failure::Other("the connection was closed early".into()),
        StreamError::LastOperationFailed(e) => match http::http_error_code(&e) {
            Some(code) => Failure::Http(code),
            None => Failure::Other(e.to_debug_string()),
        },
    }
}
