//! A blocking HTTP/1.1 POST over `std::net::TcpStream` (one connection per request,
//! `Connection: close`), with connect, write and read timeouts. Exporter thread only.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;

use super::config::Endpoint;

/// Why an export request failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The host did not resolve to any address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Connecting, writing or reading failed or timed out.
    #[error("i/o error talking to the collector: {0}")]
    Io(#[from] std::io::Error),
    /// The response was not parseable HTTP.
    #[error("malformed HTTP response from the collector")]
    BadResponse,
    /// The collector answered with a non-2xx status.
    #[error("collector answered HTTP {0}")]
    Status(u16),
}

impl ExportError {
    /// Whether a later retry may succeed: network errors, 408, 429 and 5xx (per the OTLP
    /// specification); other statuses mean the data is refused for good.
    pub fn is_retryable(&self) -> bool {
        match self {
            ExportError::Status(s) => matches!(s, 408 | 429 | 500..=599),
            _ => true,
        }
    }
}

/// Largest response read (the body of an OTLP response is tiny).
const MAX_RESPONSE: usize = 64 * 1024;

/// POSTs `body` as `application/x-protobuf` to `path` on `endpoint`.
pub fn post(
    endpoint: &Endpoint,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(), ExportError> {
    let addrs = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|_| ExportError::Resolve(endpoint.host.clone()))?;
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(ExportError::Io(e)),
        (None, None) => return Err(ExportError::Resolve(endpoint.host.clone())),
    };
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.host,
        endpoint.port,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut resp = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&resp) {
            Ok(httparse::Status::Complete(_)) => {
                let code = parsed.code.ok_or(ExportError::BadResponse)?;
                return if (200..300).contains(&code) {
                    Ok(())
                } else {
                    Err(ExportError::Status(code))
                };
            }
            Ok(httparse::Status::Partial) if resp.len() < MAX_RESPONSE => {}
            _ => return Err(ExportError::BadResponse),
        }
    }
    Err(ExportError::BadResponse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(reply: &'static [u8]) -> (Endpoint, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the 3-byte body after the blank line has arrived.
            while !got.windows(7).any(|w| w == b"\r\n\r\nabc") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(reply).unwrap();
            got
        });
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        (ep, h)
    }

    #[test]
    fn posts_protobuf_and_accepts_2xx() {
        let (ep, h) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        post(&ep, "/v1/traces", b"abc", Duration::from_secs(5)).unwrap();
        let req = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(req.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Content-Type: application/x-protobuf\r\n"));
        assert!(req.contains("Content-Length: 3\r\n"));
    }

    #[test]
    fn statuses_are_classified_for_retry() {
        let (ep, h) = serve_once(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n");
        let e = post(&ep, "/v1/traces", b"abc", Duration::from_secs(5)).unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, ExportError::Status(503)) && e.is_retryable());
        assert!(!ExportError::Status(400).is_retryable());
    }

    #[test]
    fn a_closed_port_is_a_retryable_io_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = post(&ep, "/v1/metrics", b"x", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ExportError::Io(_)) && e.is_retryable());
    }
}
