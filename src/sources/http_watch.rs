//! An HTTP watch client for `kubectl proxy` (or any API server endpoint
//! that needs no TLS or token): plain HTTP/1.1 over [`TcpStream`], no async
//! runtime.
//!
//! [`WatchClient::run`] lists when it has no resource version, then loops:
//!
//! 1. `GET {path}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true`,
//!    with `rv` the decoder's [`resume_version`](WatchDecoder::resume_version)
//!    (the last change, bookmark or list it decoded); the response body is
//!    read with chunked transfer decoding (or `Content-Length`, or to EOF)
//!    and decoded line by line as bytes arrive.
//! 2. A dropped connection, a read timeout or a clean end of the body:
//!    reconnect from the last resource version. Failures in a row (no
//!    event decoded in between) back off exponentially from
//!    [`WatchConfig::backoff_initial`] up to [`WatchConfig::backoff_max`];
//!    after [`WatchConfig::max_failures`] in a row, [`WatchError::GaveUp`].
//! 3. `410 Gone` — as the HTTP status, or as a watch `ERROR` event with
//!    code 410 ([`Decoded::Relist`]) — re-lists: a plain `GET {path}`,
//!    whose items are emitted as [`Origin::List`] changes (`Op::Added`) and
//!    whose `metadata.resourceVersion` becomes the new resume point.
//!
//! Allocation: the line buffer once per client; per connection a
//! `BufReader` (8 KiB) and the query string; the list body buffer grows to
//! the largest list. Decoding watch lines allocates nothing per event.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::ControlFlow;
use std::time::Duration;

use crate::sources::k8s::{DecodeError, Decoded, WatchDecoder};
use crate::sources::record::Op;

/// Settings of a [`WatchClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// Address of `kubectl proxy` (default `127.0.0.1:8001`).
    pub addr: SocketAddr,
    /// Collection path, e.g. `/api/v1/pods` (default) or
    /// `/api/v1/namespaces/default/pods`.
    pub path: String,
    /// Resource version to start watching from; `None` lists first.
    pub resource_version: Option<String>,
    /// Timeout of each connect.
    pub connect_timeout: Duration,
    /// A watch connection silent for this long is treated as dropped.
    pub read_timeout: Duration,
    /// First reconnect delay after a failure.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Failures in a row (connects, HTTP errors, drops without an event)
    /// after which [`WatchClient::run`] gives up.
    pub max_failures: u32,
    /// Largest list body accepted.
    pub max_list_bytes: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8001)),
            path: "/api/v1/pods".to_string(),
            resource_version: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(330),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            max_failures: 10,
            max_list_bytes: 256 << 20,
        }
    }
}

/// Where an event handed to the callback came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An item of a (re-)list.
    List,
    /// A line of a watch stream.
    Watch,
}

/// Why [`WatchClient::run`] stopped without the callback asking it to.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `max_failures` failures in a row; `last` is the last one.
    #[error("gave up after {failures} failures in a row; last: {last}")]
    GaveUp {
        /// Failures in a row.
        failures: u32,
        /// The last failure.
        last: Failure,
    },
}

/// One failed attempt (counted towards [`WatchConfig::max_failures`]).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Connecting, writing or reading failed, or the connection dropped
    /// before any event was decoded.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server answered with a status other than 200 (and not 410).
    #[error("HTTP status {0}")]
    Status(u16),
    /// The response head or chunk framing is not valid HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    /// The list body exceeded [`WatchConfig::max_list_bytes`].
    #[error("list body larger than {limit} bytes")]
    ListTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The list body could not be decoded.
    #[error("list body: {0}")]
    List(DecodeError),
}

/// Counters of a [`WatchClient`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Watch requests sent.
    pub watches: u64,
    /// List requests sent.
    pub lists: u64,
    /// Re-lists triggered by 410 Gone (status or ERROR event).
    pub gone: u64,
    /// Watch connections that ended (dropped, timed out, or closed cleanly).
    pub disconnects: u64,
    /// Failed attempts (each one backed off).
    pub failures: u64,
    /// Watch lines delivered (successes and decode errors).
    pub watch_events: u64,
    /// List items delivered.
    pub list_items: u64,
}

enum Outcome {
    Stop,
    Relist,
    /// The connection ended; `progress` when at least one event decoded.
    Ended {
        progress: bool,
        error: Option<Failure>,
    },
}

/// A watch client; see the [module docs](self).
#[derive(Debug)]
pub struct WatchClient {
    cfg: WatchConfig,
    buf: Box<[u8]>,
    list: Vec<u8>,
    head: Vec<u8>,
    req: Vec<u8>,
    stats: WatchStats,
    last_request: String,
}

impl WatchClient {
    /// A client. Allocates a line buffer of `max_object_bytes` + 64 KiB;
    /// pass the decoder's [`DecoderConfig::max_object_bytes`](crate::sources::k8s::DecoderConfig)
    /// (a longer watch line fills the buffer and is reported as
    /// [`DecodeError::TooLarge`], then skipped to its newline).
    pub fn new(cfg: WatchConfig, max_object_bytes: usize) -> WatchClient {
        WatchClient {
            cfg,
            buf: vec![0u8; max_object_bytes + 64 * 1024].into_boxed_slice(),
            list: Vec::new(),
            head: Vec::with_capacity(1024),
            req: Vec::with_capacity(512),
            stats: WatchStats::default(),
            last_request: String::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &WatchConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &WatchStats {
        &self.stats
    }

    /// The request target (path and query) of the last request sent.
    pub fn last_request(&self) -> &str {
        &self.last_request
    }

    /// Lists and watches until `f` returns [`ControlFlow::Break`] (then
    /// `Ok`) or [`WatchConfig::max_failures`] attempts fail in a row.
    /// `f` gets every list item and watch line in order, decode errors
    /// included (a bad line does not end the watch). Lines that arrive in
    /// the same read as the one `f` stopped at are decoded but not handed
    /// to `f`.
    pub fn run<F>(&mut self, decoder: &mut WatchDecoder, mut f: F) -> Result<WatchStats, WatchError>
    where
        F: FnMut(Origin, Result<Decoded, DecodeError>) -> ControlFlow<()>,
    {
        let mut need_list =
            self.cfg.resource_version.is_none() && decoder.resume_version().is_none();
        let mut failures = 0u32;
        loop {
            let failure = if need_list {
                match self.relist(decoder, &mut f) {
                    Ok(ControlFlow::Break(())) => return Ok(self.stats),
                    Ok(ControlFlow::Continue(())) => {
                        need_list = false;
                        failures = 0;
                        None
                    }
                    Err(e) => Some(e),
                }
            } else {
                match self.watch_once(decoder, &mut f) {
                    Outcome::Stop => return Ok(self.stats),
                    Outcome::Relist => {
                        self.stats.gone += 1;
                        need_list = true;
                        failures = 0;
                        None
                    }
                    Outcome::Ended { progress: true, .. } => {
                        failures = 0;
                        None
                    }
                    Outcome::Ended {
                        progress: false,
                        error,
                    } => Some(error.unwrap_or(Failure::Io(io::ErrorKind::UnexpectedEof.into()))),
                }
            };
            if let Some(last) = failure {
                failures += 1;
                self.stats.failures += 1;
                if failures >= self.cfg.max_failures {
                    return Err(WatchError::GaveUp { failures, last });
                }
                std::thread::sleep(self.backoff(failures));
            }
        }
    }

    /// The delay after `failures` failures in a row:
    /// `backoff_initial × 2^(failures − 1)`, at most `backoff_max`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(31);
        self.cfg
            .backoff_initial
            .saturating_mul(1u32 << shift)
            .min(self.cfg.backoff_max)
    }

    fn connect(&mut self, target_watch: Option<&str>) -> Result<BufReader<TcpStream>, Failure> {
        let s = TcpStream::connect_timeout(&self.cfg.addr, self.cfg.connect_timeout)?;
        s.set_read_timeout(Some(self.cfg.read_timeout))?;
        s.set_nodelay(true)?;
        self.last_request.clear();
        self.last_request.push_str(&self.cfg.path);
        if let Some(q) = target_watch {
            self.last_request.push_str(q);
        }
        self.req.clear();
        write!(
            self.req,
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: ebbflow\r\n\r\n",
            self.last_request, self.cfg.addr
        )?;
        (&s).write_all(&self.req)?;
        Ok(BufReader::new(s))
    }

    fn relist<F>(
        &mut self,
        decoder: &mut WatchDecoder,
        f: &mut F,
    ) -> Result<ControlFlow<()>, Failure>
    where
        F: FnMut(Origin, Result<Decoded, DecodeError>) -> ControlFlow<()>,
    {
        self.stats.lists += 1;
        let mut r = self.connect(None)?;
        let (status, framing) = read_head(&mut r, &mut self.head)?;
        let mut body = Body::new(framing);
        self.list.clear();
        let limit = self.cfg.max_list_bytes;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = body.read(&mut r, &mut self.head, &mut chunk)?;
            if n == 0 {
                break;
            }
            if self.list.len() + n > limit {
                return Err(Failure::ListTooLarge { limit });
            }
            self.list.extend_from_slice(&chunk[..n]);
        }
        if status != 200 {
            return Err(Failure::Status(status));
        }
        decoder.clear_resume_version();
        let mut flow = ControlFlow::Continue(());
        let stats = &mut self.stats;
        decoder
            .decode_document(&self.list, Op::Added, |res| {
                if flow.is_continue() {
                    stats.list_items += 1;
                    flow = f(Origin::List, res);
                }
            })
            .map_err(Failure::List)?;
        Ok(flow)
    }

    fn watch_once<F>(&mut self, decoder: &mut WatchDecoder, f: &mut F) -> Outcome
    where
        F: FnMut(Origin, Result<Decoded, DecodeError>) -> ControlFlow<()>,
    {
        self.stats.watches += 1;
        let mut q = String::with_capacity(96);
        q.push_str("?watch=1");
        if let Some(rv) = decoder
            .resume_version()
            .or(self.cfg.resource_version.as_deref())
        {
            q.push_str("&resourceVersion=");
            q.push_str(rv);
        }
        q.push_str("&allowWatchBookmarks=true");
        let mut r = match self.connect(Some(&q)) {
            Ok(r) => r,
            Err(e) => return ended(false, Some(e)),
        };
        let (status, framing) = match read_head(&mut r, &mut self.head) {
            Ok(h) => h,
            Err(e) => {
                self.stats.disconnects += 1;
                return ended(false, Some(e));
            }
        };
        if status == 410 {
            return Outcome::Relist;
        }
        if status != 200 {
            return ended(false, Some(Failure::Status(status)));
        }
        let mut body = Body::new(framing);
        let mut len = 0usize;
        let mut progress = false;
        let mut stop = false;
        let mut relist = false;
        let limit = decoder.config().max_object_bytes;
        let mut skipping = false;
        loop {
            if len == self.buf.len() {
                // A line longer than the decoder accepts: report and skip it.
                let e = DecodeError::TooLarge { len, limit };
                decoder.count_error(&e);
                self.stats.watch_events += 1;
                if f(Origin::Watch, Err(e)).is_break() {
                    return Outcome::Stop;
                }
                len = 0;
                skipping = true;
            }
            let n = match body.read(&mut r, &mut self.head, &mut self.buf[len..]) {
                Ok(0) => {
                    self.stats.disconnects += 1;
                    return ended(progress, None);
                }
                Ok(n) => n,
                Err(e) => {
                    self.stats.disconnects += 1;
                    return ended(progress, Some(e));
                }
            };
            len += n;
            if skipping {
                // `len` was reset to 0 when skipping started: the buffer
                // holds only the tail of the oversize line, up to its `\n`.
                match self.buf[..len].iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        skipping = false;
                        self.buf.copy_within(p + 1..len, 0);
                        len -= p + 1;
                    }
                    None => {
                        len = 0;
                        continue;
                    }
                }
            }
            let stats = &mut self.stats;
            let used = decoder.decode_complete_lines(&self.buf[..len], |_, res| {
                if stop || relist {
                    return;
                }
                progress |= res.is_ok();
                if matches!(res, Ok(Decoded::Relist(_))) {
                    relist = true;
                }
                stats.watch_events += 1;
                stop = f(Origin::Watch, res).is_break();
            });
            if stop {
                return Outcome::Stop;
            }
            if relist {
                return Outcome::Relist;
            }
            self.buf.copy_within(used..len, 0);
            len -= used;
        }
    }
}

fn ended(progress: bool, error: Option<Failure>) -> Outcome {
    Outcome::Ended { progress, error }
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    Chunked,
    Length(u64),
    UntilEof,
}

/// Reads the status line and headers; returns the status and body framing.
fn read_head<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> Result<(u16, Framing), Failure> {
    line.clear();
    if r.read_until(b'\n', line)? == 0 {
        return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    let status = parse_status(line).ok_or(Failure::Malformed("status line"))?;
    let mut framing = Framing::UntilEof;
    loop {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            return Err(Failure::Malformed("headers end early"));
        }
        let h = trim(line);
        if h.is_empty() {
            break;
        }
        let Some(colon) = h.iter().position(|&b| b == b':') else {
            return Err(Failure::Malformed("header without ':'"));
        };
        let (name, value) = (&h[..colon], trim(&h[colon + 1..]));
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(Failure::Malformed("unsupported transfer-encoding"));
            }
        } else if name.eq_ignore_ascii_case(b"content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let n = parse_dec(value).ok_or(Failure::Malformed("content-length"))?;
            framing = Framing::Length(n);
        }
    }
    Ok((status, framing))
}

fn parse_status(line: &[u8]) -> Option<u16> {
    let line = trim(line);
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let code = rest.get(sp + 1..sp + 4)?;
    let n = parse_dec(code)?;
    u16::try_from(n).ok()
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// A response body being read under its framing.
struct Body {
    framing: Framing,
    /// Chunked: bytes left in the current chunk; `None` before a size line.
    left: Option<u64>,
    done: bool,
}

impl Body {
    fn new(framing: Framing) -> Body {
        Body {
            framing,
            left: None,
            done: false,
        }
    }

    /// Reads body bytes into `out`; 0 at the end of the body.
    fn read<R: BufRead>(
        &mut self,
        r: &mut R,
        line: &mut Vec<u8>,
        out: &mut [u8],
    ) -> Result<usize, Failure> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::UntilEof => Ok(r.read(out)?),
            Framing::Length(left) => {
                if left == 0 {
                    self.done = true;
                    return Ok(0);
                }
                let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = r.read(&mut out[..want])?;
                if n == 0 {
                    return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                self.framing = Framing::Length(left - n as u64);
                Ok(n)
            }
            Framing::Chunked => loop {
                match self.left {
                    Some(0) => {
                        // End of a chunk's data: its CRLF.
                        line.clear();
                        if r.read_until(b'\n', line)? == 0 {
                            return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
                        }
                        if !trim(line).is_empty() {
                            return Err(Failure::Malformed("chunk not followed by CRLF"));
                        }
                        self.left = None;
                    }
                    Some(left) => {
                        let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        let n = r.read(&mut out[..want])?;
                        if n == 0 {
                            return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
                        }
                        self.left = Some(left - n as u64);
                        return Ok(n);
                    }
                    None => {
                        line.clear();
                        if r.read_until(b'\n', line)? == 0 {
                            return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
                        }
                        let t = trim(line);
                        let hex = t.split(|&b| b == b';').next().unwrap_or(&[]);
                        let size = parse_hex(trim(hex)).ok_or(Failure::Malformed("chunk size"))?;
                        if size == 0 {
                            // Trailers up to the empty line.
                            loop {
                                line.clear();
                                if r.read_until(b'\n', line)? == 0 || trim(line).is_empty() {
                                    break;
                                }
                            }
                            self.done = true;
                            return Ok(0);
                        }
                        self.left = Some(size);
                    }
                }
            },
        }
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n * 16 + u64::from(d))
    })
}
