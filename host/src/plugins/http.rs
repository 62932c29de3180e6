//! The outbound-HTTP gate: every `wasi:http` request a plugin makes passes
//! through [`HttpGate::send_request`], which checks it against the manifest's
//! allowlist before anything leaves the host.

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::http_policy::HostPattern;
use super::manifest::Manifest;

/// Per-call outbound HTTP policy.
pub struct HttpGate {
    plugin: Arc<str>,
    allow: Arc<[HostPattern]>,
}

impl HttpGate {
    /// The gate for one call of `plugin`.
    pub fn new(plugin: Arc<str>, manifest: &Manifest) -> Self {
        let allow: Vec<HostPattern> = manifest
            .grants
            .http
            .iter()
            // Patterns were validated when the manifest was loaded.
            .filter_map(|p| HostPattern::parse(p).ok())
            .collect();
        Self {
            plugin,
            allow: allow.into(),
        }
    }

    fn allowed(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme.eq_ignore_ascii_case("http") { 80 } else { 443 });
        self.allow.iter().any(|p| p.matches(scheme, host, port))
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
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        if !self.allowed(request.uri()) {
            tracing::warn!(plugin = %self.plugin, uri = %request.uri(), "outbound HTTP request denied: not in the plugin's grants.http");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}
