//! Sending one admitted outbound request: to the address the HTTP gate
//! checked, never to a fresh DNS answer.
//!
//! wasi-http's default sender connects to the request's authority, so it
//! resolves the name again after the gate's check, and a DNS server that
//! answers a public address first and a private one next (DNS rebinding)
//! would steer the connection inside. This sender connects to the checked
//! [`SocketAddr`] itself and, for HTTPS, runs the TLS handshake with the
//! original host name (SNI and certificate verification), so the certificate
//! still binds the name while the socket is bound to the checked address.
//! Timeouts follow wasi-http's options (already clamped by the gate).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions};

/// How to secure a connection: the name the certificate must carry and the
/// roots it must chain to.
pub struct Tls {
    /// The host name of the request (not the address connected to).
    pub name: ServerName<'static>,
    /// Trusted roots and client settings.
    pub config: Arc<rustls::ClientConfig>,
}

/// A client configuration trusting the public web roots (webpki-roots).
pub fn public_roots() -> Arc<rustls::ClientConfig> {
    static CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Arc::new(with_roots(roots))
    });
    CONFIG.clone()
}

/// A client configuration trusting exactly `roots`.
pub fn with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// The response and the future that drives the connection to its end.
pub type Sent = (
    Response<IncomingBody>,
    Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
);

/// Sends `request` over a new connection to `addr`.
pub async fn send<B>(
    mut request: Request<B>,
    addr: SocketAddr,
    tls: Option<Tls>,
    options: RequestOptions,
) -> Result<Sent, Error>
where
    B: Body<Data = Bytes, Error = Error> + Send + 'static,
{
    let forever = Duration::from_secs(600);
    let connect_timeout = options.connect_timeout.unwrap_or(forever);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(forever);
    // Tokio panics on a zero interval.
    let between_bytes_timeout = options
        .between_bytes_timeout
        .unwrap_or(forever)
        .max(Duration::from_nanos(1));

    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let stream: Box<dyn Stream> = match tls {
        Some(Tls { name, config }) => {
            let connector = tokio_rustls::TlsConnector::from(config);
            let secured = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(secured)
        }
        None => Box::new(tcp),
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path: scheme and authority are for proxies.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut conn = Some(conn);
    let mut send = pin!(tokio::time::timeout(
        first_byte_timeout,
        sender.send_request(request)
    ));
    // Drive the connection while waiting for the response head.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result.map_err(|_| Error::ConnectionReadTimeout)),
        Poll::Pending => {
            let Some(io) = conn.as_mut() else {
                return Poll::Pending;
            };
            let finished = ready!(Pin::new(io).poll(cx));
            conn = None;
            match finished {
                Ok(()) => send
                    .as_mut()
                    .poll(cx)
                    .map(|r| r.map_err(|_| Error::ConnectionReadTimeout)),
                Err(e) => Poll::Ready(Ok(Err(e))),
            }
        }
    })
    .await??;
    let mut timeout = tokio::time::interval(between_bytes_timeout);
    timeout.reset();
    let response = response.map(|incoming| IncomingBody { incoming, timeout });
    let io: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> = Box::pin(async move {
        match conn {
            Some(conn) => conn.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    e.into()
                }
            }),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// A response body that fails when no byte arrives within the between-bytes timeout.
pub struct IncomingBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl Body for IncomingBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
