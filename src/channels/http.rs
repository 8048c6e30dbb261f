//! HTTP/1.1 request heads (parsed with `httparse`) and plain responses.

use std::fmt::Write as _;

/// What the server needs from a request head.
#[derive(Debug, Default)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub upgrade_websocket: bool,
    pub connection_upgrade: bool,
    pub ws_version: Option<String>,
    pub ws_key: Option<String>,
    pub last_event_id: Option<String>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of parsing what has arrived so far.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete head of `len` bytes.
    Done(Request, usize),
    /// Not HTTP/1.x.
    Invalid(&'static str),
}

pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Invalid("too many headers"),
        Err(_) => Parsed::Invalid("malformed HTTP request"),
        Ok(httparse::Status::Complete(len)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let mut out = Request {
                method: req.method.unwrap_or("").to_owned(),
                path: percent_decode(path),
                query: parse_query(query),
                ..Request::default()
            };
            for h in req.headers.iter() {
                let value = String::from_utf8_lossy(h.value);
                let value = value.trim();
                if h.name.eq_ignore_ascii_case("upgrade") {
                    out.upgrade_websocket = value.eq_ignore_ascii_case("websocket");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    out.connection_upgrade = value
                        .split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
                } else if h.name.eq_ignore_ascii_case("sec-websocket-version") {
                    out.ws_version = Some(value.to_owned());
                } else if h.name.eq_ignore_ascii_case("sec-websocket-key") {
                    out.ws_key = Some(value.to_owned());
                } else if h.name.eq_ignore_ascii_case("last-event-id") {
                    out.last_event_id = Some(value.to_owned());
                }
            }
            Parsed::Done(out, len)
        }
    }
}

pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+`; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `a,b,c` into topic names (empty parts skipped).
pub(crate) fn split_topics(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A complete response that closes the connection.
pub(crate) fn response(
    status: u16,
    extra_headers: &str,
    content_type: &str,
    body: &str,
) -> Vec<u8> {
    let mut s = String::with_capacity(160 + body.len());
    let _ = write!(
        s,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        reason(status),
        body.len()
    );
    s.into_bytes()
}

/// A plain-text error response.
pub(crate) fn error(status: u16, extra_headers: &str, body: &str) -> Vec<u8> {
    let mut text = body.to_owned();
    text.push('\n');
    response(status, extra_headers, "text/plain; charset=utf-8", &text)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_upgrade_head_is_parsed_with_its_query() {
        let raw = b"GET /socket/websocket?vsn=2.0.0&topics=room%3Alobby,a+b HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nextra";
        let Parsed::Done(r, len) = parse(raw) else {
            panic!("not parsed")
        };
        assert_eq!(len, raw.len() - 5);
        assert_eq!(r.path, "/socket/websocket");
        assert_eq!(r.param("vsn"), Some("2.0.0"));
        assert_eq!(
            split_topics(r.param("topics").unwrap()),
            ["room:lobby", "a b"]
        );
        assert!(r.upgrade_websocket && r.connection_upgrade);
        assert_eq!(r.ws_version.as_deref(), Some("13"));
    }

    #[test]
    fn partial_and_garbage_heads_are_told_apart() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHo"), Parsed::Partial));
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00garbage\r\n\r\n"),
            Parsed::Invalid(_)
        ));
        assert_eq!(percent_decode("%zz%41%"), "%zzA%");
    }
}
