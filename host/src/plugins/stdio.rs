//! Guest stdout/stderr capture: bounded in-memory buffers, logged after each
//! call under the plugin's name and never inherited from the server. Output
//! past the cap is counted and dropped; the guest is not trapped for printing.
//! Whatever a guest writes reaches the log through [`escape_guest_text`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A capped capture buffer shared by every handle the guest opens on a stream.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl Capture {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Buffer {
                bytes: Vec::new(),
                cap,
                dropped: 0,
            })),
        }
    }

    fn append(&self, data: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = buf.cap.saturating_sub(buf.bytes.len());
        let kept = room.min(data.len());
        buf.bytes.extend_from_slice(&data[..kept]);
        buf.dropped += (data.len() - kept) as u64;
    }

    /// What was captured (lossy UTF-8) and how many bytes were dropped.
    pub fn take(&self) -> (String, u64) {
        let mut buf = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&buf.bytes).into_owned();
        buf.bytes.clear();
        (text, std::mem::take(&mut buf.dropped))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Guest text made safe for the server's log: control characters (newlines,
/// carriage returns, ANSI escapes...), Unicode line and paragraph separators,
/// bidirectional marks and overrides and zero-width characters are written as `\n`, `\u{1b}` and so on, so a
/// guest can neither start a line that looks like the server's own nor
/// restyle or reorder what a terminal shows.
pub fn escape_guest_text(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}'
                    | '\u{061C}'
                    | '\u{2028}'..='\u{202E}'
                    | '\u{2060}'..='\u{2069}'
                    | '\u{FEFF}'
            )
    };
    if !text.contains(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_forge_log_lines_or_terminal_codes() {
        let forged = "done\n2026-12-03T10:00:00Z ERROR launch: admin key leaked\r\x1b[2J\u{2028}x";
        let escaped = escape_guest_text(forged);
        assert!(
            !escaped.contains(['\n', '\r', '\x1b', '\u{2028}']),
            "{escaped}"
        );
        assert_eq!(
            escaped,
            "done\\n2026-12-03T10:00:00Z ERROR launch: admin key leaked\\r\\u{1b}[2J\\u{2028}x"
        );
        assert!(matches!(
            escape_guest_text("plain é text"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let c = Capture::new(5);
        c.append(b"hello world");
        assert_eq!(c.take(), ("hello".to_owned(), 6));
        assert_eq!(c.take(), (String::new(), 0));
    }
}
