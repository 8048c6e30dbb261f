//! Serving a configured directory over plain `GET` (the dashboard's static build), so one
//! process serves the topics and the page that shows them.
//!
//! [`StaticDir`] answers every `GET` that no other endpoint takes (set
//! [`ServerConfig::static_files`](super::ServerConfig::static_files)):
//!
//! * **Safe paths.** The request path (already percent-decoded) is split on `/`; empty and
//!   `.` segments are skipped, and a `..` segment, a backslash or a NUL byte is refused
//!   with `400 bad path` before the file system is touched. The resolved file is then
//!   canonicalised and must lie inside the canonical root, so a symbolic link cannot lead
//!   out of it either (`404`).
//! * **Directories** serve their `index.html`.
//! * **SPA fallback.** A path whose last segment has no extension (`/pipeline`,
//!   `/rules/3`) and names no file serves the root's `index.html`, so client-side routes
//!   load the app; a missing file with an extension (`/missing.js`) is `404 not found`.
//! * **Bounded size.** A file larger than [`StaticDir::max_file_bytes`] (default
//!   [`DEFAULT_MAX_FILE_BYTES`]) is not read: `500 file over the static size limit`.
//! * **Content-Type** from the extension ([`content_type`]); unknown extensions are
//!   `application/octet-stream`. Files under `_nuxt/` (content-hashed names) are sent with
//!   `Cache-Control: public, max-age=31536000, immutable`, everything else with
//!   `no-cache`.
//!
//! What it costs: a request reads the whole file into one buffer on the broadcast thread
//! (a blocking read, bounded by the size limit) and allocates the response; page loads are
//! rare next to topic messages, so nothing is cached.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Largest file served by default: 8 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 20;

/// A directory served over plain `GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticDir {
    root: PathBuf,
    /// Files larger than this are refused with `500` (not read).
    pub max_file_bytes: u64,
}

/// Why a request for a static file was not answered with the file.
#[derive(thiserror::Error, Debug)]
pub enum StaticError {
    /// The path has a `..` segment, a backslash or a NUL byte (answered `400`).
    #[error("bad path")]
    BadPath,
    /// No such file (or it resolves outside the root) and no SPA fallback applies (`404`).
    #[error("not found")]
    NotFound,
    /// The file is larger than the limit (`500`).
    #[error("file over the static size limit ({len} > {max} bytes)")]
    TooLarge {
        /// The file's size.
        len: u64,
        /// The limit ([`StaticDir::max_file_bytes`]).
        max: u64,
    },
    /// Reading the file failed (`500`).
    #[error("cannot read file: {0}")]
    Io(#[from] io::Error),
}

impl StaticError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            StaticError::BadPath => 400,
            StaticError::NotFound => 404,
            StaticError::TooLarge { .. } | StaticError::Io(_) => 500,
        }
    }
}

/// A file found for a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical path of the file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Whether it is the SPA fallback (`index.html` for an unknown route).
    pub fallback: bool,
}

impl StaticDir {
    /// Serves `root`, which must be an existing directory (it is canonicalised now).
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticDir> {
        let root = fs::canonicalize(root.as_ref())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticDir {
            root,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds the file a (percent-decoded) request path names, with the rules in the module
    /// documentation. Touches the file system (metadata and canonicalisation) only.
    pub fn resolve(&self, url_path: &str) -> Result<Resolved, StaticError> {
        if url_path.contains(['\\', '\0']) {
            return Err(StaticError::BadPath);
        }
        let mut rel = PathBuf::new();
        let mut last = "";
        for seg in url_path.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(StaticError::BadPath),
                s => {
                    rel.push(s);
                    last = s;
                }
            }
        }
        let mut candidate = self.root.join(&rel);
        if candidate.is_dir() {
            candidate.push("index.html");
        }
        match self.inside(&candidate) {
            Some(path) => self.found(path, false),
            None if !last.contains('.') => {
                let index = self
                    .inside(&self.root.join("index.html"))
                    .ok_or(StaticError::NotFound)?;
                self.found(index, true)
            }
            None => Err(StaticError::NotFound),
        }
    }

    /// The canonical form of `p` when it is a file inside the root.
    fn inside(&self, p: &Path) -> Option<PathBuf> {
        let c = fs::canonicalize(p).ok()?;
        (c.starts_with(&self.root) && c.is_file()).then_some(c)
    }

    fn found(&self, path: PathBuf, fallback: bool) -> Result<Resolved, StaticError> {
        let len = fs::metadata(&path)?.len();
        if len > self.max_file_bytes {
            return Err(StaticError::TooLarge {
                len,
                max: self.max_file_bytes,
            });
        }
        Ok(Resolved {
            path,
            len,
            fallback,
        })
    }

    /// The complete HTTP response (status line, headers, body) for a `GET` of `url_path`,
    /// closing the connection; `Err` when the file cannot be served (answer it with
    /// [`StaticError::status`]).
    pub fn response(&self, url_path: &str) -> Result<Vec<u8>, StaticError> {
        let r = self.resolve(url_path)?;
        let body = fs::read(&r.path)?;
        if body.len() as u64 > self.max_file_bytes {
            return Err(StaticError::TooLarge {
                len: body.len() as u64,
                max: self.max_file_bytes,
            });
        }
        let immutable = r
            .path
            .strip_prefix(&self.root)
            .is_ok_and(|p| p.starts_with("_nuxt"));
        let cache = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {cache}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
            content_type(&r.path),
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// The `Content-Type` for a file, from its extension (case-insensitive).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "ttl" => "text/turtle; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir holding a small site.
    fn site(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ebbflow-static-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("site/_nuxt")).unwrap();
        fs::create_dir_all(dir.join("site/docs")).unwrap();
        fs::write(dir.join("site/index.html"), "<html>app</html>").unwrap();
        fs::write(dir.join("site/docs/index.html"), "<html>docs</html>").unwrap();
        fs::write(dir.join("site/_nuxt/app.3f2a.js"), "console.log(1)").unwrap();
        fs::write(dir.join("site/style.css"), "body{}").unwrap();
        fs::write(dir.join("secret.txt"), "top secret").unwrap();
        dir
    }

    fn body(resp: &[u8]) -> &str {
        let s = std::str::from_utf8(resp).unwrap();
        s.split_once("\r\n\r\n").unwrap().1
    }

    #[test]
    fn files_are_served_with_their_content_type_and_cache_policy() {
        let dir = site("types");
        let s = StaticDir::new(dir.join("site")).unwrap();
        let r = s.response("/_nuxt/app.3f2a.js").unwrap();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Type: text/javascript; charset=utf-8\r\n"));
        assert!(text.contains("Content-Length: 14\r\n"));
        assert!(text.contains("immutable"));
        assert_eq!(body(&r), "console.log(1)");
        let css = s.response("/style.css").unwrap();
        let css = std::str::from_utf8(&css).unwrap();
        assert!(css.contains("Content-Type: text/css; charset=utf-8\r\n"));
        assert!(css.contains("Cache-Control: no-cache\r\n"));
        assert_eq!(content_type(Path::new("a.WOFF2")), "font/woff2");
        assert_eq!(content_type(Path::new("a.bin")), "application/octet-stream");
    }

    #[test]
    fn the_root_and_directories_serve_index_html() {
        let dir = site("index");
        let s = StaticDir::new(dir.join("site")).unwrap();
        assert_eq!(body(&s.response("/").unwrap()), "<html>app</html>");
        assert_eq!(body(&s.response("/docs").unwrap()), "<html>docs</html>");
        assert_eq!(body(&s.response("/docs/").unwrap()), "<html>docs</html>");
        assert!(!s.resolve("/docs").unwrap().fallback);
    }

    #[test]
    fn unknown_routes_fall_back_to_the_app_but_missing_assets_are_404() {
        let dir = site("spa");
        let s = StaticDir::new(dir.join("site")).unwrap();
        let r = s.resolve("/pipeline").unwrap();
        assert!(r.fallback);
        assert_eq!(body(&s.response("/rules/3").unwrap()), "<html>app</html>");
        assert!(matches!(
            s.resolve("/_nuxt/missing.js"),
            Err(StaticError::NotFound)
        ));
        assert_eq!(s.resolve("/x.js").unwrap_err().status(), 404);
    }

    #[test]
    fn traversal_attempts_are_refused_before_touching_the_file_system() {
        let dir = site("traversal");
        let s = StaticDir::new(dir.join("site")).unwrap();
        for p in [
            "/../secret.txt",
            "/_nuxt/../../secret.txt",
            "/a/b/../../../secret.txt",
            "..",
            "/..\\secret.txt",
            "/_nuxt\\..\\..\\secret.txt",
            "/index.html\0.js",
        ] {
            let e = s.resolve(p).unwrap_err();
            assert!(matches!(e, StaticError::BadPath), "{p:?}: {e:?}");
            assert_eq!(e.status(), 400);
        }
        // Percent-encoded dots arrive decoded (the HTTP parser decodes the path), so
        // `/%2e%2e/secret.txt` is the `..` case above; an absolute path stays inside the
        // root (here: no such file, so the SPA fallback).
        let r = s.resolve("//etc/passwd").unwrap();
        assert!(r.fallback && r.path == s.root().join("index.html"));
        assert!(matches!(
            s.resolve("//etc/passwd.txt"),
            Err(StaticError::NotFound)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_root_is_not_followed() {
        let dir = site("symlink");
        std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("site/leak.txt")).unwrap();
        let s = StaticDir::new(dir.join("site")).unwrap();
        assert!(matches!(s.resolve("/leak.txt"), Err(StaticError::NotFound)));
    }

    #[test]
    fn files_over_the_limit_are_not_read() {
        let dir = site("limit");
        let mut s = StaticDir::new(dir.join("site")).unwrap();
        s.max_file_bytes = 10;
        let e = s.response("/_nuxt/app.3f2a.js").unwrap_err();
        assert!(matches!(e, StaticError::TooLarge { len: 14, max: 10 }));
        assert_eq!(e.status(), 500);
        assert!(s.response("/style.css").is_ok());
    }

    /// One raw HTTP/1.1 GET against `addr`; the whole answer (the server closes).
    fn get(addr: std::net::SocketAddr, target: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn the_server_serves_the_directory_for_gets_no_endpoint_takes() {
        use crate::channels::{bus, Server, ServerConfig, TopicConfig};
        let dir = site("server");
        let mut config = ServerConfig::new(
            Some("127.0.0.1:0".parse().unwrap()),
            vec![TopicConfig::new("t", 4)],
        );
        config.static_files = Some(StaticDir::new(dir.join("site")).unwrap());
        let (_writer, reader) = bus(1 << 16);
        let server = Server::start(config, reader).unwrap();
        let addr = server.local_addr().unwrap();
        let app = get(addr, "/pipeline?x=1");
        assert!(app.starts_with("HTTP/1.1 200 OK\r\n"), "{app}");
        assert!(app.ends_with("<html>app</html>"));
        let js = get(addr, "/_nuxt/app.3f2a.js");
        assert!(js.contains("Content-Type: text/javascript"), "{js}");
        // Engine endpoints keep their meaning.
        assert!(get(addr, "/healthz").ends_with("ok\n"));
        assert!(get(addr, "/events").starts_with("HTTP/1.1 400"));
        // Traversal, raw and percent-encoded, is refused; nothing outside is read.
        for t in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/_nuxt/%2E%2E/../secret.txt",
        ] {
            let r = get(addr, t);
            assert!(r.starts_with("HTTP/1.1 400"), "{t}: {r}");
            assert!(!r.contains("top secret"));
        }
        assert!(get(addr, "/missing.css").starts_with("HTTP/1.1 404"));
        server.shutdown().unwrap();
    }

    #[test]
    fn a_root_that_is_not_a_directory_is_refused() {
        let dir = site("root");
        assert!(StaticDir::new(dir.join("secret.txt")).is_err());
        assert!(StaticDir::new(dir.join("nope")).is_err());
    }
}
